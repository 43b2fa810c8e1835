//! MCP access across keys and teams: removing a server every holder names.
//!
//! The JSON functions that could edit the column in place differ between PostgreSQL and
//! SQLite, so the rows that say anything at all are read under a lock, edited in Rust and
//! written back, once for both databases.

use sqlx::Pool;
use sqlx::types::Json;

use super::changes;
use crate::patch::{self, object_permission_json};
use crate::sql::{Dialect, Query};
use crate::{EntityKind, ObjectPermission, StoreError};

/// The tables whose rows carry an `object_permission`: their kind and id column.
const HOLDERS: [(EntityKind, &str, &str); 2] =
    [(EntityKind::Key, "virtual_keys", "token_hash"), (EntityKind::Team, "teams", "team_id")];

/// Removes the MCP server `name` from every key's and team's `mcp_servers` and
/// `mcp_tool_permissions`; stamps each row it changes and appends it to the change feed.
/// Returns how many rows changed.
pub(super) async fn forget_mcp_server<D: Dialect>(
    pool: &Pool<D::Db>,
    name: &str,
) -> Result<u64, StoreError> {
    let now = patch::now();
    let mut tx = D::begin_write(pool).await?;
    let mut changed = Vec::new();
    for (kind, table, id) in HOLDERS {
        // `{}` is what a row that says nothing holds (the column's default, and what an
        // empty access is written as); only the others can name a server.
        let mut q = Query::<D>::new("SELECT ");
        q.push(id)
            .push(", object_permission FROM ")
            .push(table)
            .push(" WHERE object_permission <> '{}' ORDER BY ")
            .push(id)
            .push(D::LOCK_ROWS);
        let rows: Vec<(String, Json<ObjectPermission>)> = q.all(&mut tx).await?;
        for (row_id, Json(mut access)) in rows {
            if !access.forget_mcp_server(name) {
                continue;
            }
            let value = object_permission_json(&access)?;
            let mut q = Query::<D>::new("UPDATE ");
            q.push(table)
                .and(" SET object_permission = ", &value)
                .and(", updated_at = ", now)
                .push(" WHERE ")
                .push(id)
                .and(" = ", &row_id);
            q.execute(&mut tx).await?;
            changed.push((kind, row_id));
        }
    }
    changes::append::<D>(&mut tx, &changed, now).await?;
    tx.commit().await?;
    Ok(changed.len() as u64)
}
