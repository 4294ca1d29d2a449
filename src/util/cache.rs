//! A small bounded cache shared by threads (decompressed grains, grain and
//! L2 tables). First-in first-out eviction: image reads are mostly
//! sequential, where FIFO does as well as LRU without the bookkeeping.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// The entries, and their keys in insertion order (for eviction).
type Entries<K, V> = (HashMap<K, Arc<V>>, VecDeque<K>);

pub struct Cache<K, V> {
    capacity: usize,
    inner: Mutex<Entries<K, V>>,
}

impl<K: Hash + Eq + Copy, V> Cache<K, V> {
    pub fn new(capacity: usize) -> Self {
        Cache { capacity: capacity.max(1), inner: Mutex::new((HashMap::new(), VecDeque::new())) }
    }

    pub fn get(&self, k: &K) -> Option<Arc<V>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).0.get(k).cloned()
    }

    /// The cached value for `k`, or `make()`'s, which is then cached.
    pub fn get_or_try<E>(&self, k: K, make: impl FnOnce() -> Result<V, E>) -> Result<Arc<V>, E> {
        if let Some(v) = self.get(&k) {
            return Ok(v);
        }
        // Made outside the lock: two threads may both make it; one wins.
        let v = Arc::new(make()?);
        let mut c = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if c.0.len() >= self.capacity
            && let Some(old) = c.1.pop_front()
        {
            c.0.remove(&old);
        }
        if c.0.insert(k, v.clone()).is_none() {
            c.1.push_back(k);
        }
        Ok(v)
    }
}
