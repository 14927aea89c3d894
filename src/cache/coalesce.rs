//! Identical reads in flight at the same time share one backend request, and (when a TTL is
//! set) a result is reused for that long. Keys always include the identity, so nothing is ever
//! shared between identities. A waiter waits at most until its own deadline; a failed fetch is
//! never shared: the next waiter fetches itself.

use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::BoundedMap;

struct Entry<V> {
    value: V,
    done_at: Instant,
}

type Slot<V> = Arc<tokio::sync::Mutex<Option<Entry<V>>>>;

/// Bounded: when full, the least recently used slot goes (an in-flight read keeps its slot
/// alive for its own waiters; only later arrivals start a new one).
pub(crate) struct Coalescer<K: Hash + Eq, V> {
    slots: BoundedMap<K, Slot<V>>,
    ttl: Duration,
}

impl<K: Clone + Eq + Hash, V: Clone> Coalescer<K, V> {
    /// `ttl` zero: only in-flight sharing; nothing is kept once the last waiter has its value.
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        Coalescer {
            slots: BoundedMap::new(max_entries),
            ttl,
        }
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Returns `(value, shared)`: a result that finished while this caller waited, or is younger
    /// than the TTL, is shared; otherwise `fetch` runs (one caller at a time per key).
    #[cfg(test)]
    pub(crate) async fn get_or_fetch<E, F, Fut>(&self, key: &K, fetch: F) -> Result<(V, bool), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        self.get_or_fetch_within(key, None::<(Instant, fn() -> E)>, fetch)
            .await
    }

    /// [`get_or_fetch`](Self::get_or_fetch) that waits for another caller's fetch at most
    /// until the deadline, then fails with `timed_out()` (this caller's own fetch is bounded
    /// by its own client).
    pub(crate) async fn get_or_fetch_within<E, T, F, Fut>(
        &self,
        key: &K,
        deadline: Option<(Instant, T)>,
        fetch: F,
    ) -> Result<(V, bool), E>
    where
        T: FnOnce() -> E,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let arrived = Instant::now();
        let slot = self.slots.get_or_insert_with(key, Slot::default);
        let mut guard = match deadline {
            Some((d, timed_out)) => match tokio::time::timeout_at(d.into(), slot.lock()).await {
                Ok(guard) => guard,
                Err(_) => {
                    self.release(key, &slot, self.ttl.is_zero());
                    return Err(timed_out());
                }
            },
            None => slot.lock().await,
        };
        if let Some(entry) = guard.as_ref()
            && (entry.done_at >= arrived || entry.done_at.elapsed() < self.ttl)
        {
            let value = entry.value.clone();
            drop(guard);
            self.release(key, &slot, self.ttl.is_zero());
            return Ok((value, true));
        }
        let result = fetch().await;
        match &result {
            Ok(value) => {
                *guard = Some(Entry {
                    value: value.clone(),
                    done_at: Instant::now(),
                })
            }
            Err(_) => *guard = None,
        }
        drop(guard);
        self.release(key, &slot, self.ttl.is_zero() || result.is_err());
        result.map(|v| (v, false))
    }

    /// Drops the slot of `key` when nothing may be kept and no other caller holds it (the map
    /// and this caller are its only owners), so values don't linger in memory.
    fn release(&self, key: &K, slot: &Slot<V>, forget: bool) {
        if forget {
            self.slots.remove_if(key, |s| {
                Arc::ptr_eq(s, slot) && Arc::strong_count(slot) == 2
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn concurrent_identical_reads_share_one_fetch_and_keep_nothing() {
        let c = Arc::new(Coalescer::<&str, u32>::new(Duration::ZERO, 100));
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = vec![];
        for _ in 0..10 {
            let (c, calls) = (c.clone(), calls.clone());
            tasks.push(tokio::spawn(async move {
                c.get_or_fetch(&"k", || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    Ok::<_, ()>(5)
                })
                .await
                .unwrap()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().0, 5);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(c.is_empty(), "no TTL: nothing kept");
        // A later read fetches again.
        let (_, shared) = c
            .get_or_fetch(&"k", || async { Ok::<_, ()>(6) })
            .await
            .unwrap();
        assert!(!shared);
    }

    #[tokio::test]
    async fn a_waiter_leaves_at_its_own_deadline_and_a_failed_leader_is_not_shared() {
        let c = Arc::new(Coalescer::<&str, u32>::new(Duration::ZERO, 100));
        let calls = Arc::new(AtomicUsize::new(0));
        // A slow leader that fails.
        let leader = {
            let (c, calls) = (c.clone(), calls.clone());
            tokio::spawn(async move {
                c.get_or_fetch(&"k", || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Err::<u32, _>("leader failed")
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        // A waiter with a short deadline gives up at it, not when the leader ends.
        let started = Instant::now();
        let deadline = Instant::now() + Duration::from_millis(50);
        let waited = c
            .get_or_fetch_within(&"k", Some((deadline, || "deadline")), || async {
                Ok::<u32, &str>(1)
            })
            .await;
        assert_eq!(waited, Err("deadline"));
        assert!(started.elapsed() < Duration::from_millis(250));
        // A waiter with time left gets no shared error: it fetches itself after the leader.
        let patient = c
            .get_or_fetch_within(
                &"k",
                Some((Instant::now() + Duration::from_secs(5), || "deadline")),
                || async { Ok::<u32, &str>(7) },
            )
            .await;
        assert_eq!(leader.await.unwrap(), Err("leader failed"));
        assert_eq!(patient, Ok((7, false)), "the failure was not shared");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn ttl_reuses_and_keys_are_separate() {
        let c = Coalescer::<&str, u32>::new(Duration::from_secs(60), 100);
        assert_eq!(
            c.get_or_fetch(&"a", || async { Ok::<_, ()>(1) }).await,
            Ok((1, false))
        );
        assert_eq!(
            c.get_or_fetch(&"a", || async { Ok::<_, ()>(2) }).await,
            Ok((1, true))
        );
        assert_eq!(
            c.get_or_fetch(&"b", || async { Ok::<_, ()>(3) }).await,
            Ok((3, false))
        );
        assert!(
            c.get_or_fetch(&"c", || async { Err::<u32, _>("x") })
                .await
                .is_err()
        );
        assert_eq!(
            c.get_or_fetch(&"c", || async { Ok::<_, ()>(4) }).await,
            Ok((4, false))
        );
    }
}
