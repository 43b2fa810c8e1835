//! Requests per deployment over a recent window, read from the raw spend records: one grouped
//! query over `spend_logs_deployment_idx` (started_at, model_group, served_model, outcome), so
//! the database answers from the index alone.

use chrono::{DateTime, Utc};
use sqlx::Pool;

use crate::sql::{Dialect, Query};
use crate::{DeploymentUsage, StoreError};

/// Records that started at or after `since`, per model group and served model; refusals
/// (no deployment was tried, so no served model) are left out.
pub(super) async fn by_deployment<D: Dialect>(
    pool: &Pool<D::Db>,
    since: DateTime<Utc>,
) -> Result<Vec<DeploymentUsage>, StoreError> {
    let mut q = Query::<D>::new(
        "SELECT model_group, served_model, COUNT(*), \
         COUNT(CASE WHEN outcome <> 'success' THEN 1 END) FROM spend_logs WHERE started_at >= ",
    );
    q.bind(since).push(" AND served_model <> '' GROUP BY model_group, served_model");
    q.push(" ORDER BY model_group").push(D::BYTE_ORDER).push(", served_model").push(D::BYTE_ORDER);
    let mut conn = pool.acquire().await?;
    let rows: Vec<(String, String, i64, i64)> = q.all(&mut conn).await?;
    Ok(rows
        .into_iter()
        .map(|(model_group, served_model, requests, errors)| DeploymentUsage {
            model_group,
            served_model,
            requests,
            errors,
        })
        .collect())
}
