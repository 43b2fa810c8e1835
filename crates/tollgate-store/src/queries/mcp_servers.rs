//! MCP servers added at runtime.

use sqlx::Pool;

use super::{changes, select, taken};
use crate::patch;
use crate::sql::{Dialect, Param, Query};
use crate::{EntityKind, McpServerPatch, McpServerRecord, NewMcpServer, StoreError};

/// Columns of `mcp_servers`, in [`McpServerRecord`] order.
const COLUMNS: &str = "name, entry, created_by, updated_by, created_at, updated_at";

fn check(name: &str, entry: &serde_json::Value) -> Result<(), StoreError> {
    if name.trim().is_empty() {
        return Err(StoreError::Invalid("an MCP server needs a name".to_owned()));
    }
    if !entry.is_object() {
        return Err(StoreError::Invalid("an MCP server's entry must be an object".to_owned()));
    }
    Ok(())
}

fn changed(name: &str) -> [(EntityKind, String); 1] {
    [(EntityKind::McpServer, name.to_owned())]
}

pub(super) async fn create<D: Dialect>(
    pool: &Pool<D::Db>,
    server: NewMcpServer,
) -> Result<McpServerRecord, StoreError> {
    check(&server.name, &server.entry)?;
    let now = patch::now();
    let mut tx = D::begin_write(pool).await?;
    let q = super::insert::<D, 6>(
        "mcp_servers",
        COLUMNS,
        [
            Param::from(&server.name),
            Param::from(&server.entry),
            Param::from(&server.created_by),
            Param::from(&server.created_by),
            Param::from(now),
            Param::from(now),
        ],
    );
    let row: McpServerRecord =
        q.one(&mut tx).await.map_err(|e| taken(e, || format!("MCP server `{}`", server.name)))?;
    changes::append::<D>(&mut tx, &changed(&server.name), now).await?;
    tx.commit().await?;
    Ok(row)
}

pub(super) async fn get<D: Dialect>(
    pool: &Pool<D::Db>,
    name: &str,
) -> Result<Option<McpServerRecord>, StoreError> {
    let mut q = select::<D>(COLUMNS, "mcp_servers", " WHERE name = ");
    q.bind(name);
    let mut conn = pool.acquire().await?;
    Ok(q.optional(&mut conn).await?)
}

pub(super) async fn list<D: Dialect>(
    pool: &Pool<D::Db>,
) -> Result<Vec<McpServerRecord>, StoreError> {
    let q = select::<D>(COLUMNS, "mcp_servers", " ORDER BY created_at, name");
    let mut conn = pool.acquire().await?;
    Ok(q.all(&mut conn).await?)
}

pub(super) async fn update<D: Dialect>(
    pool: &Pool<D::Db>,
    name: &str,
    patch: McpServerPatch,
) -> Result<McpServerRecord, StoreError> {
    check(name, &patch.entry)?;
    let now = patch::now();
    let mut tx = D::begin_write(pool).await?;
    let mut q = Query::<D>::new("UPDATE mcp_servers SET entry = ");
    q.bind(&patch.entry)
        .and(", updated_by = ", &patch.updated_by)
        .and(", updated_at = ", now)
        .and(" WHERE name = ", name)
        .push(" RETURNING ")
        .push(COLUMNS);
    let row: Option<McpServerRecord> = q.optional(&mut tx).await?;
    let row =
        row.ok_or_else(|| StoreError::NotFound { kind: "mcp_server", id: name.to_owned() })?;
    changes::append::<D>(&mut tx, &changed(name), now).await?;
    tx.commit().await?;
    Ok(row)
}

pub(super) async fn delete<D: Dialect>(pool: &Pool<D::Db>, name: &str) -> Result<bool, StoreError> {
    let now = patch::now();
    let mut tx = D::begin_write(pool).await?;
    let mut q = Query::<D>::new("DELETE FROM mcp_servers WHERE name = ");
    q.bind(name);
    let deleted = q.execute(&mut tx).await? > 0;
    if deleted {
        changes::append::<D>(&mut tx, &changed(name), now).await?;
    }
    tx.commit().await?;
    Ok(deleted)
}
