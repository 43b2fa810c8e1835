//! Backend-independent rules: validating limits, applying partial updates, paging, errors.
//!
//! Updates read the row under a lock, apply the patch here, and write the whole row back, so
//! both backends share one definition of what a patch means.

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::Value;

use crate::budget::{parse_budget_duration, premium_reset_after};
use crate::{
    KeyPatch, KeyRecord, Limits, NewCredential, ObjectPermission, StoreError, TeamMember,
    TeamPatch, TeamRecord, UserPatch, UserRecord,
};

/// The current time at the databases' common precision (PostgreSQL keeps microseconds), so a
/// record returned by a write equals the same record read back later.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// `null` metadata or permissions are stored as `{}`.
pub(crate) fn object_or_empty(value: Value) -> Value {
    if value.is_null() { Value::Object(serde_json::Map::new()) } else { value }
}

/// Checks an MCP access before it is stored: every server and tool name non-empty and
/// without NUL (which PostgreSQL's JSON refuses and SQLite would keep: both refuse it here).
pub(crate) fn check_object_permission(p: &ObjectPermission) -> Result<(), StoreError> {
    let names = p.mcp_servers.iter().flatten().map(|s| ("mcp_servers", s));
    let tools = p.mcp_tool_permissions.iter().flat_map(|(server, tools)| {
        std::iter::once(("mcp_tool_permissions", server))
            .chain(tools.iter().map(|t| ("mcp_tool_permissions", t)))
    });
    for (field, name) in names.chain(tools) {
        if name.is_empty() || name.contains('\0') {
            return Err(StoreError::Invalid(format!(
                "object_permission.{field} holds an empty name or one with a NUL character"
            )));
        }
    }
    Ok(())
}

/// An MCP access as its column stores it (`{}` when it says nothing).
pub(crate) fn object_permission_json(p: &ObjectPermission) -> Result<Value, StoreError> {
    serde_json::to_value(p)
        .map_err(|e| StoreError::Invalid(format!("object_permission cannot be stored: {e}")))
}

/// When a new holder's budget and premium budget first reset.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resets {
    pub(crate) budget: Option<DateTime<Utc>>,
    pub(crate) premium: Option<DateTime<Utc>>,
}

/// Validates limits and normalises the periods; returns them with the first reset times.
pub(crate) fn new_limits(
    mut limits: Limits,
    now: DateTime<Utc>,
) -> Result<(Limits, Resets), StoreError> {
    check_limits(&limits)?;
    limits.budget_duration = limits.budget_duration.map(|d| d.trim().to_owned());
    limits.premium_budget_duration = limits.premium_budget_duration.map(|d| d.trim().to_owned());
    let budget = match &limits.budget_duration {
        Some(period) => Some(now + parse_budget_duration(period)?),
        None => None,
    };
    let premium = Some(premium_reset_after(limits.premium_budget_duration.as_deref(), now)?);
    Ok((limits, Resets { budget, premium }))
}

fn check_limits(limits: &Limits) -> Result<(), StoreError> {
    if let Some(budget) = limits.max_budget {
        check_amount("max_budget", budget)?;
    }
    if let Some(premium) = limits.max_premium_requests {
        check_amount("max_premium_requests", premium)?;
    }
    for (name, value) in [
        ("rpm_limit", limits.rpm_limit),
        ("tpm_limit", limits.tpm_limit),
        ("max_parallel_requests", limits.max_parallel_requests),
    ] {
        if value.is_some_and(|v| v < 0) {
            return Err(StoreError::Invalid(format!("{name} must not be negative")));
        }
    }
    Ok(())
}

fn check_amount(name: &str, value: f64) -> Result<(), StoreError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!("{name} must be a finite amount of at least 0")))
    }
}

/// The limit fields every patch shares.
struct LimitsPatch {
    max_budget: Option<Option<f64>>,
    budget_duration: Option<Option<String>>,
    rpm_limit: Option<Option<i64>>,
    tpm_limit: Option<Option<i64>>,
    max_parallel_requests: Option<Option<i64>>,
    max_premium_requests: Option<Option<f64>>,
    premium_budget_duration: Option<Option<String>>,
}

/// Applies limit changes; setting a period schedules the next reset one period from `now`,
/// clearing it clears the schedule. Premium periods are always scheduled: changing the
/// premium period starts a new one from `now` (without one, it ends at the next month's
/// start).
fn apply_limits(
    limits: &mut Limits,
    reset_at: &mut Option<DateTime<Utc>>,
    premium_reset_at: &mut Option<DateTime<Utc>>,
    patch: LimitsPatch,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    set(&mut limits.max_premium_requests, patch.max_premium_requests);
    if let Some(period) = patch.premium_budget_duration {
        limits.premium_budget_duration = period.map(|p| p.trim().to_owned());
        *premium_reset_at =
            Some(premium_reset_after(limits.premium_budget_duration.as_deref(), now)?);
    } else if premium_reset_at.is_none() {
        // Written before premium periods existed.
        *premium_reset_at =
            Some(premium_reset_after(limits.premium_budget_duration.as_deref(), now)?);
    }
    set(&mut limits.max_budget, patch.max_budget);
    set(&mut limits.rpm_limit, patch.rpm_limit);
    set(&mut limits.tpm_limit, patch.tpm_limit);
    set(&mut limits.max_parallel_requests, patch.max_parallel_requests);
    match patch.budget_duration {
        None => {}
        Some(None) => {
            limits.budget_duration = None;
            *reset_at = None;
        }
        Some(Some(period)) => {
            let period = period.trim().to_owned();
            *reset_at = Some(now + parse_budget_duration(&period)?);
            limits.budget_duration = Some(period);
        }
    }
    check_limits(limits)
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}

fn set_amount(name: &str, amount: &mut f64, value: Option<f64>) -> Result<(), StoreError> {
    if let Some(value) = value {
        check_amount(name, value)?;
        *amount = value;
    }
    Ok(())
}

/// Applies what every patch shares — the limits, their periods and resets, and the admin's
/// corrections of spend and premium spend — to a record of the same shape.
macro_rules! apply_shared {
    ($rec:ident, $patch:ident, $now:ident) => {{
        let limits = LimitsPatch {
            max_budget: $patch.max_budget,
            budget_duration: $patch.budget_duration,
            rpm_limit: $patch.rpm_limit,
            tpm_limit: $patch.tpm_limit,
            max_parallel_requests: $patch.max_parallel_requests,
            max_premium_requests: $patch.max_premium_requests,
            premium_budget_duration: $patch.premium_budget_duration,
        };
        let resets = (&mut $rec.budget_reset_at, &mut $rec.premium_budget_reset_at);
        apply_limits(&mut $rec.limits, resets.0, resets.1, limits, $now)?;
        set_amount("spend", &mut $rec.spend, $patch.spend)?;
        set_amount("premium_spend", &mut $rec.premium_spend, $patch.premium_spend)?;
    }};
}

/// Applies a key patch to the stored record.
pub(crate) fn apply_key_patch(
    rec: &mut KeyRecord,
    patch: KeyPatch,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    apply_shared!(rec, patch, now);
    set(&mut rec.key_alias, patch.key_alias);
    set(&mut rec.user_id, patch.user_id);
    set(&mut rec.team_id, patch.team_id);
    set(&mut rec.models, patch.models);
    set(&mut rec.expires, patch.expires.map(|e| e.map(|t| t.trunc_subsecs(6))));
    set(&mut rec.blocked, patch.blocked);
    set(&mut rec.metadata, patch.metadata.map(object_or_empty));
    set(&mut rec.permissions, patch.permissions.map(object_or_empty));
    if let Some(p) = &patch.object_permission {
        check_object_permission(p)?;
    }
    set(&mut rec.object_permission, patch.object_permission);
    rec.updated_at = now;
    Ok(())
}

/// Applies a user patch to the stored record.
pub(crate) fn apply_user_patch(
    rec: &mut UserRecord,
    patch: UserPatch,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    apply_shared!(rec, patch, now);
    set(&mut rec.user_email, patch.user_email);
    set(&mut rec.user_role, patch.user_role);
    set(&mut rec.models, patch.models);
    set(&mut rec.metadata, patch.metadata.map(object_or_empty));
    rec.updated_at = now;
    Ok(())
}

/// Applies a team patch to the stored record.
pub(crate) fn apply_team_patch(
    rec: &mut TeamRecord,
    patch: TeamPatch,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    apply_shared!(rec, patch, now);
    set(&mut rec.team_alias, patch.team_alias);
    set(&mut rec.models, patch.models);
    set(&mut rec.blocked, patch.blocked);
    set(&mut rec.metadata, patch.metadata.map(object_or_empty));
    if let Some(p) = &patch.object_permission {
        check_object_permission(p)?;
    }
    set(&mut rec.object_permission, patch.object_permission);
    rec.updated_at = now;
    Ok(())
}

/// Checks roles and keeps the last entry per user, since one statement cannot upsert the
/// same membership twice.
pub(crate) fn unique_members(members: &[TeamMember]) -> Result<Vec<TeamMember>, StoreError> {
    let mut out: Vec<TeamMember> = Vec::with_capacity(members.len());
    for member in members {
        if member.user_id.is_empty() {
            return Err(StoreError::Invalid("team member user_id is empty".to_owned()));
        }
        if member.role != "admin" && member.role != "user" {
            return Err(StoreError::Invalid(format!(
                "team member role `{}` is not `admin` or `user`",
                member.role
            )));
        }
        match out.iter_mut().find(|m| m.user_id == member.user_id) {
            Some(existing) => existing.role.clone_from(&member.role),
            None => out.push(member.clone()),
        }
    }
    Ok(out)
}

/// `LIMIT` and `OFFSET` for a page: page numbers start at 1 (0 counts as 1), size 0 means
/// 100 and sizes are capped at 1000.
pub(crate) fn page_window(page: u32, size: u32) -> (i64, i64) {
    let size = match size {
        0 => 100,
        s => s.min(1000),
    };
    let page = page.max(1);
    (i64::from(size), i64::from(page - 1) * i64::from(size))
}

/// A row limit where 0 means `default`, capped at `max`.
pub(crate) fn row_limit(limit: u32, default: u32, max: u32) -> i64 {
    i64::from(if limit == 0 { default } else { limit.min(max) })
}

/// `NotFound` for a key. The id is never the hash: it may be the hash of a secret a caller
/// typed.
/// A credential needs a provider without `/` (its change-feed id is `provider/owner`), an
/// owner, and sealed bytes.
pub(crate) fn check_credential(c: &NewCredential) -> Result<(), StoreError> {
    if c.provider.trim().is_empty() || c.provider.contains('/') {
        return Err(StoreError::Invalid(
            "a credential's provider must be a non-empty name without `/`".to_owned(),
        ));
    }
    if c.owner.trim().is_empty() {
        return Err(StoreError::Invalid("a credential's owner must not be empty".to_owned()));
    }
    if c.ciphertext.is_empty() || c.nonce.is_empty() {
        return Err(StoreError::Invalid(
            "a credential must be stored sealed (ciphertext and nonce)".to_owned(),
        ));
    }
    Ok(())
}

pub(crate) fn key_not_found() -> StoreError {
    StoreError::NotFound { kind: "key", id: "(hash withheld)".to_owned() }
}

/// Whether the error is a unique violation whose constraint name (PostgreSQL) or message
/// (SQLite: `UNIQUE constraint failed: table.column`) mentions `needle`.
pub(crate) fn unique_violation_on(err: &sqlx::Error, needle: &str) -> bool {
    let Some(db) = err.as_database_error() else {
        return false;
    };
    db.is_unique_violation()
        && (db.constraint().is_some_and(|c| c.contains(needle)) || db.message().contains(needle))
}

/// Whether the error is any unique violation.
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error().is_some_and(|db| db.is_unique_violation())
}

/// Maps a failed key write: a taken alias or hash becomes `Conflict`.
pub(crate) fn key_write_error(err: sqlx::Error, alias: Option<&str>) -> StoreError {
    if unique_violation_on(&err, "key_alias") {
        StoreError::Conflict(format!("key alias `{}` is already taken", alias.unwrap_or_default()))
    } else if is_unique_violation(&err) {
        StoreError::Conflict("a key with this hash already exists".to_owned())
    } else {
        StoreError::Database(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages() {
        assert_eq!(page_window(0, 0), (100, 0));
        assert_eq!(page_window(3, 10), (10, 20));
        assert_eq!(page_window(2, 5000), (1000, 1000));
    }

    #[test]
    fn members_dedupe_last_role_wins() {
        let m = |u: &str, r: &str| TeamMember { user_id: u.into(), role: r.into() };
        let out = unique_members(&[m("a", "user"), m("b", "user"), m("a", "admin")]).unwrap();
        assert_eq!(out, vec![m("a", "admin"), m("b", "user")]);
        assert!(unique_members(&[m("a", "owner")]).is_err());
    }
}
