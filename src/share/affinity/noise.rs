//! sklearn's tie-breaking noise (see [`Noise`](super::Noise)): numpy's legacy
//! `RandomState(seed).standard_normal()` reproduced bit for bit, and the noise term added to
//! `S` in the input's precision.

use super::Precision;

/// `S += (eps * S + tiny * 100) * N(0, 1)`, the normals row-major from `RandomState(seed)`,
/// in the input's precision as numpy evaluates it.
pub(super) fn add_noise(s: &mut [f64], seed: u32, precision: Precision) {
    let mut rng = LegacyNormal::new(seed);
    match precision {
        Precision::F64 => {
            let tiny = f64::MIN_POSITIVE * 100.0;
            for v in s.iter_mut() {
                *v += (f64::EPSILON * *v + tiny) * rng.next();
            }
        }
        Precision::F32 => {
            // eps * S + tiny * 100 in f32; times the f64 normal in f64; the sum stored in f32.
            let tiny = f32::MIN_POSITIVE * 100.0;
            for v in s.iter_mut() {
                let scale = f32::EPSILON * (*v as f32) + tiny;
                *v = f64::from((*v + f64::from(scale) * rng.next()) as f32);
            }
        }
    }
}

/// numpy's legacy `RandomState(seed).standard_normal()`: MT19937 seeded by `init_genrand`,
/// 53-bit doubles from two words, the polar Box-Muller method with the second value cached.
pub(crate) struct LegacyNormal {
    mt: Mt19937,
    cached: Option<f64>,
}

impl LegacyNormal {
    pub(crate) fn new(seed: u32) -> Self {
        Self {
            mt: Mt19937::new(seed),
            cached: None,
        }
    }

    pub(crate) fn next(&mut self) -> f64 {
        if let Some(v) = self.cached.take() {
            return v;
        }
        loop {
            let x1 = 2.0 * self.mt.next_f64() - 1.0;
            let x2 = 2.0 * self.mt.next_f64() - 1.0;
            let r2 = x1 * x1 + x2 * x2;
            if r2 < 1.0 && r2 != 0.0 {
                let f = (-2.0 * r2.ln() / r2).sqrt();
                self.cached = Some(f * x1);
                return f * x2;
            }
        }
    }
}

/// The Mersenne twister MT19937 (Matsumoto & Nishimura), as numpy's legacy seeding sets it.
struct Mt19937 {
    state: [u32; 624],
    pos: usize,
}

impl Mt19937 {
    fn new(seed: u32) -> Self {
        let mut state = [0u32; 624];
        state[0] = seed;
        for i in 1..624 {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Self { state, pos: 624 }
    }

    fn next_u32(&mut self) -> u32 {
        if self.pos >= 624 {
            for i in 0..624 {
                let y = (self.state[i] & 0x8000_0000) | (self.state[(i + 1) % 624] & 0x7fff_ffff);
                let mag = if y & 1 == 1 { 0x9908_b0df } else { 0 };
                self.state[i] = self.state[(i + 397) % 624] ^ (y >> 1) ^ mag;
            }
            self.pos = 0;
        }
        let mut y = self.state[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `genrand_res53`: a double in [0, 1) from 27 + 26 bits.
    fn next_f64(&mut self) -> f64 {
        let a = f64::from(self.next_u32() >> 5);
        let b = f64::from(self.next_u32() >> 6);
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normals_match_numpy_random_state_0() {
        // numpy.random.RandomState(0).standard_normal(5)
        let want = [
            1.764052345967664,
            0.4001572083672233,
            0.9787379841057392,
            2.240893199201458,
            1.8675579901499675,
        ];
        let mut rng = LegacyNormal::new(0);
        for w in want {
            assert_eq!(rng.next(), w);
        }
    }

    #[test]
    fn noise_matches_sklearn_bitwise() {
        // numpy: S += (finfo(S.dtype).eps * S + finfo(S.dtype).tiny * 100)
        //              * RandomState(0).standard_normal(size=(3, 3)), for f64 and f32 S.
        let s = [0.6, -1.5, 0.25, -1.5, 0.6, 3.0, 0.25, 3.0, 0.6];
        let mut v64 = s.to_vec();
        add_noise(&mut v64, 0, Precision::F64);
        let want64: [u64; 9] = [
            0x3fe3333333333335,
            0xbff8000000000001,
            0x3fd0000000000001,
            0xbff8000000000003,
            0x3fe3333333333335,
            0x4007ffffffffffff,
            0x3fd0000000000001,
            0x4008000000000000,
            0x3fe3333333333333,
        ];
        assert_eq!(v64.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want64);
        let mut v32: Vec<f64> = s.iter().map(|&v| f64::from(v as f32)).collect();
        add_noise(&mut v32, 0, Precision::F32);
        let want32: [u32; 9] = [
            0x3f19999c, 0xbfc00001, 0x3e800001, 0xbfc00003, 0x3f19999c, 0x403fffff, 0x3e800001,
            0x40400000, 0x3f19999a,
        ];
        let got32: Vec<u32> = v32.iter().map(|&v| (v as f32).to_bits()).collect();
        assert_eq!(got32, want32);
    }
}
