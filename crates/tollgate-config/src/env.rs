//! Where configuration reads environment variables from, and `os.environ/NAME` references.

use std::collections::HashMap;

/// A source of environment variables. The process environment in production; a map in tests,
/// so that tests running in parallel never touch the real environment.
pub trait EnvSource: Send + Sync {
    /// The value of `name`, if set and not empty.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

/// A fixed set of variables.
#[derive(Debug, Clone, Default)]
pub struct MapEnv(pub HashMap<String, String>);

impl MapEnv {
    /// Builds a map environment from pairs.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

impl EnvSource for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).filter(|v| !v.is_empty()).cloned()
    }
}

/// The prefix LiteLLM configs use to reference an environment variable.
pub const ENV_REF_PREFIX: &str = "os.environ/";

/// Replaces every `os.environ/NAME` string in the tree with the variable's value. A reference to
/// an unset variable becomes null and is reported as `(key path, variable name)`.
pub(crate) fn resolve_env_refs(
    value: &mut yaml_serde::Value,
    env: &dyn EnvSource,
    path: &mut Vec<String>,
    missing: &mut Vec<(String, String)>,
) {
    match value {
        yaml_serde::Value::String(s) => {
            if let Some(name) = s.strip_prefix(ENV_REF_PREFIX) {
                let name = name.trim().to_owned();
                match env.var(&name) {
                    Some(v) => *s = v,
                    None => {
                        missing.push((path.join("."), name));
                        *value = yaml_serde::Value::Null;
                    }
                }
            }
        }
        yaml_serde::Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let last = path.pop().unwrap_or_default();
                path.push(format!("{last}[{i}]"));
                resolve_env_refs(item, env, path, missing);
                path.pop();
                path.push(last);
            }
        }
        yaml_serde::Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                path.push(key_name(k));
                resolve_env_refs(v, env, path, missing);
                path.pop();
            }
        }
        yaml_serde::Value::Tagged(tagged) => {
            resolve_env_refs(&mut tagged.value, env, path, missing)
        }
        _ => {}
    }
}

fn key_name(k: &yaml_serde::Value) -> String {
    match k {
        yaml_serde::Value::String(s) => s.clone(),
        other => yaml_serde::to_string(other).unwrap_or_default().trim().to_owned(),
    }
}
