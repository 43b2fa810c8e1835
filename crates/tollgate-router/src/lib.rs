//! Routing: from the model name a client asks for to the deployments that can serve it.
//!
//! A *model group* is every deployment sharing one `model_name`. Names resolve exactly first,
//! then against glob patterns (`openai/*`, `claude-*`, `*`), the most specific pattern winning.

mod failure;
mod glob;
mod health;
mod plan;
pub mod pricing;

use std::collections::HashMap;
use std::sync::Arc;

use rand::Rng;
use tollgate_config::{Config, ModelEntry, ProviderKind};

pub use failure::{FailureKind, MAX_RETRY_WAIT, backoff};
pub use glob::Pattern;
pub use health::{DeploymentHealth, InFlight, LastError, QUOTA_COOLDOWN};
pub use plan::{Plan, Router, Step};

/// Where a deployment is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `model_list` in config.yaml: changed only by editing the file.
    Config,
    /// Added at runtime and kept in the store.
    Stored,
}

/// One deployment: a `model_list` entry ready to serve.
#[derive(Debug)]
pub struct Deployment {
    /// The validated config entry.
    pub entry: ModelEntry,
    /// Live state: in flight, latency, failures, cooldown.
    pub health: DeploymentHealth,
    /// Where it is defined.
    pub origin: Origin,
    id: Arc<str>,
    label: Arc<str>,
}

impl Deployment {
    /// A config deployment of `entry` with fresh health; its id is `model_info.id`, or one
    /// derived from what it is (see [`Deployment::with_origin`]).
    pub fn new(entry: ModelEntry) -> Self {
        Self::with_origin(entry, Origin::Config, 0)
    }

    /// A deployment with fresh health. Its id is `model_info.id` when the entry has one (a
    /// stored model always does); otherwise one derived from its place in the file and what it
    /// names, so that every process reading the same file gives it the same id.
    pub fn with_origin(entry: ModelEntry, origin: Origin, index: usize) -> Self {
        let id = match &entry.id {
            Some(id) => Arc::from(id.as_str()),
            None => Arc::from(derived_id(index, &entry)),
        };
        let label = Arc::from(entry.model.as_str());
        Self { entry, health: DeploymentHealth::default(), origin, id, label }
    }

    /// Its `model_info.id`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A stable, low-cardinality label for metrics: the configured `litellm_params.model`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Whether a record's `served_model` (`provider/upstream-model`) can be this deployment's:
    /// its own name, or one its upstream pattern (`openai/*`) produces.
    pub fn serves(&self, served_model: &str) -> bool {
        let Some(upstream) = served_model
            .strip_prefix(self.entry.provider.prefix())
            .and_then(|rest| rest.strip_prefix('/'))
        else {
            return false;
        };
        let own = &self.entry.upstream_model;
        if own.contains('*') { Pattern::new(own).matches(upstream) } else { own == upstream }
    }

    /// The label, shared: metric labels and records take it without copying.
    pub fn shared_label(&self) -> Arc<str> {
        self.label.clone()
    }
}

/// Deployments that share one `model_name`.
#[derive(Debug)]
pub struct ModelGroup {
    /// The `model_name`, possibly a pattern.
    pub name: String,
    /// Deployments in config order.
    pub deployments: Vec<Arc<Deployment>>,
    shared_name: Arc<str>,
}

impl ModelGroup {
    /// The name, shared: metric labels and records take it without copying.
    pub fn shared_name(&self) -> Arc<str> {
        self.shared_name.clone()
    }
}

/// Where a requested model name goes.
#[derive(Debug, Clone)]
pub struct Route {
    /// The group that matched.
    pub group: Arc<ModelGroup>,
    /// The name that resolved to it: what the client asked for, or a fallback as written.
    name: Arc<str>,
    /// Text matched by each `*` of the group's pattern, for substitution into the upstream name.
    captures: Vec<String>,
}

impl Route {
    /// The model name that resolved to this route.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether two routes send to the same deployments with the same upstream names.
    pub fn same_target(&self, other: &Route) -> bool {
        Arc::ptr_eq(&self.group, &other.group) && self.captures == other.captures
    }

    /// Chooses a deployment, at random in proportion to `weight` (LiteLLM's "simple-shuffle").
    pub fn pick(&self) -> Arc<Deployment> {
        pick_weighted(&self.group.deployments, &mut rand::rng())
    }

    /// The model name to send upstream for `deployment`, with `*` replaced by what the pattern
    /// matched.
    pub fn upstream_model(&self, deployment: &Deployment) -> String {
        substitute(&deployment.entry.upstream_model, &self.captures)
    }

    /// `provider/upstream-model`, the name of what served a request.
    pub fn served_model(&self, deployment: &Deployment) -> String {
        format!("{}/{}", deployment.entry.provider.prefix(), self.upstream_model(deployment))
    }
}

/// A config model's id when the file gives none: a digest of its place and what it names.
fn derived_id(index: usize, entry: &ModelEntry) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    for part in [
        index.to_string().as_str(),
        &entry.model_name,
        &entry.model,
        entry.api_base.as_deref().unwrap_or(""),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..12])
}

fn pick_weighted(deployments: &[Arc<Deployment>], rng: &mut impl Rng) -> Arc<Deployment> {
    if deployments.len() > 1 {
        let total: f64 = deployments.iter().map(|d| d.entry.weight).sum();
        let mut x = rng.random::<f64>() * total;
        for d in deployments {
            if x < d.entry.weight {
                return d.clone();
            }
            x -= d.entry.weight;
        }
    }
    // One deployment, or rounding left `x` just past the end.
    deployments[deployments.len() - 1].clone()
}

fn substitute(target: &str, captures: &[String]) -> String {
    if !target.contains('*') {
        return target.to_owned();
    }
    let mut out = String::with_capacity(target.len() + 16);
    let mut i = 0;
    for (n, piece) in target.split('*').enumerate() {
        if n > 0 {
            out.push_str(captures.get(i).or(captures.last()).map_or("", String::as_str));
            i += 1;
        }
        out.push_str(piece);
    }
    out
}

/// Every model group, indexed for resolution.
#[derive(Debug, Default)]
pub struct Catalog {
    exact: HashMap<String, Arc<ModelGroup>>,
    /// Pattern groups, most specific first.
    patterns: Vec<(Pattern, Arc<ModelGroup>)>,
    /// Group names in config order, for listings.
    order: Vec<String>,
}

impl Catalog {
    /// Builds the catalog. With no config at all, every name goes to GitHub Copilot.
    pub fn from_config(config: &Config) -> Self {
        Self::build(config, Vec::new(), None)
    }

    /// Builds the catalog from model entries.
    pub fn from_entries(entries: &[ModelEntry]) -> Self {
        let deployments = entries
            .iter()
            .enumerate()
            .map(|(i, e)| Arc::new(Deployment::with_origin(e.clone(), Origin::Config, i)))
            .collect();
        Self::from_deployments(deployments)
    }

    /// The config's deployments (the Copilot catch-all when there is no config), then the
    /// stored ones. A deployment `previous` already has, unchanged, is carried over with its
    /// health (cooldowns, latency, in flight), so a rebuild forgets nothing about it.
    pub fn build(config: &Config, stored: Vec<ModelEntry>, previous: Option<&Catalog>) -> Self {
        let from_file =
            if config.is_default() { vec![default_copilot_entry()] } else { config.models.clone() };
        let fresh = from_file
            .into_iter()
            .enumerate()
            .map(|(i, e)| Deployment::with_origin(e, Origin::Config, i))
            .chain(stored.into_iter().map(|e| Deployment::with_origin(e, Origin::Stored, 0)));
        let deployments = fresh
            .map(|d| {
                previous
                    .and_then(|p| {
                        p.deployments().find(|old| {
                            old.origin == d.origin && old.id == d.id && old.entry == d.entry
                        })
                    })
                    .cloned()
                    .unwrap_or_else(|| Arc::new(d))
            })
            .collect();
        Self::from_deployments(deployments)
    }

    /// Groups deployments by `model_name`, keeping their order.
    fn from_deployments(deployments: Vec<Arc<Deployment>>) -> Self {
        let mut groups: Vec<(String, Vec<Arc<Deployment>>)> = Vec::new();
        for d in deployments {
            match groups.iter_mut().find(|(name, _)| *name == d.entry.model_name) {
                Some((_, ds)) => ds.push(d),
                None => groups.push((d.entry.model_name.clone(), vec![d])),
            }
        }
        let mut catalog = Self::default();
        for (name, deployments) in groups {
            catalog.order.push(name.clone());
            let shared_name = Arc::from(name.as_str());
            let group = Arc::new(ModelGroup { name: name.clone(), deployments, shared_name });
            if name.contains('*') {
                catalog.patterns.push((Pattern::new(&name), group));
            } else {
                catalog.exact.insert(name, group);
            }
        }
        // Stable: equally specific patterns keep config order.
        catalog.patterns.sort_by_key(|(p, _)| std::cmp::Reverse(p.specificity()));
        catalog
    }

    /// Resolves a requested model name.
    pub fn resolve(&self, requested: &str) -> Option<Route> {
        if let Some(group) = self.exact.get(requested) {
            return Some(Route {
                group: group.clone(),
                name: requested.into(),
                captures: Vec::new(),
            });
        }
        self.patterns.iter().find_map(|(pattern, group)| {
            pattern.captures(requested).map(|captures| Route {
                group: group.clone(),
                name: requested.into(),
                captures,
            })
        })
    }

    /// Names a client can ask for as written (patterns left out), in config order.
    pub fn model_names(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(String::as_str).filter(|n| !n.contains('*'))
    }

    /// Every group name, patterns included, in config order.
    pub fn group_names(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(String::as_str)
    }

    /// A group by its exact name.
    pub fn group(&self, name: &str) -> Option<&Arc<ModelGroup>> {
        self.exact
            .get(name)
            .or_else(|| self.patterns.iter().find(|(p, _)| p.as_str() == name).map(|(_, g)| g))
    }

    /// Every deployment, in config order.
    pub fn deployments(&self) -> impl Iterator<Item = &Arc<Deployment>> {
        self.order.iter().filter_map(|n| self.group(n)).flat_map(|g| g.deployments.iter())
    }

    /// A deployment by its `model_info.id`.
    pub fn deployment(&self, id: &str) -> Option<&Arc<Deployment>> {
        self.deployments().find(|d| d.id() == id)
    }
}

/// The catch-all route used when tollgate runs without a config file.
pub fn default_copilot_entry() -> ModelEntry {
    ModelEntry {
        model_name: "*".to_owned(),
        model: "github_copilot/*".to_owned(),
        provider: ProviderKind::GithubCopilot,
        upstream_model: "*".to_owned(),
        api_base: None,
        api_key: None,
        extra_headers: Vec::new(),
        timeout: None,
        stream_timeout: None,
        drop_params: true,
        weight: 1.0,
        id: None,
        access_groups: Vec::new(),
        pricing: Default::default(),
        fallbacks: Vec::new(),
        rpm: None,
        tpm: None,
        strip_thinking: false,
        described: Default::default(),
    }
}

#[cfg(test)]
mod tests;
