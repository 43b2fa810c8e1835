//! Provider credentials (linked accounts' tokens), sealed before they get here.

use sqlx::Pool;

use super::changes;
use crate::patch::{self, check_credential};
use crate::rows::{CREDENTIAL_COLUMNS, CredentialRow};
use crate::sql::{Dialect, Param, Query};
use crate::{CredentialRecord, EntityKind, NewCredential, StoreError, credential_id};

fn select<'a, D: Dialect>(provider: &'a str) -> Query<'a, D> {
    let mut q = Query::new("SELECT ");
    q.push(CREDENTIAL_COLUMNS)
        .push(" FROM provider_credentials")
        .and(" WHERE provider = ", provider);
    q
}

/// Inserts or replaces the credential of `(provider, owner)`; `created_at` survives a
/// replacement.
pub(super) async fn put<D: Dialect>(
    pool: &Pool<D::Db>,
    c: NewCredential,
) -> Result<CredentialRecord, StoreError> {
    check_credential(&c)?;
    let now = patch::now();
    let mut tx = D::begin_write(pool).await?;
    let mut q = Query::<D>::new("INSERT INTO provider_credentials (");
    q.push(CREDENTIAL_COLUMNS).push(") VALUES ").values([
        Param::from(&c.provider),
        Param::from(&c.owner),
        Param::from(&c.label),
        Param::from(c.ciphertext.as_slice()),
        Param::from(c.nonce.as_slice()),
        Param::from(now),
        Param::from(now),
    ]);
    q.push(
        " ON CONFLICT (provider, owner) DO UPDATE SET label = excluded.label, \
         ciphertext = excluded.ciphertext, nonce = excluded.nonce, \
         updated_at = excluded.updated_at RETURNING ",
    )
    .push(CREDENTIAL_COLUMNS);
    let row: CredentialRow = q.one(&mut tx).await?;
    let change = [(EntityKind::Credential, credential_id(&c.provider, &c.owner))];
    changes::append::<D>(&mut tx, &change, now).await?;
    tx.commit().await?;
    Ok(row.into())
}

pub(super) async fn get<D: Dialect>(
    pool: &Pool<D::Db>,
    provider: &str,
    owner: &str,
) -> Result<Option<CredentialRecord>, StoreError> {
    let mut q = select::<D>(provider);
    q.and(" AND owner = ", owner);
    let mut conn = pool.acquire().await?;
    let row: Option<CredentialRow> = q.optional(&mut conn).await?;
    Ok(row.map(Into::into))
}

/// By owner, in byte order whatever the database's collation.
pub(super) async fn list<D: Dialect>(
    pool: &Pool<D::Db>,
    provider: &str,
) -> Result<Vec<CredentialRecord>, StoreError> {
    let mut q = select::<D>(provider);
    q.push(" ORDER BY owner").push(D::BYTE_ORDER);
    let mut conn = pool.acquire().await?;
    let rows: Vec<CredentialRow> = q.all(&mut conn).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub(super) async fn delete<D: Dialect>(
    pool: &Pool<D::Db>,
    provider: &str,
    owner: &str,
) -> Result<bool, StoreError> {
    let now = patch::now();
    let mut tx = D::begin_write(pool).await?;
    let mut q = Query::<D>::new("DELETE FROM provider_credentials WHERE provider = ");
    q.bind(provider).and(" AND owner = ", owner);
    let deleted = q.execute(&mut tx).await? > 0;
    if deleted {
        let change = [(EntityKind::Credential, credential_id(provider, owner))];
        changes::append::<D>(&mut tx, &change, now).await?;
    }
    tx.commit().await?;
    Ok(deleted)
}
