//! Provider credentials on SQLite.

use sqlx::SqlitePool;

use super::{begin_write, changes, ts};
use crate::patch::{self, check_credential};
use crate::rows::{CredentialRow, credential_columns};
use crate::{CredentialRecord, EntityKind, NewCredential, StoreError, credential_id};

/// Inserts or replaces the credential of `(provider, owner)`; `created_at` survives a
/// replacement.
pub(super) async fn put(
    pool: &SqlitePool,
    c: NewCredential,
) -> Result<CredentialRecord, StoreError> {
    check_credential(&c)?;
    let now = patch::now();
    let mut tx = begin_write(pool).await?;
    let row: CredentialRow = sqlx::query_as(concat!(
        "INSERT INTO provider_credentials (",
        credential_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) \
         ON CONFLICT (provider, owner) DO UPDATE SET label = EXCLUDED.label, \
         ciphertext = EXCLUDED.ciphertext, nonce = EXCLUDED.nonce, \
         updated_at = EXCLUDED.updated_at RETURNING ",
        credential_columns!()
    ))
    .bind(&c.provider)
    .bind(&c.owner)
    .bind(&c.label)
    .bind(&c.ciphertext)
    .bind(&c.nonce)
    .bind(ts(now))
    .fetch_one(&mut *tx)
    .await?;
    let change = [(EntityKind::Credential, credential_id(&c.provider, &c.owner))];
    changes::append(&mut tx, &change, now).await?;
    tx.commit().await?;
    Ok(row.into())
}

pub(super) async fn get(
    pool: &SqlitePool,
    provider: &str,
    owner: &str,
) -> Result<Option<CredentialRecord>, StoreError> {
    let row: Option<CredentialRow> = sqlx::query_as(concat!(
        "SELECT ",
        credential_columns!(),
        " FROM provider_credentials WHERE provider = ?1 AND owner = ?2"
    ))
    .bind(provider)
    .bind(owner)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Into::into))
}

pub(super) async fn list(
    pool: &SqlitePool,
    provider: &str,
) -> Result<Vec<CredentialRecord>, StoreError> {
    let rows: Vec<CredentialRow> = sqlx::query_as(concat!(
        "SELECT ",
        credential_columns!(),
        " FROM provider_credentials WHERE provider = ?1 ORDER BY owner"
    ))
    .bind(provider)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub(super) async fn delete(
    pool: &SqlitePool,
    provider: &str,
    owner: &str,
) -> Result<bool, StoreError> {
    let now = patch::now();
    let mut tx = begin_write(pool).await?;
    let deleted =
        sqlx::query("DELETE FROM provider_credentials WHERE provider = ?1 AND owner = ?2")
            .bind(provider)
            .bind(owner)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
    if deleted {
        let change = [(EntityKind::Credential, credential_id(provider, owner))];
        changes::append(&mut tx, &change, now).await?;
    }
    tx.commit().await?;
    Ok(deleted)
}
