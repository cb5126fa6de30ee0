//! What an isolate read recently, kept for a few seconds: the edge's answer to "do not ask D1
//! on every request of a crowd". Bounded, because an on-sale brings more distinct keys (users,
//! events) than an isolate should remember; time is passed in, as everywhere in `domain`.

use std::collections::HashMap;

/// Values by key, each good for `ttl_ms` after it was read, at most `capacity` of them.
#[derive(Debug)]
pub struct TtlCache<V> {
    ttl_ms: i64,
    capacity: usize,
    entries: HashMap<String, (i64, V)>,
}

impl<V: Clone> TtlCache<V> {
    pub fn new(ttl_ms: i64, capacity: usize) -> Self {
        Self {
            ttl_ms,
            capacity,
            entries: HashMap::new(),
        }
    }

    /// The value if it was read less than the TTL ago (and not in the future: a clock that
    /// went back must not make an old value look fresh for longer).
    pub fn get(&self, key: &str, now_ms: i64) -> Option<V> {
        self.entries
            .get(key)
            .filter(|(read_at, _)| now_ms >= *read_at && now_ms - read_at < self.ttl_ms)
            .map(|(_, value)| value.clone())
    }

    /// The value if it was read less than `max_age_ms` ago, fresh or not: what a request may
    /// use while another one of the same isolate is reading the key again (one read per key
    /// and TTL, not one per request in flight when it expired).
    pub fn get_within(&self, key: &str, now_ms: i64, max_age_ms: i64) -> Option<V> {
        self.entries
            .get(key)
            .filter(|(read_at, _)| now_ms >= *read_at && now_ms - read_at < max_age_ms)
            .map(|(_, value)| value.clone())
    }

    /// Remembers `value` as read at `now_ms`. At capacity, stale entries go first; if all are
    /// fresh, everything goes (a burst of new keys must not grow memory without bound).
    pub fn put(&mut self, key: &str, value: V, now_ms: i64) {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(key) {
            let ttl = self.ttl_ms;
            self.entries
                .retain(|_, (read_at, _)| now_ms - *read_at < ttl);
            if self.entries.len() >= self.capacity {
                self.entries.clear();
            }
        }
        self.entries.insert(key.to_string(), (now_ms, value));
    }

    /// Called after this isolate changed what the key names, so its own next request sees it.
    pub fn forget(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// Forgets every value.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_fresh_for_its_ttl_only_and_never_from_the_future() {
        let mut cache = TtlCache::new(2_000, 10);
        cache.put("e1", 7, 1_000);
        assert_eq!(cache.get("e1", 1_000), Some(7));
        assert_eq!(cache.get("e1", 2_999), Some(7));
        assert_eq!(cache.get("e1", 3_000), None);
        assert_eq!(cache.get("e1", 999), None, "a clock that went back");
        assert_eq!(cache.get("e2", 1_000), None);
        cache.forget("e1");
        assert_eq!(cache.get("e1", 1_500), None);
    }

    #[test]
    fn a_stale_value_is_there_for_whoever_waits_on_another_read() {
        let mut cache = TtlCache::new(2_000, 10);
        cache.put("e", 1, 1_000);
        assert_eq!(cache.get("e", 3_500), None, "stale");
        assert_eq!(cache.get_within("e", 3_500, 4_000), Some(1));
        assert_eq!(cache.get_within("e", 5_000, 4_000), None, "too old even so");
        assert_eq!(cache.get_within("e", 500, 4_000), None, "from the future");
    }

    #[test]
    fn it_never_holds_more_than_its_capacity() {
        let mut cache = TtlCache::new(2_000, 3);
        for (i, key) in ["a", "b", "c"].iter().enumerate() {
            cache.put(key, i, 0);
        }
        // Full of fresh entries: a new key empties it rather than growing.
        cache.put("d", 3, 1);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get("d", 1), Some(3));
        // Stale entries make room first.
        cache.put("e", 4, 1_000);
        cache.put("f", 5, 1_000);
        cache.put("g", 6, 2_500);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get("d", 2_500), None);
        // Overwriting a key at capacity keeps the others.
        cache.put("g", 7, 2_600);
        assert_eq!(cache.len(), 3);
    }
}
