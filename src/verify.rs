//! Comparing GPU results with the CPU twins.

/// The largest error of `gpu` against `reference`, relative to `scale`, per element:
/// `max_i |gpu_i - reference_i| / scale_i`.
///
/// For a sum of products, pass as `scale` the same op applied to the absolute values of its
/// operands (`sum |a| |b|`): that is the natural bound of floating-point error, so the figure
/// is about `K * 2^-24` at worst for a K-term f32 sum and stays meaningful where the result
/// cancels to near zero. Elements whose scale is zero must match exactly (else infinity).
/// Returns NaN when a GPU value is NaN; panics if the lengths differ.
pub fn max_rel_err(gpu: &[f32], reference: &[f32], scale: &[f32]) -> f64 {
    assert_eq!(gpu.len(), reference.len(), "max_rel_err: length mismatch");
    assert_eq!(gpu.len(), scale.len(), "max_rel_err: length mismatch");
    let mut worst = 0.0f64;
    for ((&g, &r), &s) in gpu.iter().zip(reference).zip(scale) {
        if g.is_nan() != r.is_nan() {
            return f64::NAN;
        }
        let diff = (f64::from(g) - f64::from(r)).abs();
        let rel = if s == 0.0 {
            if diff == 0.0 {
                0.0
            } else {
                f64::INFINITY
            }
        } else {
            diff / f64::from(s.abs())
        };
        worst = worst.max(rel);
    }
    worst
}

/// Element-wise absolute values.
pub fn abs(x: &[f32]) -> Vec<f32> {
    x.iter().map(|v| v.abs()).collect()
}

/// A small, fast, seedable generator of test data (xorshift64*), so tests, benches and the
/// report make the same inputs everywhere without extra dependencies.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (any value).
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// `n` values uniform in [-1, 1).
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.uniform()).collect()
    }
}
