//! A small, explicit, seedable PRNG for the generator: SplitMix64 to derive and expand seeds,
//! xoshiro256** for the stream, and the samplers the generator needs (uniform, exponential, normal,
//! lognormal, gamma). Written here so that output is bit-identical across platforms and crate
//! versions for a given seed.

/// SplitMix64 step: a well-mixed 64-bit output from a counter state.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Mixes several words into one seed (order-sensitive).
pub fn mix(words: &[u64]) -> u64 {
    let mut state = 0x1234_5678_9ABC_DEF0u64;
    let mut out = 0;
    for &w in words {
        state ^= w;
        out = splitmix64(&mut state);
        state = out;
    }
    out
}

/// xoshiro256** (Blackman & Vigna), seeded through SplitMix64.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Self { s }
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 53 random bits.
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in (0, 1], safe for logarithms.
    #[inline]
    pub fn uniform_open(&mut self) -> f64 {
        1.0 - self.uniform()
    }

    /// Uniform integer in [0, n) (n > 0), by multiply-shift.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    #[inline]
    pub fn bernoulli(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// Exponential with mean 1.
    #[inline]
    pub fn exponential(&mut self) -> f64 {
        -self.uniform_open().ln()
    }

    /// Standard normal (Box–Muller, one value per call).
    #[inline]
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform_open();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Lognormal with the given median and log-space standard deviation σ.
    #[inline]
    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }

    /// Multiplicative noise with mean exactly 1: exp(σZ − σ²/2).
    #[inline]
    pub fn unit_noise(&mut self, sigma: f64) -> f64 {
        if sigma == 0.0 {
            return 1.0;
        }
        (sigma * self.normal() - 0.5 * sigma * sigma).exp()
    }

    /// Gamma(shape, scale 1), Marsaglia–Tsang; shapes below 1 use the U^(1/shape) boost.
    pub fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let boost = self.uniform_open().powf(1.0 / shape);
            return self.gamma(shape + 1.0) * boost;
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = 1.0 + c * x;
            if v <= 0.0 {
                continue;
            }
            let v = v * v * v;
            let u = self.uniform_open();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        (mean, var)
    }

    #[test]
    fn same_seed_same_stream() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        assert!((0..100).all(|_| a.next_u64() == b.next_u64()));
        assert_ne!(Rng::new(7).next_u64(), Rng::new(8).next_u64());
    }

    #[test]
    fn samplers_have_the_right_moments() {
        let mut r = Rng::new(1);
        let xs: Vec<f64> = (0..200_000).map(|_| r.normal()).collect();
        let (m, v) = moments(&xs);
        assert!(m.abs() < 0.01 && (v - 1.0).abs() < 0.02, "{m} {v}");
        for shape in [0.11, 0.5, 1.0, 3.0] {
            let xs: Vec<f64> = (0..200_000).map(|_| r.gamma(shape)).collect();
            let (m, v) = moments(&xs);
            assert!((m / shape - 1.0).abs() < 0.03, "shape {shape}: mean {m}");
            assert!((v / shape - 1.0).abs() < 0.08, "shape {shape}: var {v}");
        }
        let xs: Vec<f64> = (0..200_000).map(|_| r.unit_noise(0.1)).collect();
        assert!((moments(&xs).0 - 1.0).abs() < 0.002);
        let mut ys: Vec<f64> = (0..100_001).map(|_| r.lognormal(120.0, 0.7)).collect();
        ys.sort_by(f64::total_cmp);
        assert!((ys[50_000] / 120.0 - 1.0).abs() < 0.02);
    }
}
