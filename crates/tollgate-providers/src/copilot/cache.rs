//! Per-account values (Copilot tokens, model catalogs) that every request reads and few
//! requests change: reads take no lock, and one fetch at a time runs per account.
//!
//! A reader loads the current value from an [`ArcSwapOption`]. A value that is due for
//! renewal but still usable is served while one background task renews it
//! ([`Slot::claim_refresh`]); only callers that find nothing usable wait, and they wait
//! together on one fetch ([`Slot::turn`]).

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use arc_swap::{ArcSwap, ArcSwapOption};

/// One account's cached value.
#[derive(Debug)]
pub(crate) struct Slot<T> {
    value: ArcSwapOption<T>,
    /// Held by whoever fetches, so that one fetch runs at a time for the account.
    fetching: tokio::sync::Mutex<()>,
    /// Set while a background renewal is scheduled or running.
    refreshing: AtomicBool,
    /// Bumped by every stored fetch, so a caller that waited for its turn can tell that a
    /// fetch finished meanwhile.
    generation: AtomicU64,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self {
            value: ArcSwapOption::empty(),
            fetching: tokio::sync::Mutex::new(()),
            refreshing: AtomicBool::new(false),
            generation: AtomicU64::new(0),
        }
    }
}

impl<T> Slot<T> {
    /// The current value, without a lock.
    pub(crate) fn load(&self) -> Option<Arc<T>> {
        self.value.load_full()
    }

    /// Stores a freshly fetched value.
    pub(crate) fn store(&self, value: T) {
        self.value.store(Some(Arc::new(value)));
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Forgets the value.
    pub(crate) fn clear(&self) {
        self.value.store(None);
    }

    /// Replaces the value only if it is still `current` (the same allocation), so that a
    /// renewal that finishes late cannot undo an invalidation or a newer fetch. Returns
    /// whether it replaced.
    pub(crate) fn replace(&self, current: &Arc<T>, new: Option<T>) -> bool {
        let fetched = new.is_some();
        let new = new.map(Arc::new);
        let previous = self.value.compare_and_swap(current, new);
        let replaced = previous.as_ref().is_some_and(|p| Arc::ptr_eq(p, current));
        if replaced && fetched {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        replaced
    }

    /// How many fetches have been stored so far.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Waits until no other fetch for this account runs; fetch while holding the guard.
    pub(crate) async fn turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.fetching.lock().await
    }

    /// Claims the account's one background renewal: `None` when one is already scheduled or
    /// running. The claim ends when the returned guard drops, however the task ends.
    pub(crate) fn claim_refresh(self: &Arc<Self>) -> Option<RefreshClaim<T>> {
        let claimed = self
            .refreshing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        claimed.then(|| RefreshClaim(Arc::clone(self)))
    }
}

/// The right to renew one slot in the background; see [`Slot::claim_refresh`].
#[derive(Debug)]
pub(crate) struct RefreshClaim<T>(Arc<Slot<T>>);

impl<T> RefreshClaim<T> {
    /// The slot being renewed.
    pub(crate) fn slot(&self) -> &Slot<T> {
        &self.0
    }
}

impl<T> Drop for RefreshClaim<T> {
    fn drop(&mut self) {
        self.0.refreshing.store(false, Ordering::Release);
    }
}

/// Slots by account id. Looking one up takes no lock; adding an account copies the map,
/// which happens once per account.
#[derive(Debug)]
pub(crate) struct SlotMap<T> {
    slots: ArcSwap<HashMap<String, Arc<Slot<T>>>>,
    /// Serialises the copy-on-write of additions so that none is lost.
    adding: Mutex<()>,
}

impl<T> Default for SlotMap<T> {
    fn default() -> Self {
        Self { slots: ArcSwap::default(), adding: Mutex::new(()) }
    }
}

impl<T> SlotMap<T> {
    /// The account's slot, if it has one.
    pub(crate) fn get(&self, account_id: &str) -> Option<Arc<Slot<T>>> {
        self.slots.load().get(account_id).cloned()
    }

    /// The account's slot, created empty on first use.
    pub(crate) fn get_or_add(&self, account_id: &str) -> Arc<Slot<T>> {
        if let Some(slot) = self.get(account_id) {
            return slot;
        }
        let _adding = self.adding.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.slots.load_full();
        if let Some(slot) = current.get(account_id) {
            return Arc::clone(slot);
        }
        let slot = Arc::new(Slot::default());
        let mut next = HashMap::clone(&current);
        next.insert(account_id.to_owned(), Arc::clone(&slot));
        self.slots.store(Arc::new(next));
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_added_once_and_found_again() {
        let map: SlotMap<u32> = SlotMap::default();
        assert!(map.get("a").is_none());
        let a = map.get_or_add("a");
        a.store(1);
        assert!(Arc::ptr_eq(&a, &map.get_or_add("a")));
        let b = map.get_or_add("b");
        assert!(!Arc::ptr_eq(&a, &b));
        assert_eq!(map.get("a").and_then(|s| s.load()).as_deref(), Some(&1));
        assert!(b.load().is_none());
    }

    #[test]
    fn stores_count_generations_and_clear_forgets() {
        let slot: Slot<&str> = Slot::default();
        assert_eq!(slot.generation(), 0);
        slot.store("one");
        slot.store("two");
        assert_eq!(slot.generation(), 2);
        assert_eq!(slot.load().as_deref(), Some(&"two"));
        slot.clear();
        assert!(slot.load().is_none());
        assert_eq!(slot.generation(), 2);
    }

    #[test]
    fn a_late_renewal_cannot_undo_a_newer_value() {
        let slot: Slot<&str> = Slot::default();
        slot.store("old");
        let seen = slot.load().unwrap();
        // Someone else stores meanwhile: the renewal that started from `seen` loses.
        slot.store("newer");
        assert!(!slot.replace(&seen, Some("renewed")));
        assert_eq!(slot.load().as_deref(), Some(&"newer"));
        // An invalidation meanwhile wins as well.
        let seen = slot.load().unwrap();
        slot.clear();
        assert!(!slot.replace(&seen, Some("renewed")));
        assert!(slot.load().is_none());
        // Unchallenged, the renewal lands and counts.
        slot.store("current");
        let seen = slot.load().unwrap();
        let before = slot.generation();
        assert!(slot.replace(&seen, Some("renewed")));
        assert_eq!(slot.load().as_deref(), Some(&"renewed"));
        assert_eq!(slot.generation(), before + 1);
    }

    #[test]
    fn one_background_renewal_at_a_time() {
        let slot: Arc<Slot<u8>> = Arc::default();
        let claim = slot.claim_refresh();
        assert!(claim.is_some());
        assert!(slot.claim_refresh().is_none(), "a second renewal while one runs");
        drop(claim);
        assert!(slot.claim_refresh().is_some(), "free again once the first ended");
    }

    #[tokio::test]
    async fn readers_do_not_wait_for_a_fetch_in_progress() {
        let slot: Arc<Slot<u8>> = Arc::default();
        slot.store(7);
        let turn = slot.turn().await;
        // A fetch holds the turn; reading still answers at once, from another task too.
        let reader = Arc::clone(&slot);
        let read = tokio::spawn(async move { reader.load() });
        let value = tokio::time::timeout(std::time::Duration::from_secs(1), read).await;
        assert_eq!(value.unwrap().unwrap().as_deref(), Some(&7));
        drop(turn);
    }

    #[test]
    fn lookups_see_slots_added_by_other_threads() {
        let map: Arc<SlotMap<usize>> = Arc::default();
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let map = Arc::clone(&map);
                std::thread::spawn(move || {
                    for j in 0..50 {
                        map.get_or_add(&format!("{}", (i * 50 + j) % 100)).store(j);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        for k in 0..100 {
            assert!(map.get(&k.to_string()).is_some_and(|s| s.load().is_some()), "{k}");
        }
    }
}
