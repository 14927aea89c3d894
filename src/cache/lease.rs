//! Values that must not be re-created on every mount: dynamic-secret credentials and PKI
//! certificates. The driver re-mounts every ~75 s; each fetch of these would mint a new
//! credential or certificate. A value is kept per pod until its renewal time, and concurrent
//! mounts of the same key share one fetch.

use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::BoundedMap;
use crate::secret::{ExposeSecret, SecretString};

/// Who a lease belongs to and what it is for. The pod UID scopes it to one pod; the gateway and
/// access ID to one identity (so to one tenant's account); the rest to one request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct LeaseKey {
    pub pod_uid: String,
    pub gateways: Vec<String>,
    pub access_id: String,
    pub item: String,
    /// Request details that change the value (dynamic-secret args, PKI names and TTL).
    pub request: Vec<String>,
}

/// The lease length a dynamic secret's value reports (`ttl_in_minutes`, `ttl` or
/// `lease_duration` in seconds), if any. The value comes from a gateway: any number, however
/// absurd, gives a bounded length or none, never a panic.
pub fn reported_lease(value: &SecretString) -> Option<Duration> {
    let json: serde_json::Value = serde_json::from_str(value.expose_secret()).ok()?;
    let number = |key: &str| match json.get(key)? {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    let secs = number("ttl_in_minutes")
        .map(|m| m * 60.0)
        .or_else(|| number("ttl"))
        .or_else(|| number("lease_duration"))?;
    if secs.is_nan() || secs < 1.0 {
        return None;
    }
    Some(Duration::try_from_secs_f64(secs).map_or(MAX_LEASE, |d| d.min(MAX_LEASE)))
}

/// Longest lease honoured for a dynamic secret: a credential is minted anew at least this often.
pub const MAX_LEASE: Duration = Duration::from_secs(30 * 24 * 3600);

/// When a value with `lease` left must be replaced: after two-thirds of it (of at most
/// [`MAX_LEASE`], whatever the object's `ttl` or the backend claims).
pub fn renew_at(now: SystemTime, lease: Duration) -> SystemTime {
    let third = lease.min(MAX_LEASE).checked_div(3).unwrap_or_default();
    let reuse = third.saturating_mul(2);
    now.checked_add(reuse).unwrap_or(now)
}

struct Lease<V> {
    value: V,
    renew_at: SystemTime,
}

type Slot<V> = Arc<tokio::sync::Mutex<Option<Lease<V>>>>;

/// A bounded map of leases with one fetch in flight per key. When full, the least recently
/// used lease goes (it costs one new credential); nobody else's lease is touched.
pub(crate) struct LeaseCache<K: Hash + Eq, V> {
    slots: BoundedMap<K, Slot<V>>,
}

impl<K: Clone + Eq + Hash, V: Clone> LeaseCache<K, V> {
    pub fn new(max_entries: usize) -> Self {
        LeaseCache {
            slots: BoundedMap::new(max_entries),
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// The cached value for `key` while it is before its renewal time; otherwise runs `fetch`
    /// (once, even when several mounts ask at the same time) and keeps its result until the
    /// returned renewal time. Errors are not cached.
    pub(crate) async fn get_or_fetch<E, F, Fut>(
        &self,
        key: &K,
        now: SystemTime,
        fetch: F,
    ) -> Result<(V, bool), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(V, SystemTime), E>>,
    {
        let slot = self.slots.get_or_insert_with(key, Slot::default);
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
    pub(crate) fn invalidate(&self, key: &K) {
        self.slots.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

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

    #[test]
    fn reported_lease_lengths() {
        let v = |s: &str| SecretString::from(s.to_string());
        assert_eq!(
            reported_lease(&v(r#"{"ttl_in_minutes":"60"}"#)),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            reported_lease(&v(r#"{"ttl":300}"#)),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            reported_lease(&v(r#"{"lease_duration":"90"}"#)),
            Some(Duration::from_secs(90))
        );
        assert_eq!(reported_lease(&v(r#"{"user":"x"}"#)), None);
        assert_eq!(reported_lease(&v("not json")), None);
        // Hostile lifetimes are bounded, never a panic.
        for hostile in [
            r#"{"ttl":1e300}"#,
            r#"{"ttl_in_minutes":"1e18"}"#,
            r#"{"ttl_in_minutes":1.7976931348623157e308}"#,
            r#"{"lease_duration":"18446744073709551616"}"#,
        ] {
            assert_eq!(reported_lease(&v(hostile)), Some(MAX_LEASE), "{hostile}");
        }
        for nothing in [
            r#"{"ttl":"NaN"}"#,
            r#"{"ttl":"-inf"}"#,
            r#"{"ttl":-5}"#,
            r#"{"ttl":0.5}"#,
        ] {
            assert_eq!(reported_lease(&v(nothing)), None, "{nothing}");
        }
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        assert_eq!(
            renew_at(now, Duration::from_secs(300)),
            now + Duration::from_secs(200)
        );
        assert!(renew_at(SystemTime::now(), Duration::MAX) > SystemTime::now());
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

    #[tokio::test]
    async fn a_full_cache_evicts_the_coldest_lease_not_all() {
        let cache = LeaseCache::<LeaseKey, u32>::new(2);
        let now = SystemTime::now();
        let fresh = |v: u32| async move { Ok::<_, ()>((v, now + Duration::from_secs(60))) };
        cache
            .get_or_fetch(&key("a"), now, || fresh(1))
            .await
            .unwrap();
        cache
            .get_or_fetch(&key("b"), now, || fresh(2))
            .await
            .unwrap();
        // "a" is used again, then a third pod arrives: "b", the coldest, makes room.
        assert_eq!(
            cache.get_or_fetch(&key("a"), now, || fresh(9)).await,
            Ok((1, true))
        );
        cache
            .get_or_fetch(&key("c"), now, || fresh(3))
            .await
            .unwrap();
        assert_eq!(
            cache.get_or_fetch(&key("a"), now, || fresh(9)).await,
            Ok((1, true)),
            "the recently used lease survives"
        );
        assert_eq!(
            cache.get_or_fetch(&key("b"), now, || fresh(4)).await,
            Ok((4, false)),
            "the coldest was evicted and is fetched anew"
        );
    }
}
