//! The one map every cross-mount cache is built on: bounded, and when full it evicts the least
//! recently used entry, never everything. A tenant that floods a cache with new keys only
//! pushes out the coldest entries, which cost one backend call each to learn again.

use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::{Mutex, MutexGuard};

use lru::LruCache;

pub(crate) struct BoundedMap<K: Hash + Eq, V> {
    entries: Mutex<LruCache<K, V>>,
}

impl<K: Hash + Eq, V: Clone> BoundedMap<K, V> {
    /// A map of at most `max_entries` entries (at least one).
    pub fn new(max_entries: usize) -> Self {
        let cap = NonZeroUsize::new(max_entries).unwrap_or(NonZeroUsize::MIN);
        BoundedMap {
            entries: Mutex::new(LruCache::new(cap)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LruCache<K, V>> {
        // A panic elsewhere while holding the lock leaves a consistent map (every operation
        // below is a single LruCache call), so poisoning is ignored.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value of `key`, marked as recently used.
    pub fn get(&self, key: &K) -> Option<V> {
        self.lock().get(key).cloned()
    }

    /// The value of `key`, made with `make` (and inserted) when absent.
    pub(crate) fn get_or_insert_with(&self, key: &K, make: impl FnOnce() -> V) -> V
    where
        K: Clone,
    {
        self.lock().get_or_insert(key.clone(), make).clone()
    }

    pub fn insert(&self, key: K, value: V) {
        self.lock().put(key, value);
    }

    pub fn remove(&self, key: &K) -> Option<V> {
        self.lock().pop(key)
    }

    /// Removes `key` only while it still holds the entry `is_same` recognises (so a caller
    /// never drops an entry another caller has just replaced).
    pub(crate) fn remove_if(&self, key: &K, is_same: impl FnOnce(&V) -> bool) {
        let mut entries = self.lock();
        if entries.peek(key).is_some_and(is_same) {
            entries.pop(key);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used_entry_only() {
        let map = BoundedMap::new(3);
        for k in ["a", "b", "c"] {
            map.insert(k, k.len());
        }
        // "a" is used again, so "b" is now the coldest.
        assert_eq!(map.get(&"a"), Some(1));
        map.insert("d", 1);
        assert_eq!(map.len(), 3);
        assert_eq!(map.get(&"b"), None, "the coldest entry goes");
        for k in ["a", "c", "d"] {
            assert!(map.get(&k).is_some(), "{k} must survive one insert");
        }
        // A flood of new keys never leaves the map empty or over its bound.
        for i in 0..1000 {
            map.insert(if i % 2 == 0 { "x" } else { "y" }, i);
            assert!(map.len() <= 3);
        }
        assert_eq!(map.get_or_insert_with(&"z", || 7), 7);
        assert_eq!(map.get_or_insert_with(&"z", || 8), 7);
        map.remove_if(&"z", |v| *v == 8);
        assert_eq!(map.get(&"z"), Some(7), "another value: kept");
        map.remove_if(&"z", |v| *v == 7);
        assert_eq!(map.get(&"z"), None);
        assert_eq!(BoundedMap::<u8, u8>::new(0).get_or_insert_with(&1, || 2), 2);
    }
}
