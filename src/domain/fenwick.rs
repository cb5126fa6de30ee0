//! The sparse Fenwick tree (binary indexed tree) that counts waitroom departures by join sequence.
//!
//! The waitroom needs "how many sessions with a smaller seq have left the queue" for any seq,
//! with a queue of up to a million sessions and updates on every admission or leave. A Fenwick
//! tree answers both the prefix count and the point update by visiting at most
//! [`MAX_PATH_LEN`] nodes. The tree is sized for [`MAX_INDEX`] seqs but stored sparsely
//! (node index → count, absent = 0), so its footprint grows with the departures recorded, never
//! with the capacity. Node paths are computed here as plain index arithmetic and handed to a
//! [`FenwickNodes`] store as one batch, so each query or update is one storage round trip (one
//! SQL statement in the Durable Object) touching at most [`MAX_PATH_LEN`] rows.

use std::collections::BTreeMap;

/// Bits of the largest index: 2^40 − 1 ≈ 1.1 × 10^12 seqs, far beyond any on-sale, while every
/// path stays at most 40 nodes long.
pub const INDEX_BITS: u32 = 40;

/// The largest index the tree holds.
pub const MAX_INDEX: u64 = (1 << INDEX_BITS) - 1;

/// The most nodes one prefix query or point update visits.
pub const MAX_PATH_LEN: usize = INDEX_BITS as usize;

/// A position in the tree, guaranteed to lie in `1..=MAX_INDEX` (Fenwick trees are 1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FenwickIndex(u64);

impl FenwickIndex {
    /// `None` for 0 and for anything above [`MAX_INDEX`].
    pub fn new(index: u64) -> Option<Self> {
        (1..=MAX_INDEX).contains(&index).then_some(Self(index))
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

/// The node indexes one operation visits, kept on the stack: at most [`MAX_PATH_LEN`] of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodePath {
    nodes: [u64; MAX_PATH_LEN],
    len: usize,
}

impl NodePath {
    fn empty() -> Self {
        Self {
            nodes: [0; MAX_PATH_LEN],
            len: 0,
        }
    }

    fn push(&mut self, node: u64) {
        // Both path walks are bounded by INDEX_BITS steps, so this never overflows; the guard
        // keeps a logic error from turning into a panic.
        if let Some(slot) = self.nodes.get_mut(self.len) {
            *slot = node;
            self.len += 1;
        }
    }

    pub fn as_slice(&self) -> &[u64] {
        self.nodes.get(..self.len).unwrap_or(&[])
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

fn lowest_bit(i: u64) -> u64 {
    i & i.wrapping_neg()
}

/// The nodes whose sum is the prefix count over `1..=upto`. An `upto` above [`MAX_INDEX`] is
/// clamped (nothing can be recorded there); 0 gives the empty path (the empty prefix).
pub fn prefix_path(upto: u64) -> NodePath {
    let mut path = NodePath::empty();
    let mut i = upto.min(MAX_INDEX);
    while i > 0 {
        path.push(i);
        i -= lowest_bit(i);
    }
    path
}

/// The nodes a point update at `index` must add to.
pub fn update_path(index: FenwickIndex) -> NodePath {
    let mut path = NodePath::empty();
    let mut i = index.get();
    while i <= MAX_INDEX {
        path.push(i);
        i += lowest_bit(i);
    }
    path
}

/// Where the nodes live: the Durable Object's SQLite table in production, a map in tests.
///
/// Each method is one batched statement over at most [`MAX_PATH_LEN`] primary-key rows.
pub trait FenwickNodes {
    type Error: std::error::Error + 'static;

    /// The sum of the stored counts of `nodes` (absent nodes count 0).
    ///
    /// SQL: `SELECT COALESCE(SUM(departed), 0) FROM waitroom_fenwick
    ///       WHERE node IN (SELECT value FROM json_each(?1))` with `?1` the JSON array of nodes.
    fn sum_nodes(&mut self, nodes: &[u64]) -> Result<i64, Self::Error>;

    /// Adds `delta` to every node in `nodes`, creating absent ones.
    ///
    /// SQL: `INSERT INTO waitroom_fenwick (node, departed)
    ///       SELECT value, ?2 FROM json_each(?1) WHERE true
    ///       ON CONFLICT(node) DO UPDATE SET departed = departed + excluded.departed`.
    fn add_to_nodes(&mut self, nodes: &[u64], delta: i64) -> Result<(), Self::Error>;
}

impl<S: FenwickNodes + ?Sized> FenwickNodes for &mut S {
    type Error = S::Error;

    fn sum_nodes(&mut self, nodes: &[u64]) -> Result<i64, Self::Error> {
        (**self).sum_nodes(nodes)
    }

    fn add_to_nodes(&mut self, nodes: &[u64], delta: i64) -> Result<(), Self::Error> {
        (**self).add_to_nodes(nodes, delta)
    }
}

/// The count recorded at indexes `1..=upto`.
pub fn prefix_sum<S: FenwickNodes + ?Sized>(store: &mut S, upto: u64) -> Result<i64, S::Error> {
    let path = prefix_path(upto);
    if path.is_empty() {
        // The empty prefix needs no round trip.
        return Ok(0);
    }
    store.sum_nodes(path.as_slice())
}

/// Records `delta` at `index`.
pub fn add<S: FenwickNodes + ?Sized>(
    store: &mut S,
    index: FenwickIndex,
    delta: i64,
) -> Result<(), S::Error> {
    store.add_to_nodes(update_path(index).as_slice(), delta)
}

/// What a [`MemoryFenwickNodes`] has been asked, so tests can prove the cost bound by counting
/// rather than timing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FenwickAccessStats {
    /// Calls to `sum_nodes` plus calls to `add_to_nodes` (storage round trips).
    pub calls: u64,
    pub nodes_read: u64,
    pub nodes_written: u64,
}

/// An in-memory node map for tests and host tools.
#[derive(Debug, Clone, Default)]
pub struct MemoryFenwickNodes {
    nodes: BTreeMap<u64, i64>,
    pub stats: FenwickAccessStats,
}

impl MemoryFenwickNodes {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many nodes are materialised: the sparse footprint.
    pub fn stored_nodes(&self) -> usize {
        self.nodes.len()
    }
}

impl FenwickNodes for MemoryFenwickNodes {
    type Error = std::convert::Infallible;

    fn sum_nodes(&mut self, nodes: &[u64]) -> Result<i64, Self::Error> {
        self.stats.calls += 1;
        self.stats.nodes_read += nodes.len() as u64;
        Ok(nodes
            .iter()
            .map(|n| self.nodes.get(n).copied().unwrap_or(0))
            .sum())
    }

    fn add_to_nodes(&mut self, nodes: &[u64], delta: i64) -> Result<(), Self::Error> {
        self.stats.calls += 1;
        self.stats.nodes_written += nodes.len() as u64;
        for node in nodes {
            *self.nodes.entry(*node).or_insert(0) += delta;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sum(store: &mut MemoryFenwickNodes, upto: u64) -> i64 {
        match prefix_sum(store, upto) {
            Ok(v) => v,
            Err(never) => match never {},
        }
    }

    fn record(store: &mut MemoryFenwickNodes, index: u64, delta: i64) {
        let index = FenwickIndex::new(index).expect("index in range");
        match add(store, index, delta) {
            Ok(()) => {}
            Err(never) => match never {},
        }
    }

    #[test]
    fn index_zero_and_indexes_past_the_capacity_are_rejected() {
        assert_eq!(FenwickIndex::new(0), None);
        assert_eq!(FenwickIndex::new(MAX_INDEX + 1), None);
        assert_eq!(
            FenwickIndex::new(MAX_INDEX).map(FenwickIndex::get),
            Some(MAX_INDEX)
        );
    }

    #[test]
    fn every_path_stays_within_the_node_bound() {
        for index in [1, 2, 3, 1_000, 1_000_000, MAX_INDEX - 1, MAX_INDEX] {
            let update = update_path(FenwickIndex::new(index).expect("in range"));
            assert!(update.len() <= MAX_PATH_LEN, "update path of {index}");
            assert!(
                prefix_path(index).len() <= MAX_PATH_LEN,
                "prefix path of {index}"
            );
        }
        // The worst cases: index 1 climbs through every power of two, MAX_INDEX has all bits set.
        assert_eq!(
            update_path(FenwickIndex::new(1).expect("in range")).len(),
            MAX_PATH_LEN
        );
        assert_eq!(prefix_path(MAX_INDEX).len(), MAX_PATH_LEN);
        assert!(prefix_path(0).is_empty());
    }

    #[test]
    fn empty_prefix_costs_no_storage_round_trip() {
        let mut store = MemoryFenwickNodes::new();
        assert_eq!(sum(&mut store, 0), 0);
        assert_eq!(store.stats.calls, 0);
    }

    #[test]
    fn prefix_above_the_capacity_counts_everything() {
        let mut store = MemoryFenwickNodes::new();
        record(&mut store, MAX_INDEX, 2);
        record(&mut store, 1, 1);
        assert_eq!(sum(&mut store, u64::MAX), 3);
    }

    #[test]
    fn storage_stays_sparse_with_a_million_wide_spread() {
        let mut store = MemoryFenwickNodes::new();
        for i in 0..1_000u64 {
            record(&mut store, 1 + i * 1_000, 1);
        }
        // At most MAX_PATH_LEN nodes per recorded index, whatever the capacity.
        assert!(store.stored_nodes() <= 1_000 * MAX_PATH_LEN);
        assert_eq!(sum(&mut store, 1_000_000), 1_000);
        assert_eq!(sum(&mut store, 500_000), 500);
    }

    proptest! {
        // No regression files: the suite runs from a checkout that must stay clean.
        #![proptest_config(ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn prefix_sums_match_a_plain_count(
            updates in proptest::collection::vec((1u64..5_000, -3i64..4), 0..200),
            queries in proptest::collection::vec(0u64..6_000, 1..50),
        ) {
            let mut store = MemoryFenwickNodes::new();
            for (index, delta) in &updates {
                record(&mut store, *index, *delta);
            }
            for upto in queries {
                let naive: i64 = updates.iter().filter(|(i, _)| *i <= upto).map(|(_, d)| d).sum();
                prop_assert_eq!(sum(&mut store, upto), naive);
            }
        }
    }
}
