//! Values that must not be re-created on every mount: dynamic-secret credentials and PKI
//! certificates. The driver re-mounts every ~75 s; each fetch of these would mint a new
//! credential or certificate. A value is kept per pod until its renewal time, and concurrent
//! mounts of the same key share one fetch.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Who a lease belongs to and what it is for. The pod UID scopes it to one pod; the gateway and
/// access ID to one identity; the rest to one request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LeaseKey {
    pub pod_uid: String,
    pub gateways: Vec<String>,
    pub access_id: String,
    pub item: String,
    /// Request details that change the value (dynamic-secret args, PKI names and TTL).
    pub request: Vec<String>,
}

struct Lease<V> {
    value: V,
    renew_at: SystemTime,
}

type Slot<V> = Arc<tokio::sync::Mutex<Option<Lease<V>>>>;

/// A bounded map of leases with one fetch in flight per key.
pub struct LeaseCache<K, V> {
    slots: Mutex<HashMap<K, Slot<V>>>,
    max_entries: usize,
}

impl<K: Clone + Eq + Hash, V: Clone> LeaseCache<K, V> {
    pub fn new(max_entries: usize) -> Self {
        LeaseCache {
            slots: Mutex::new(HashMap::new()),
            max_entries,
        }
    }

    pub fn len(&self) -> usize {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn slot(&self, key: &K, now: SystemTime) -> Slot<V> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if !slots.contains_key(key) && slots.len() >= self.max_entries {
            // Drop leases due for renewal (and idle slots); if still full, start over: a dropped
            // lease only costs one new credential.
            slots.retain(|_, slot| match slot.try_lock() {
                Ok(guard) => guard.as_ref().is_some_and(|l| l.renew_at > now),
                Err(_) => true, // a fetch is in flight
            });
            if slots.len() >= self.max_entries {
                slots.clear();
            }
        }
        slots.entry(key.clone()).or_default().clone()
    }

    /// The cached value for `key` while it is before its renewal time; otherwise runs `fetch`
    /// (once, even when several mounts ask at the same time) and keeps its result until the
    /// returned renewal time. Errors are not cached.
    pub async fn get_or_fetch<E, F, Fut>(
        &self,
        key: &K,
        now: SystemTime,
        fetch: F,
    ) -> Result<(V, bool), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(V, SystemTime), E>>,
    {
        let slot = self.slot(key, now);
        let mut guard = slot.lock().await;
        if let Some(lease) = guard.as_ref()
            && lease.renew_at > now
        {
            return Ok((lease.value.clone(), true));
        }
        let (value, renew_at) = fetch().await?;
        *guard = Some(Lease {
            value: value.clone(),
            renew_at,
        });
        Ok((value, false))
    }

    /// Forgets `key` (e.g. a token Akeyless no longer accepts).
    pub fn invalidate(&self, key: &K) {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    fn key(pod: &str) -> LeaseKey {
        LeaseKey {
            pod_uid: pod.into(),
            gateways: vec!["g".into()],
            access_id: "p".into(),
            item: "/db".into(),
            request: vec![],
        }
    }

    #[tokio::test]
    async fn reuses_until_renewal_and_per_pod() {
        let cache = LeaseCache::<LeaseKey, u32>::new(10);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let calls = AtomicUsize::new(0);
        let fetch = |v: u32| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, ()>((v, t0 + Duration::from_secs(60))) }
        };
        assert_eq!(
            cache.get_or_fetch(&key("a"), t0, || fetch(1)).await,
            Ok((1, false))
        );
        assert_eq!(
            cache
                .get_or_fetch(&key("a"), t0 + Duration::from_secs(30), || fetch(2))
                .await,
            Ok((1, true))
        );
        assert_eq!(
            cache.get_or_fetch(&key("b"), t0, || fetch(3)).await,
            Ok((3, false))
        );
        assert_eq!(
            cache
                .get_or_fetch(&key("a"), t0 + Duration::from_secs(61), || fetch(4))
                .await,
            Ok((4, false))
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn concurrent_mounts_share_one_fetch() {
        let cache = Arc::new(LeaseCache::<LeaseKey, u32>::new(10));
        let calls = Arc::new(AtomicUsize::new(0));
        let now = SystemTime::now();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (cache, calls) = (cache.clone(), calls.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_fetch(&key("a"), now, || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok::<_, ()>((7, now + Duration::from_secs(60)))
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().0, 7);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn errors_are_not_cached_and_size_is_bounded() {
        let cache = LeaseCache::<LeaseKey, u32>::new(2);
        let now = SystemTime::now();
        assert!(
            cache
                .get_or_fetch(&key("a"), now, || async {
                    Err::<(u32, SystemTime), _>("down")
                })
                .await
                .is_err()
        );
        assert_eq!(
            cache
                .get_or_fetch(&key("a"), now, || async {
                    Ok::<_, ()>((1, now + Duration::from_secs(9)))
                })
                .await,
            Ok((1, false))
        );
        for pod in ["b", "c", "d"] {
            cache
                .get_or_fetch(&key(pod), now, || async {
                    Ok::<_, ()>((1, now + Duration::from_secs(9)))
                })
                .await
                .unwrap();
        }
        assert!(cache.len() <= 2, "{}", cache.len());
    }
}
