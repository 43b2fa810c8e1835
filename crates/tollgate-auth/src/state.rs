//! The auth helper's shared state, and what a visit to `/github` leads to.

use std::sync::Arc;

use tollgate_config::Settings;
use tollgate_guard::LocalNames;
use tollgate_providers::github::GithubError;
use tollgate_store::{CredentialRecord, GITHUB_COPILOT_PROVIDER, SecretBox, Store};

use crate::access::{Access, Caller};
use crate::flows::{Flow, Flows};

/// Everything the auth helper's handlers share; cheap to clone.
#[derive(Debug, Clone)]
pub struct AuthState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    access: Access,
    flows: Arc<Flows>,
    local_names: LocalNames,
}

/// Where a visit leads.
#[derive(Debug)]
pub(crate) enum Begin {
    /// A pending device flow to show (new or reused).
    Flow(Arc<Flow>),
    /// The owner's account is linked already.
    Linked(CredentialRecord),
}

/// Why a flow could not begin.
#[derive(Debug)]
pub(crate) enum BeginError {
    /// GitHub refused or could not be reached.
    Github(GithubError),
    /// The store could not be asked (details are logged).
    Store,
}

impl AuthState {
    /// The auth helper for these settings (the master key decides who may link the shared
    /// account), talking the device flow to `github_url` (`TOLLGATE_GITHUB_URL`) and asking
    /// `github_api_url` (`TOLLGATE_GITHUB_API_URL`) for the linked login. Linked tokens are
    /// sealed with `secret_box` and kept in `store`.
    pub fn new(
        settings: &Settings,
        store: Store,
        http: reqwest::Client,
        secret_box: Arc<SecretBox>,
        github_url: String,
        github_api_url: String,
    ) -> Self {
        let flows = Arc::new(Flows::new(
            Arc::clone(&store),
            secret_box,
            http,
            &github_url,
            &github_api_url,
        ));
        let access = Access::new(settings.master_key.clone(), store);
        let local_names = LocalNames::of_this_machine(settings.host.as_deref());
        Self { inner: Arc::new(Inner { access, flows, local_names }) }
    }

    pub(crate) fn access(&self) -> &Access {
        &self.inner.access
    }

    pub(crate) fn flows(&self) -> &Arc<Flows> {
        &self.inner.flows
    }

    /// The `Host` names that address this machine, accepted while no master key is set.
    pub(crate) fn local_names(&self) -> &LocalNames {
        &self.inner.local_names
    }

    /// The caller's pending flow if there is one; else their linked account (unless
    /// `relink`); else a new flow.
    pub(crate) async fn begin(&self, caller: &Caller, relink: bool) -> Result<Begin, BeginError> {
        let flows = self.flows();
        if let Some(flow) = flows.pending(&caller.owner, None) {
            return Ok(Begin::Flow(flow));
        }
        if !relink {
            let store = &flows.linker().store;
            match store.get_credential(GITHUB_COPILOT_PROVIDER, &caller.owner).await {
                Ok(Some(record)) => return Ok(Begin::Linked(record)),
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "auth helper: cannot read linked accounts");
                    return Err(BeginError::Store);
                }
            }
        }
        flows
            .start_or_reuse(&caller.owner, &caller.owner_label, &caller.actor, None)
            .await
            .map(Begin::Flow)
            .map_err(BeginError::Github)
    }
}
