//! Weight initialisers, reproducible bit for bit from an explicit seeded RNG.
//!
//! Every draw is built from `rng.next_u64()` with arithmetic written here (no
//! `rand_distr`, whose sampling algorithms may change between versions, and no platform
//! `libm` transcendental: the only non-arithmetic operation is the IEEE-exact `sqrt`), so
//! the same seed gives the same weights on every machine and compiler:
//!
//! * uniform on [0, 1): `(x >> 11) * 2^-53` (53 random bits);
//! * standard normal: Marsaglia's polar method (Marsaglia & Bray, SIAM Review 6, 1964):
//!   draw `u, v` uniform on (-1, 1) until `0 < s = u^2 + v^2 < 1`, then
//!   `u sqrt(-2 ln s / s)` and `v sqrt(-2 ln s / s)` are two independent N(0, 1)
//!   draws; `ln` is [`det_ln`], a series evaluation in plain f64 arithmetic.
//!
//! Values are drawn in f64 and rounded to `T`; weights are filled column-major
//! (`W[(0,0)], W[(1,0)], ...`). The normal initialisers are untruncated.

use autodiff::Real;
use nalgebra::{DMatrix, DVector};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// A weight initialiser for a `fan_out x fan_in` matrix (fan_in = d_{l-1}, fan_out = d_l).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Init {
    /// U(-a, a), a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, AISTATS 2010, eq. 16).
    GlorotUniform,
    /// N(0, 2 / (fan_in + fan_out)) (Glorot & Bengio 2010, variance-matched normal).
    GlorotNormal,
    /// U(-a, a), a = sqrt(6 / fan_in) (He et al., ICCV 2015, variance 2 / fan_in).
    HeUniform,
    /// N(0, 2 / fan_in) (He et al., ICCV 2015, eq. 10).
    HeNormal,
    /// N(0, 1 / fan_in) (LeCun et al., "Efficient BackProp", 1998).
    LeCunNormal,
    /// All zeros.
    Zeros,
}

impl Init {
    /// Standard deviation of the entries this initialiser draws.
    pub fn std_dev(&self, fan_in: usize, fan_out: usize) -> f64 {
        let fi = fan_in.max(1) as f64;
        let fo = fan_out.max(1) as f64;
        match self {
            Init::GlorotUniform | Init::GlorotNormal => (2.0 / (fi + fo)).sqrt(),
            Init::HeUniform | Init::HeNormal => (2.0 / fi).sqrt(),
            Init::LeCunNormal => (1.0 / fi).sqrt(),
            Init::Zeros => 0.0,
        }
    }

    /// A `fan_out x fan_in` weight matrix drawn from this initialiser.
    pub fn weight<T: Real, R: Rng + ?Sized>(
        &self,
        fan_out: usize,
        fan_in: usize,
        rng: &mut R,
    ) -> DMatrix<T> {
        let mut w = DMatrix::zeros(fan_out, fan_in);
        self.fill(w.as_mut_slice(), fan_in, fan_out, rng);
        w
    }

    /// Fills `out` (column-major order) with draws for a layer of the given fans.
    pub fn fill<T: Real, R: Rng + ?Sized>(
        &self,
        out: &mut [T],
        fan_in: usize,
        fan_out: usize,
        rng: &mut R,
    ) {
        let sd = self.std_dev(fan_in, fan_out);
        match self {
            Init::Zeros => out.iter_mut().for_each(|x| *x = T::zero()),
            Init::GlorotUniform | Init::HeUniform => {
                // U(-a, a) has standard deviation a / sqrt(3).
                let a = sd * 3f64.sqrt();
                for x in out.iter_mut() {
                    *x = T::of(a * (2.0 * uniform01(rng) - 1.0));
                }
            }
            Init::GlorotNormal | Init::HeNormal | Init::LeCunNormal => {
                let mut chunks = out.chunks_mut(2);
                for pair in &mut chunks {
                    let (z0, z1) = normal_pair(rng);
                    pair[0] = T::of(sd * z0);
                    if pair.len() > 1 {
                        pair[1] = T::of(sd * z1);
                    }
                }
            }
        }
    }
}

/// A zero bias of length `d` (biases are zero by default).
pub fn zero_bias<T: Real>(d: usize) -> DVector<T> {
    DVector::zeros(d)
}

/// Uniform draw on [0, 1) from the top 53 bits of one `u64`.
pub fn uniform01<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Two independent standard normal draws (Marsaglia's polar method, see module doc).
pub fn normal_pair<R: Rng + ?Sized>(rng: &mut R) -> (f64, f64) {
    loop {
        let u = 2.0 * uniform01(rng) - 1.0;
        let v = 2.0 * uniform01(rng) - 1.0;
        let s = u * u + v * v;
        if s > 0.0 && s < 1.0 {
            let f = (-2.0 * det_ln(s) / s).sqrt();
            return (u * f, v * f);
        }
    }
}

/// Natural logarithm of a positive finite `x` in plain f64 arithmetic (deterministic on
/// every IEEE-754 platform): `x = 2^k m` with `m` in [1/sqrt 2, sqrt 2), then
/// `ln m = 2 atanh(t)`, `t = (m - 1)/(m + 1)`, `|t| < 0.172`, by its odd series to
/// t^41 (error below 1e-17 relative), and `ln x = k ln 2 + ln m`. Accurate to a few
/// ulps; only its determinism matters here. Returns NaN for x <= 0 or non-finite x.
pub fn det_ln(x: f64) -> f64 {
    if !(x > 0.0 && x.is_finite()) {
        return f64::NAN;
    }
    let mut m = x;
    let mut k: i32 = 0;
    // Bring subnormals into the normal range first.
    if m < f64::MIN_POSITIVE {
        m *= 2f64.powi(64);
        k -= 64;
    }
    let bits = m.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32 - 1023;
    m = f64::from_bits((bits & !(0x7ffu64 << 52)) | (1023u64 << 52)); // in [1, 2)
    k += exp;
    if m >= std::f64::consts::SQRT_2 {
        m *= 0.5;
        k += 1;
    }
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let mut term = t;
    let mut s = 0.0;
    let mut n = 1.0;
    while n < 43.0 {
        s += term / n;
        term *= t2;
        n += 2.0;
    }
    k as f64 * std::f64::consts::LN_2 + 2.0 * s
}
