//! Models added at runtime.

use sqlx::Pool;

use super::{changes, select, taken};
use crate::patch::{self, object_or_empty};
use crate::sql::{Dialect, Param, Query};
use crate::{EntityKind, ModelPatch, ModelRecord, NewModel, StoreError};

/// Columns of `models`, in [`ModelRecord`] order: a new column is a field there, a name here and
/// a migration per backend.
const MODEL_COLUMNS: &str = "model_id, model_name, litellm_params, model_info, created_by, \
     updated_by, created_at, updated_at";

fn not_found(model_id: &str) -> StoreError {
    StoreError::NotFound { kind: "model", id: model_id.to_owned() }
}

fn check(
    model_id: &str,
    model_name: &str,
    litellm_params: &serde_json::Value,
) -> Result<(), StoreError> {
    if model_id.trim().is_empty() || model_name.trim().is_empty() {
        return Err(StoreError::Invalid("a model needs an id and a model_name".to_owned()));
    }
    if !litellm_params.is_object() {
        return Err(StoreError::Invalid("litellm_params must be an object".to_owned()));
    }
    Ok(())
}

pub(super) async fn create<D: Dialect>(
    pool: &Pool<D::Db>,
    model: NewModel,
) -> Result<ModelRecord, StoreError> {
    check(&model.model_id, &model.model_name, &model.litellm_params)?;
    let now = patch::now();
    let info = object_or_empty(model.model_info);
    let mut tx = D::begin_write(pool).await?;
    let q = super::insert::<D, 8>(
        "models",
        MODEL_COLUMNS,
        [
            Param::from(&model.model_id),
            Param::from(&model.model_name),
            Param::from(&model.litellm_params),
            Param::from(&info),
            Param::from(&model.created_by),
            Param::from(&model.created_by),
            Param::from(now),
            Param::from(now),
        ],
    );
    let row: ModelRecord =
        q.one(&mut tx).await.map_err(|e| taken(e, || format!("model `{}`", model.model_id)))?;
    changes::append::<D>(&mut tx, &[(EntityKind::Model, model.model_id.clone())], now).await?;
    tx.commit().await?;
    Ok(row)
}

pub(super) async fn get<D: Dialect>(
    pool: &Pool<D::Db>,
    model_id: &str,
) -> Result<Option<ModelRecord>, StoreError> {
    let mut q = select::<D>(MODEL_COLUMNS, "models", " WHERE model_id = ");
    q.bind(model_id);
    let mut conn = pool.acquire().await?;
    let row: Option<ModelRecord> = q.optional(&mut conn).await?;
    Ok(row)
}

pub(super) async fn list<D: Dialect>(pool: &Pool<D::Db>) -> Result<Vec<ModelRecord>, StoreError> {
    let q = select::<D>(MODEL_COLUMNS, "models", " ORDER BY created_at, model_id");
    let mut conn = pool.acquire().await?;
    Ok(q.all(&mut conn).await?)
}

/// Reads the model under a row lock, applies the patch and writes it back.
pub(super) async fn update<D: Dialect>(
    pool: &Pool<D::Db>,
    model_id: &str,
    patch: ModelPatch,
) -> Result<ModelRecord, StoreError> {
    let now = patch::now();
    let mut tx = D::begin_write(pool).await?;
    let mut q = select::<D>(MODEL_COLUMNS, "models", " WHERE model_id = ");
    q.bind(model_id).push(D::LOCK_ROWS);
    let row: Option<ModelRecord> = q.optional(&mut tx).await?;
    let mut rec = row.ok_or_else(|| not_found(model_id))?;
    if let Some(name) = patch.model_name {
        rec.model_name = name;
    }
    if let Some(params) = patch.litellm_params {
        rec.litellm_params = params;
    }
    if let Some(info) = patch.model_info {
        rec.model_info = object_or_empty(info);
    }
    check(&rec.model_id, &rec.model_name, &rec.litellm_params)?;
    let mut q = Query::<D>::new("UPDATE models SET model_name = ");
    q.bind(&rec.model_name)
        .and(", litellm_params = ", &rec.litellm_params)
        .and(", model_info = ", &rec.model_info)
        .and(", updated_by = ", &patch.updated_by)
        .and(", updated_at = ", now)
        .and(" WHERE model_id = ", model_id)
        .push(" RETURNING ")
        .push(MODEL_COLUMNS);
    let row: ModelRecord = q.one(&mut tx).await?;
    changes::append::<D>(&mut tx, &[(EntityKind::Model, model_id.to_owned())], now).await?;
    tx.commit().await?;
    Ok(row)
}

pub(super) async fn delete<D: Dialect>(
    pool: &Pool<D::Db>,
    model_id: &str,
) -> Result<bool, StoreError> {
    let now = patch::now();
    let mut tx = D::begin_write(pool).await?;
    let mut q = Query::<D>::new("DELETE FROM models WHERE model_id = ");
    q.bind(model_id);
    let deleted = q.execute(&mut tx).await? > 0;
    if deleted {
        changes::append::<D>(&mut tx, &[(EntityKind::Model, model_id.to_owned())], now).await?;
    }
    tx.commit().await?;
    Ok(deleted)
}
