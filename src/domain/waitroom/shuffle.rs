//! The pre-queue shuffle: a seeded, reproducible, unbiased permutation.

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, well-studied generator; its stream from a
/// stored seed is reproducible, so an audit can replay the pre-queue order.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound` ≥ 1), without modulo bias: draws below the largest
    /// multiple of `bound` are rejected.
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound <= 1 {
            return 0;
        }
        // 2^64 mod bound: the values [0, threshold) are the biased remainder and are redrawn.
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let draw = self.next_u64();
            if draw >= threshold {
                return draw % bound;
            }
        }
    }
}

/// Fisher–Yates: every permutation of `items` equally likely, fixed by `seed`.
pub fn shuffle_prequeue<T>(items: &mut [T], seed: u64) {
    let mut rng = SplitMix64::new(seed);
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}
