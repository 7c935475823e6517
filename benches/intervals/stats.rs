//! Order statistics and a seeded random source, so two runs of a scenario
//! (fixed and adaptive) see the very same mail arrive.

/// The `q`-quantile (0..=1) of `values` by the nearest-rank rule; `None`
/// for no values. Nearest rank rather than interpolation: every figure
/// printed is one that was really measured.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Median, 95th percentile and maximum, in that order.
pub fn summary(values: &[f64]) -> Option<[f64; 3]> {
    Some([
        quantile(values, 0.5)?,
        quantile(values, 0.95)?,
        quantile(values, 1.0)?,
    ])
}

/// SplitMix64: tiny, seedable, and good enough to draw arrival gaps; the
/// bench must not depend on a crate's idea of a stable stream.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1]: never 0, so its logarithm is finite.
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// A gap of a Poisson process with this mean: exponentially distributed.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * self.unit().ln()
    }

    /// `k` distinct indices below `n`, by a partial Fisher-Yates shuffle.
    pub fn choose(&mut self, n: usize, k: usize) -> Vec<usize> {
        let mut all: Vec<usize> = (0..n).collect();
        for i in 0..k.min(n) {
            let j = i + (self.next_u64() % (n - i) as u64) as usize;
            all.swap(i, j);
        }
        all.truncate(k.min(n));
        all
    }
}
