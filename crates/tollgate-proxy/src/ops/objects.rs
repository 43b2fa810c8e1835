//! Keys, users and teams: each change reads the object as it was, writes the store, tells
//! this process's directory and audits the difference, the same way for every kind.

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;
use tollgate_store::{StoreApi, StoreError};

use super::input::store_error;
use super::{Actor, Subject, audit};
use crate::access::directory::{Directory, ReadMark};
use crate::error::ApiError;
use crate::state::AppState;

/// A store read, as the store's methods answer it.
pub type Read<'a, T> = Pin<Box<dyn Future<Output = Result<Option<T>, StoreError>> + Send + 'a>>;

/// An object the management API changes and the audit log records. [`audited!`] writes
/// the implementation.
pub trait Audited: Sized {
    /// Its `object_type`: `key`, `user`, `team`.
    const OBJECT_TYPE: &'static str;

    /// Its `object_id` (a key's token hash, never the key).
    fn id(&self) -> &str;

    /// The object as answers show it: what the audit record compares.
    fn shown(&self) -> Value;

    /// Reads the object `id` names.
    fn read<'a>(store: &'a dyn StoreApi, id: &'a str) -> Read<'a, Self>;

    /// Tells the directory the object as it now is, as a store operation that began at
    /// `mark` answered it.
    fn cache(&self, directory: &Directory, mark: ReadMark);

    /// Tells the directory the object `id` names is gone.
    fn forget(directory: &Directory, id: &str);
}

/// Implements [`Audited`] for a store record: its `object_type`, the field that is its id,
/// the function that shows it, and the store and directory methods that read, put and
/// remove it.
macro_rules! audited {
    ($record:ty as $object_type:literal {
        id: $id:ident,
        shown: $shown:path,
        read: $read:ident,
        cache: $put:ident,
        forget: $remove:ident $(,)?
    }) => {
        impl $crate::ops::objects::Audited for $record {
            const OBJECT_TYPE: &'static str = $object_type;

            fn id(&self) -> &str {
                &self.$id
            }

            fn shown(&self) -> serde_json::Value {
                $shown(self)
            }

            fn read<'a>(
                store: &'a dyn tollgate_store::StoreApi,
                id: &'a str,
            ) -> $crate::ops::objects::Read<'a, Self> {
                store.$read(id)
            }

            fn cache(
                &self,
                directory: &$crate::access::directory::Directory,
                mark: $crate::access::directory::ReadMark,
            ) {
                directory.$put(self.clone(), mark);
            }

            fn forget(directory: &$crate::access::directory::Directory, id: &str) {
                directory.$remove(id);
            }
        }
    };
}
pub(crate) use audited;

fn subject<T: Audited>(object: &T) -> Subject<'_> {
    Subject { object_type: T::OBJECT_TYPE, object_id: object.id() }
}

/// Serves `object`, just created, and audits its creation. Nothing of this process has
/// spent on an object that did not exist, so its stored figure stands.
pub async fn created<T: Audited>(state: &AppState, actor: &Actor, object: &T) {
    object.cache(state.directory(), state.directory().mark());
    audit(state, actor, "create", subject(object), None, Some(&object.shown())).await;
}

/// Reads the object `id` names, then runs `write`, which changes it; serves what `write`
/// answers and audits `action` from what was read to it (under the id it answers, which
/// differs from `id` for a regenerated key).
pub async fn changed<T: Audited>(
    state: &AppState,
    actor: &Actor,
    action: &str,
    id: &str,
    write: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, ApiError> {
    let before = T::read(state.store().as_ref(), id).await.map_err(store_error)?;
    let mark = state.directory().mark();
    let after = write.await.map_err(store_error)?;
    after.cache(state.directory(), mark);
    let before = before.map(|b| b.shown());
    audit(state, actor, action, subject(&after), before.as_ref(), Some(&after.shown())).await;
    Ok(after)
}

/// Reads the objects `ids` name, then runs `delete`, which deletes them; stops serving
/// them and audits the deletion of each that existed, once. Answers what `delete` answers.
pub async fn deleted<T: Audited, R>(
    state: &AppState,
    actor: &Actor,
    ids: &[String],
    delete: impl Future<Output = Result<R, StoreError>>,
) -> Result<R, ApiError> {
    let mut existing: Vec<T> = Vec::new();
    for id in ids {
        if existing.iter().any(|e| e.id() == id) {
            continue;
        }
        if let Some(object) = T::read(state.store().as_ref(), id).await.map_err(store_error)? {
            existing.push(object);
        }
    }
    let answer = delete.await.map_err(store_error)?;
    for id in ids {
        T::forget(state.directory(), id);
    }
    for object in &existing {
        audit(state, actor, "delete", subject(object), Some(&object.shown()), None).await;
    }
    Ok(answer)
}
