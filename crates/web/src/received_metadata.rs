//! Metric metadata received by the remote-write receiver (1.0 `WriteRequest.metadata`, 2.0
//! series metadata), kept in memory so that `/api/v1/metadata` of a central server shows the
//! metadata of the clusters writing to it.
//!
//! Prometheus 3 writes received metadata to its WAL only with
//! `--enable-feature=metadata-wal-records` and never serves it from the API; Meridian keeps it
//! simpler and more useful: per family the distinct (type, help, unit) entries, refreshed by
//! every request that carries them, forgotten [`TTL`] after they were last received (senders
//! repeat metadata every minute by default), not persisted (a restart forgets it until the
//! senders' next round). Bounded: at most [`MAX_FAMILIES`] families (more are counted and
//! refused) and [`MAX_PER_FAMILY`] entries per family (the oldest goes).

use model::exposition::MetricMetadata;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long an entry is kept after it was last received.
pub const TTL: Duration = Duration::from_secs(10 * 60);
/// Families kept at most.
pub const MAX_FAMILIES: usize = 100_000;
/// Distinct entries kept per family at most.
pub const MAX_PER_FAMILY: usize = 10;

struct Entry {
    metadata: MetricMetadata,
    last: Instant,
}

/// The received metadata of one server.
#[derive(Default)]
pub struct ReceivedMetadata {
    families: Mutex<HashMap<String, Vec<Entry>>>,
    /// Entries received and kept (new or refreshed).
    pub received: AtomicU64,
    /// Entries refused because [`MAX_FAMILIES`] was reached.
    pub refused: AtomicU64,
}

impl ReceivedMetadata {
    /// Records entries received now.
    pub fn record(&self, entries: impl IntoIterator<Item = MetricMetadata>) {
        self.record_at(entries, Instant::now());
    }

    fn record_at(&self, entries: impl IntoIterator<Item = MetricMetadata>, now: Instant) {
        let mut families = self.families.lock().unwrap_or_else(|e| e.into_inner());
        for m in entries {
            if m.family.is_empty() {
                continue;
            }
            let list = match families.get_mut(&m.family) {
                Some(list) => list,
                None => {
                    if families.len() >= MAX_FAMILIES {
                        families.retain(|_, list| {
                            list.retain(|e| now.duration_since(e.last) < TTL);
                            !list.is_empty()
                        });
                    }
                    if families.len() >= MAX_FAMILIES {
                        self.refused.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    families.entry(m.family.clone()).or_default()
                }
            };
            self.received.fetch_add(1, Ordering::Relaxed);
            match list.iter_mut().find(|e| e.metadata == m) {
                Some(e) => e.last = now,
                None => {
                    if list.len() >= MAX_PER_FAMILY {
                        list.sort_by_key(|e| e.last);
                        list.remove(0);
                    }
                    list.push(Entry {
                        metadata: m,
                        last: now,
                    });
                }
            }
        }
    }

    /// Entries still fresh, of every family or of `family`, sorted by family and in the
    /// order they were first received.
    pub fn snapshot(&self, family: Option<&str>) -> Vec<MetricMetadata> {
        self.snapshot_at(family, Instant::now())
    }

    fn snapshot_at(&self, family: Option<&str>, now: Instant) -> Vec<MetricMetadata> {
        let families = self.families.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = |list: &Vec<Entry>| -> Vec<MetricMetadata> {
            list.iter()
                .filter(|e| now.duration_since(e.last) < TTL)
                .map(|e| e.metadata.clone())
                .collect()
        };
        let mut out = match family {
            Some(f) => families.get(f).map(fresh).unwrap_or_default(),
            None => families.values().flat_map(fresh).collect(),
        };
        out.sort_by(|a, b| a.family.cmp(&b.family));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::exposition::MetricType;

    fn m(family: &str, help: &str) -> MetricMetadata {
        MetricMetadata {
            family: family.into(),
            kind: MetricType::Counter,
            help: help.into(),
            unit: String::new(),
        }
    }

    #[test]
    fn distinct_fresh_and_bounded() {
        let r = ReceivedMetadata::default();
        let t0 = Instant::now();
        r.record_at([m("b", "x"), m("a", "1"), m("a", "1"), m("a", "2")], t0);
        assert_eq!(
            r.snapshot_at(None, t0),
            vec![m("a", "1"), m("a", "2"), m("b", "x")]
        );
        assert_eq!(r.snapshot_at(Some("b"), t0), vec![m("b", "x")]);
        assert!(r.snapshot_at(Some("c"), t0).is_empty());
        // Refreshing one entry keeps it past the TTL of the others.
        let later = t0 + TTL - Duration::from_secs(1);
        r.record_at([m("a", "2")], later);
        assert_eq!(r.snapshot_at(None, t0 + TTL), vec![m("a", "2")]);
        // At most MAX_PER_FAMILY entries: the least recently received goes.
        for i in 0..MAX_PER_FAMILY + 3 {
            r.record_at(
                [m("c", &i.to_string())],
                later + Duration::from_millis(i as u64),
            );
        }
        let c = r.snapshot_at(Some("c"), later + Duration::from_secs(1));
        assert_eq!(c.len(), MAX_PER_FAMILY);
        assert_eq!(c[0].help, "3");
    }
}
