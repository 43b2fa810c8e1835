//! Linked GitHub Copilot accounts: the shared `default` one and a key's own (`key:<hash>`).
//! Linking happens on the auth helper's `/github` page; here an account is unlinked (from the
//! console, or with its key) or follows a regenerated key. Each is audited with the GitHub
//! login only, never the token.

use serde_json::json;
use tollgate_store::{GITHUB_COPILOT_PROVIDER, StoreError, key_credential_owner};

use super::input::store_error;
use super::{Actor, Subject, audit};
use crate::error::ApiError;
use crate::state::AppState;

/// Unlinks `owner`'s account: the stored credential goes, this process stops serving with it
/// at once (others follow the change feed), and the unlink is audited. Answers whether there
/// was one.
pub async fn unlink(state: &AppState, actor: &Actor, owner: &str) -> Result<bool, ApiError> {
    let store = state.store();
    let Some(record) =
        store.get_credential(GITHUB_COPILOT_PROVIDER, owner).await.map_err(store_error)?
    else {
        return Ok(false);
    };
    let gone =
        store.delete_credential(GITHUB_COPILOT_PROVIDER, owner).await.map_err(store_error)?;
    if gone {
        state.providers().copilot().remove_account(owner);
        audit_account(state, actor, "unlink", owner, record.label.as_deref()).await;
    }
    Ok(gone)
}

/// A key's own Copilot account is stored under its token hash, sealed with that owner as
/// associated data; a regenerated key keeps its account, re-sealed for its new hash. The key
/// itself has already changed, so a failure here is logged rather than answered: the holder
/// can link the account again on the `/github` page. The move is audited as an unlink from
/// the old owner and a link to the new one.
pub(super) async fn moved(state: &AppState, actor: &Actor, old_hash: &str, new_hash: &str) {
    let (from, to) = (key_credential_owner(old_hash), key_credential_owner(new_hash));
    let store = state.store();
    let moved = async {
        let Some(record) = store.get_credential(GITHUB_COPILOT_PROVIDER, &from).await? else {
            return Ok(None);
        };
        let login = record.label.clone();
        let token = state.secret_box().open_credential(&record)?;
        let sealed = state.secret_box().seal_credential(
            GITHUB_COPILOT_PROVIDER,
            &to,
            record.label,
            &token,
        )?;
        store.put_credential(sealed).await?;
        store.delete_credential(GITHUB_COPILOT_PROVIDER, &from).await?;
        // This process serves the new key with it at once; others follow the change feed.
        let copilot = state.providers().copilot();
        copilot.set_account(&to, token.into());
        copilot.remove_account(&from);
        Ok::<_, StoreError>(Some(login))
    };
    match moved.await {
        Ok(Some(login)) => {
            tracing::info!("a regenerated key keeps its linked Copilot account");
            audit_account(state, actor, "unlink", &from, login.as_deref()).await;
            audit_account(state, actor, "link", &to, login.as_deref()).await;
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(
            error = %e,
            "the regenerated key's Copilot account could not be moved; link it again on /github"
        ),
    }
}

/// Audits a Copilot account linked to (`link`) or unlinked from (`unlink`) `owner`: the
/// GitHub login only, never the token.
async fn audit_account(
    state: &AppState,
    actor: &Actor,
    action: &str,
    owner: &str,
    login: Option<&str>,
) {
    let account = json!({ "login": login });
    let (before, after) =
        if action == "link" { (None, Some(&account)) } else { (Some(&account), None) };
    let subject = Subject { object_type: "linked_account", object_id: owner };
    audit(state, actor, action, subject, before, after).await;
}
