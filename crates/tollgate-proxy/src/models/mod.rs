//! The model table: config.yaml's models and the stored ones, merged into one router that
//! requests read through an atomic swap. A change — through the management API, another
//! process's change feed, or a reload of config.yaml — builds a new router and swaps it in;
//! a request keeps the router (and so the plan) it started with.

pub mod seal;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::{Map, Value, json};
use tollgate_config::{Config, ConfigError, Diagnostic, ModelEntry, ProcessEnv};
use tollgate_router::Router;
use tollgate_store::{CredentialRecord, ModelRecord, SecretBox, Store, StoreError};

use crate::kept::Kept;

/// The provider name named credentials (`/credentials`) are stored under.
pub const CREDENTIAL_PROVIDER: &str = "credential";

/// The `litellm_params` key naming a stored credential whose values fill the model's.
pub const CREDENTIAL_NAME_PARAM: &str = "litellm_credential_name";

/// A stored credential's content: the values a model takes, and a free-form description.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct CredentialContent {
    /// `api_key`, `api_base`, ...: filled into the `litellm_params` of models naming it.
    pub credential_values: Map<String, Value>,
    /// Whatever the admin noted (provider, description); never secret.
    #[serde(default)]
    pub credential_info: Map<String, Value>,
}

/// Opens a stored named credential.
pub fn open_credential(
    sb: &SecretBox,
    record: &CredentialRecord,
) -> Result<CredentialContent, StoreError> {
    let text = sb.open_credential(record)?;
    serde_json::from_str(&text)
        .map_err(|_| StoreError::Crypto(format!("credential `{}` is corrupt", record.owner)))
}

/// Named credentials by name, opened.
pub type Credentials = HashMap<String, CredentialContent>;

/// A stored model as the router serves it, or why it cannot be served.
#[derive(Debug, Clone)]
pub struct Built {
    /// The entry.
    pub entry: ModelEntry,
    /// What a config file would be warned about (an unset `os.environ/` variable, say).
    pub warnings: Vec<Diagnostic>,
}

/// Checks and builds one model from plaintext `litellm_params` (credentials open), exactly as a
/// config entry is checked; a `litellm_credential_name` is filled from `credentials`.
pub fn build_entry(
    model_id: &str,
    model_name: &str,
    params: &Map<String, Value>,
    model_info: &Value,
    credentials: &Credentials,
    config: &Config,
) -> Result<Built, ConfigError> {
    let mut params = params.clone();
    if let Some(name) = params.remove(CREDENTIAL_NAME_PARAM) {
        let name = name.as_str().unwrap_or_default();
        let cred = credentials.get(name).ok_or_else(|| ConfigError {
            file: "model".to_owned(),
            key: format!("litellm_params.{CREDENTIAL_NAME_PARAM}"),
            reason: format!("no credential is named `{name}`"),
        })?;
        for (k, v) in &cred.credential_values {
            params.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let mut info = model_info.as_object().cloned().unwrap_or_default();
    info.remove("id");
    let value = json!({ "model_name": model_name, "litellm_params": params, "model_info": info });
    let (mut entry, warnings) =
        tollgate_config::model_entry_from_json(&value, &config.settings, &ProcessEnv)?;
    entry.id = Some(model_id.to_owned());
    Ok(Built { entry, warnings })
}

/// config.yaml's part of the table, and the stored part as last read.
#[derive(Debug)]
pub struct ModelTable {
    router: ArcSwap<Router>,
    file: ArcSwap<Config>,
    stored: ArcSwap<Vec<ModelRecord>>,
    stored_entries: ArcSwap<Vec<ModelEntry>>,
    rebuilding: tokio::sync::Mutex<()>,
    changed: Arc<tokio::sync::Notify>,
    snapshot: Kept<ModelSnapshot>,
}

/// What a rebuild did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rebuilt {
    /// Stored models now served.
    pub served: usize,
    /// Stored models left out (each logged with its reason).
    pub skipped: usize,
}

impl ModelTable {
    /// A table of `config`'s models only, until [`ModelTable::rebuild`] reads the store (or
    /// [`ModelTable::load_snapshot`] the copy kept in the data directory);
    /// [`ModelTable::follow`] rebuilds whenever `changed` is woken.
    pub fn new(config: &Config, changed: Arc<tokio::sync::Notify>) -> Self {
        Self {
            router: ArcSwap::from_pointee(Router::from_config(config)),
            file: ArcSwap::from_pointee(config.clone()),
            stored: ArcSwap::default(),
            stored_entries: ArcSwap::default(),
            rebuilding: tokio::sync::Mutex::new(()),
            changed,
            snapshot: Kept::new(
                config.settings.data_dir.join(MODEL_SNAPSHOT_FILE_NAME),
                SNAPSHOT_VERSION,
                "stored-model",
            ),
        }
    }

    /// The router requests plan with now. Hold it for the whole request.
    pub fn router(&self) -> Arc<Router> {
        self.router.load_full()
    }

    /// The config file's part: its models and router settings as last loaded.
    pub fn file(&self) -> Arc<Config> {
        self.file.load_full()
    }

    /// The stored models as last read.
    pub fn stored(&self) -> Arc<Vec<ModelRecord>> {
        self.stored.load_full()
    }

    /// Asks the background task ([`ModelTable::follow`]) to rebuild soon: a model or a named
    /// credential changed in another process.
    pub fn notify_changed(&self) {
        self.changed.notify_one();
    }

    /// Reads the stored models and named credentials and swaps in a router serving them with
    /// config.yaml's. A stored model that cannot be built (its credential was removed, say) is
    /// left out and logged; the others are served. What was read is kept on disk, sealed as
    /// stored, for a start while the database is down.
    pub async fn rebuild(&self, store: &Store, sb: &SecretBox) -> Result<Rebuilt, StoreError> {
        let _one_at_a_time = self.rebuilding.lock().await;
        let records = store.list_models().await?;
        let credentials = store.list_credentials(CREDENTIAL_PROVIDER).await?;
        let report = self.apply(sb, &records, &credentials);
        self.snapshot.keep(ModelSnapshot::new(records, &credentials));
        Ok(report)
    }

    /// Serves the stored models of the snapshot in the data directory, if there is one: what
    /// a process started while the database is down knows until the database answers.
    pub async fn load_snapshot(&self, sb: &SecretBox) -> Option<Rebuilt> {
        let snapshot = self.snapshot.load()?;
        let _one_at_a_time = self.rebuilding.lock().await;
        let credentials: Vec<CredentialRecord> =
            snapshot.credentials.iter().filter_map(SealedCredential::record).collect();
        let report = self.apply(sb, &snapshot.models, &credentials);
        tracing::info!(
            models = report.served,
            "stored models served from the snapshot until the database answers"
        );
        Some(report)
    }

    fn apply(
        &self,
        sb: &SecretBox,
        records: &[ModelRecord],
        credentials: &[CredentialRecord],
    ) -> Rebuilt {
        let credentials = open_credentials(sb, credentials);
        let file = self.file();
        let mut report = Rebuilt::default();
        let mut entries = Vec::with_capacity(records.len());
        for r in records {
            match open_record(sb, r).and_then(|params| {
                build_entry(&r.model_id, &r.model_name, &params, &r.model_info, &credentials, &file)
                    .map_err(|e| StoreError::Invalid(e.to_string()))
            }) {
                Ok(built) => {
                    for w in &built.warnings {
                        tracing::warn!(model_id = %r.model_id, "stored model: {w}");
                    }
                    entries.push(built.entry);
                    report.served += 1;
                }
                Err(e) => {
                    report.skipped += 1;
                    tracing::error!(model_id = %r.model_id, model_name = %r.model_name, error = %e, "stored model not served");
                }
            }
        }
        self.stored.store(Arc::new(records.to_vec()));
        self.stored_entries.store(Arc::new(entries.clone()));
        self.swap(&file, entries);
        report
    }

    fn swap(&self, file: &Config, stored: Vec<ModelEntry>) {
        let current = self.router();
        self.router.store(Arc::new(Router::build(file, stored, Some(&current))));
    }

    /// Re-reads config.yaml: a valid file replaces the file's models and router settings (the
    /// stored models stay); an invalid one is refused with the message start-up would give,
    /// and the running table stays. Returns the settings that changed but take effect only at
    /// the next start.
    pub async fn reload_file(&self) -> Result<Reloaded, ConfigError> {
        let _one_at_a_time = self.rebuilding.lock().await;
        let old = self.file();
        let Some(path) = old.source.clone() else {
            return Err(ConfigError {
                file: "<defaults>".to_owned(),
                key: String::new(),
                reason: "tollgate runs without a config file; there is nothing to reload"
                    .to_owned(),
            });
        };
        let path2 = path.clone();
        let new =
            tokio::task::spawn_blocking(move || tollgate_config::load(Some(&path2), &ProcessEnv))
                .await
                .map_err(|e| ConfigError {
                    file: path.display().to_string(),
                    key: String::new(),
                    reason: format!("the reload failed: {e}"),
                })??;
        let restart_needed = restart_needed(&old, &new);
        let models = new.models.len();
        let diagnostics = new.diagnostics.iter().map(ToString::to_string).collect();
        self.file.store(Arc::new(new));
        let file = self.file();
        self.swap(&file, self.stored_entries.load().as_ref().clone());
        Ok(Reloaded { path, models, restart_needed, diagnostics })
    }

    /// Rebuilds whenever another process changes a model or credential (the directory's
    /// feed calls [`ModelTable::notify_changed`]), and every `every` regardless.
    pub async fn follow(self: Arc<Self>, store: Store, sb: Arc<SecretBox>, every: Duration) {
        loop {
            if let Err(e) = self.rebuild(&store, &sb).await {
                tracing::debug!(error = %e, "stored models not read: store unavailable");
            }
            let _ = tokio::time::timeout(every, self.changed.notified()).await;
        }
    }
}

/// What a config reload did.
#[derive(Debug, Clone)]
pub struct Reloaded {
    /// The file read.
    pub path: PathBuf,
    /// Its models.
    pub models: usize,
    /// Settings that changed and apply only after a restart.
    pub restart_needed: Vec<&'static str>,
    /// The new file's warnings.
    pub diagnostics: Vec<String>,
}

/// Process settings a reload cannot apply: the listener, the database and the credentials
/// callers present are bound at start-up.
fn restart_needed(old: &Config, new: &Config) -> Vec<&'static str> {
    let (o, n) = (&old.settings, &new.settings);
    let mut out = Vec::new();
    if o.host != n.host || o.port != n.port || o.auth_port != n.auth_port {
        out.push("listen address");
    }
    if o.master_key != n.master_key {
        out.push("general_settings.master_key");
    }
    if o.database_url != n.database_url {
        out.push("general_settings.database_url");
    }
    if o.store_prompts != n.store_prompts {
        out.push("general_settings.store_prompts_in_spend_logs");
    }
    if o.max_request_bytes != n.max_request_bytes {
        out.push("general_settings.max_request_size_mb");
    }
    out
}

/// A stored model's `litellm_params` with its credentials opened.
pub fn open_record(sb: &SecretBox, r: &ModelRecord) -> Result<Map<String, Value>, StoreError> {
    let mut params = r.litellm_params.as_object().cloned().unwrap_or_default();
    seal::open(sb, &model_scope(&r.model_id), &mut params)?;
    Ok(params)
}

/// What a stored model's sealed values are bound to.
pub fn model_scope(model_id: &str) -> String {
    format!("model/{model_id}")
}

/// Every named credential, opened; one that cannot be opened is logged and left out.
pub async fn load_credentials(store: &Store, sb: &SecretBox) -> Result<Credentials, StoreError> {
    Ok(open_credentials(sb, &store.list_credentials(CREDENTIAL_PROVIDER).await?))
}

/// Named credentials opened; one that cannot be opened is logged and left out.
pub fn open_credentials(sb: &SecretBox, records: &[CredentialRecord]) -> Credentials {
    let mut out = Credentials::new();
    for r in records {
        match open_credential(sb, r) {
            Ok(c) => {
                out.insert(r.owner.clone(), c);
            }
            Err(e) => tracing::error!(credential = %r.owner, error = %e, "credential not readable"),
        }
    }
    out
}

/// File name of the stored-model snapshot inside the data directory.
pub const MODEL_SNAPSHOT_FILE_NAME: &str = "models.json";

const SNAPSHOT_VERSION: u32 = 1;

/// The stored models and named credentials as last read, sealed exactly as stored: the
/// file holds no credential in clear.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct ModelSnapshot {
    models: Vec<ModelRecord>,
    credentials: Vec<SealedCredential>,
}

/// A named credential's sealed form.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct SealedCredential {
    owner: String,
    ciphertext: String,
    nonce: String,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

impl SealedCredential {
    fn record(&self) -> Option<CredentialRecord> {
        Some(CredentialRecord {
            provider: CREDENTIAL_PROVIDER.to_owned(),
            owner: self.owner.clone(),
            label: None,
            ciphertext: hex::decode(&self.ciphertext).ok()?,
            nonce: hex::decode(&self.nonce).ok()?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

impl ModelSnapshot {
    fn new(models: Vec<ModelRecord>, credentials: &[CredentialRecord]) -> Self {
        let credentials = credentials
            .iter()
            .map(|c| SealedCredential {
                owner: c.owner.clone(),
                ciphertext: hex::encode(&c.ciphertext),
                nonce: hex::encode(&c.nonce),
                created_at: c.created_at,
                updated_at: c.updated_at,
            })
            .collect();
        Self { models, credentials }
    }
}
