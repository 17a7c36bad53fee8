//! A per-container cache with a time to live: tenants and tenant secrets are read at most
//! once a minute, so an ops CLI change reaches running functions within that time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Every time the map reaches a multiple of this size, an insert drops expired entries (a
/// full scan, so not on every insert).
const EVICT_AT: usize = 1024;
/// Hard bound: when this many entries are all still live (junk keys arriving faster than
/// they expire), the cache starts over rather than grow. A dropped key costs one more read.
pub const MAX_ENTRIES: usize = 8192;

pub struct TtlCache<V> {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, V)>>,
}

impl<V: Clone> TtlCache<V> {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.lock().expect("cache lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, key: &str) -> Option<V> {
        let entries = self.entries.lock().expect("cache lock");
        entries
            .get(key)
            .filter(|(stored, _)| stored.elapsed() < self.ttl)
            .map(|(_, value)| value.clone())
    }

    pub fn insert(&self, key: &str, value: V) {
        let mut entries = self.entries.lock().expect("cache lock");
        // Bounded by what one TTL lets in: expired entries go when the map grows.
        if entries.len() >= EVICT_AT && entries.len().is_multiple_of(EVICT_AT) {
            entries.retain(|_, (stored, _)| stored.elapsed() < self.ttl);
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key.to_owned(), (Instant::now(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = TtlCache::new(Duration::from_millis(0));
        cache.insert("a", 1);
        assert_eq!(cache.get("a"), None);
        let cache = TtlCache::new(Duration::from_secs(60));
        cache.insert("a", 1);
        assert_eq!(cache.get("a"), Some(1));
        assert_eq!(cache.get("b"), None);
    }

    #[test]
    fn live_entries_never_grow_past_the_bound() {
        let cache = TtlCache::new(Duration::from_secs(60));
        for n in 0..MAX_ENTRIES * 2 + 1 {
            cache.insert(&n.to_string(), ());
            assert!(cache.len() <= MAX_ENTRIES, "{} entries", cache.len());
        }
        assert_eq!(cache.get(&(MAX_ENTRIES * 2).to_string()), Some(()));
    }
}
