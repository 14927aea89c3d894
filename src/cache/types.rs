//! Item types learned from `/describe-item`, so later mounts skip the look-up.
//!
//! Key: the gateway list, the access ID and the item name. Item names are only unique within
//! one Akeyless account, and the access ID names the account (and the identity whose view of
//! the item was described), so two tenants on the shared `https://api.akeyless.io` never see
//! each other's types. A remembered type is a hint, not a fact: the mount forgets it when the
//! backend disagrees (the item is gone, or the read for that type is refused as invalid), so an
//! item deleted and re-created with another type mounts again on the next mount.

use std::future::Future;
use std::time::Instant;

use crate::spec::ItemType;

use super::{BoundedMap, Coalescer};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct TypeKey {
    gateways: Vec<String>,
    access_id: String,
    item: String,
}

impl TypeKey {
    fn new(gateways: &[String], access_id: &str, item: &str) -> Self {
        TypeKey {
            gateways: gateways.to_vec(),
            access_id: access_id.to_string(),
            item: item.to_string(),
        }
    }
}

/// Bounded, least recently used out first. Concurrent look-ups of one key (the same account,
/// gateways and item) share one `/describe-item` call: in a node restart every pod of a
/// namespace asks for the same items at once.
pub(crate) struct TypeCache {
    types: BoundedMap<TypeKey, ItemType>,
    in_flight: Coalescer<TypeKey, ItemType>,
}

impl TypeCache {
    pub fn new(max_entries: usize) -> Self {
        TypeCache {
            types: BoundedMap::new(max_entries),
            in_flight: Coalescer::new(std::time::Duration::ZERO, max_entries),
        }
    }

    /// The type of `item` from `describe`, run once for every caller of the same key that
    /// arrives while it is in flight (and remembered). A caller waits for another's look-up at
    /// most until `deadline`, then fails with `timed_out()`. A failed look-up is not shared:
    /// each waiter then looks up itself.
    pub(crate) async fn describe_once<E, T, F, Fut>(
        &self,
        gateways: &[String],
        access_id: &str,
        item: &str,
        deadline: Option<(Instant, T)>,
        describe: F,
    ) -> Result<ItemType, E>
    where
        T: FnOnce() -> E,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<ItemType, E>>,
    {
        let key = TypeKey::new(gateways, access_id, item);
        let (t, _) = self
            .in_flight
            .get_or_fetch_within(&key, deadline, || async {
                // Learned by a look-up that ended just before this caller arrived.
                if let Some(t) = self.types.get(&key) {
                    return Ok(t);
                }
                let t = describe().await?;
                self.types.insert(key.clone(), t);
                Ok(t)
            })
            .await?;
        Ok(t)
    }

    pub fn get(&self, gateways: &[String], access_id: &str, item: &str) -> Option<ItemType> {
        self.types.get(&TypeKey::new(gateways, access_id, item))
    }

    #[cfg(test)]
    pub fn insert(&self, gateways: &[String], access_id: &str, item: &str, t: ItemType) {
        self.types
            .insert(TypeKey::new(gateways, access_id, item), t);
    }

    /// Forgets the type of `item` (the backend disagreed with it).
    pub(crate) fn forget(&self, gateways: &[String], access_id: &str, item: &str) {
        self.types.remove(&TypeKey::new(gateways, access_id, item));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn concurrent_look_ups_of_one_key_share_one_describe_and_accounts_do_not() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::time::Duration;

        let cache = Arc::new(TypeCache::new(100));
        let calls = Arc::new(AtomicUsize::new(0));
        let gw = vec!["https://api.akeyless.io".to_string()];
        let mut tasks = vec![];
        for i in 0..40 {
            let (cache, calls, gw) = (cache.clone(), calls.clone(), gw.clone());
            // Two accounts, 20 callers each, same item name.
            let access_id = if i % 2 == 0 { "p-a" } else { "p-b" };
            tasks.push(tokio::spawn(async move {
                cache
                    .describe_once(
                        &gw,
                        access_id,
                        "/db",
                        None::<(Instant, fn() -> ())>,
                        || async move {
                            calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok::<_, ()>(if access_id == "p-a" {
                                ItemType::Static
                            } else {
                                ItemType::Rotated
                            })
                        },
                    )
                    .await
                    .map(|t| (access_id, t))
            }));
        }
        for t in tasks {
            let (access_id, t) = t.await.unwrap().unwrap();
            let expected = if access_id == "p-a" {
                ItemType::Static
            } else {
                ItemType::Rotated
            };
            assert_eq!(t, expected, "never another account's answer");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2, "one describe per account");
        assert_eq!(cache.get(&gw, "p-a", "/db"), Some(ItemType::Static));
        assert_eq!(cache.get(&gw, "p-b", "/db"), Some(ItemType::Rotated));
    }

    #[test]
    fn types_are_per_account_and_forgettable() {
        let cache = TypeCache::new(10);
        let gw = vec!["https://api.akeyless.io".to_string()];
        cache.insert(&gw, "p-tenant-a", "/db", ItemType::Static);
        assert_eq!(cache.get(&gw, "p-tenant-a", "/db"), Some(ItemType::Static));
        assert_eq!(
            cache.get(&gw, "p-tenant-b", "/db"),
            None,
            "another access ID (account) never sees this type"
        );
        cache.insert(&gw, "p-tenant-b", "/db", ItemType::Rotated);
        assert_eq!(cache.get(&gw, "p-tenant-a", "/db"), Some(ItemType::Static));
        cache.forget(&gw, "p-tenant-a", "/db");
        assert_eq!(cache.get(&gw, "p-tenant-a", "/db"), None);
        assert_eq!(cache.get(&gw, "p-tenant-b", "/db"), Some(ItemType::Rotated));
    }
}
