//! Users' console passwords: stored as argon2 hashes, apart from the user record (so they
//! never reach the in-memory directory, its snapshot or an answer). Setting or clearing one
//! ends the user's console sessions.

use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHasher as _};
use axum::http::StatusCode;
use serde_json::json;

use super::input::{bad, store_error};
use super::{Actor, Subject, audit};
use crate::error::ApiError;
use crate::state::AppState;

/// Fewest characters a password may have.
pub const MIN_CHARS: usize = 8;

/// An argon2id hash of `password` with a random salt.
pub async fn hash(password: &str) -> Result<String, ApiError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r)
    .map_err(|e| {
        tracing::error!(error = %e, "cannot hash a password");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "The password cannot be stored.")
    })
}

/// Sets (or, with `None`, removes) `user_id`'s console password; audited without it.
pub async fn set(
    state: &AppState,
    actor: &Actor,
    user_id: &str,
    password: Option<&str>,
) -> Result<(), ApiError> {
    let hashed = match password {
        Some(p) if p.chars().count() < MIN_CHARS => {
            return Err(bad("password", "must have at least 8 characters"));
        }
        Some(p) => Some(hash(p).await?),
        None => None,
    };
    state.store().set_password(user_id, hashed.as_deref()).await.map_err(store_error)?;
    // Sessions opened with the old password end.
    state.store().delete_user_sessions(user_id).await.map_err(store_error)?;
    let action = if password.is_some() { "set_password" } else { "clear_password" };
    let after = json!({ "password": if password.is_some() { "<redacted>" } else { "none" } });
    audit(
        state,
        actor,
        action,
        Subject { object_type: "user", object_id: user_id },
        None,
        Some(&after),
    )
    .await;
    Ok(())
}
