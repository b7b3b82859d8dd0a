//! The update rules of the gradient baselines, with PyTorch's conventions.

use autodiff::Real;
use serde::{Deserialize, Serialize};

use super::Update;

/// SGD with optional heavy-ball or Nesterov momentum, PyTorch convention (dampening 0):
/// `b <- mu b + g`; heavy ball `p <- p - lr b`; Nesterov `p <- p - lr (g + mu b)`
/// (Sutskever et al. 2013 in the PyTorch form). mu = 0 is plain SGD / GD.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdRule {
    /// Momentum mu in [0, 1).
    pub momentum: f64,
    /// Nesterov's variant.
    pub nesterov: bool,
}

/// State of [`SgdRule`]: the momentum buffer (empty when mu = 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SgdState<T> {
    /// Momentum buffer b.
    pub buf: Vec<T>,
}

impl<T: Real> Update<T> for SgdRule {
    type State = SgdState<T>;
    fn name(&self, lr: f64) -> String {
        let m = self.momentum;
        if m == 0.0 {
            format!("SGD(lr={lr})")
        } else if self.nesterov {
            format!("SGD(lr={lr}, nesterov={m})")
        } else {
            format!("SGD(lr={lr}, momentum={m})")
        }
    }
    fn init(&self, params: &[T]) -> Self::State {
        let n = if self.momentum == 0.0 {
            0
        } else {
            params.len()
        };
        SgdState {
            buf: vec![T::zero(); n],
        }
    }
    fn apply(&self, state: &mut Self::State, lr: T, params: &mut [T], grad: &[T]) {
        if self.momentum == 0.0 {
            for (p, g) in params.iter_mut().zip(grad) {
                *p -= lr * *g;
            }
            return;
        }
        let mu = T::of(self.momentum);
        for ((p, g), b) in params.iter_mut().zip(grad).zip(state.buf.iter_mut()) {
            *b = mu * *b + *g;
            let d = if self.nesterov { *g + mu * *b } else { *b };
            *p -= lr * d;
        }
    }
}

/// Adam (Kingma & Ba, ICLR 2015, Alg. 1), PyTorch convention: eps is added to the
/// bias-corrected root, outside the square root:
/// `m <- b1 m + (1-b1) g`, `v <- b2 v + (1-b2) g^2`,
/// `p <- p - (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamRule {
    /// beta1 in [0, 1).
    pub beta1: f64,
    /// beta2 in [0, 1).
    pub beta2: f64,
    /// eps > 0.
    pub eps: f64,
}

/// State of [`AdamRule`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdamState<T> {
    /// Number of updates made (t).
    pub t: u64,
    /// First moment m.
    pub m: Vec<T>,
    /// Second moment v.
    pub v: Vec<T>,
}

impl<T: Real> Update<T> for AdamRule {
    type State = AdamState<T>;
    fn name(&self, lr: f64) -> String {
        format!(
            "Adam(lr={lr}, betas=({}, {}), eps={})",
            self.beta1, self.beta2, self.eps
        )
    }
    fn init(&self, params: &[T]) -> Self::State {
        AdamState {
            t: 0,
            m: vec![T::zero(); params.len()],
            v: vec![T::zero(); params.len()],
        }
    }
    fn apply(&self, s: &mut Self::State, lr: T, params: &mut [T], grad: &[T]) {
        s.t += 1;
        let t = s.t.min(i32::MAX as u64) as i32;
        let (b1, b2) = (T::of(self.beta1), T::of(self.beta2));
        let bc1 = T::one() - T::of(self.beta1.powi(t));
        let bc2_sqrt = (T::one() - T::of(self.beta2.powi(t))).sqrt();
        let step = lr / bc1;
        let eps = T::of(self.eps);
        let k = AdamConsts {
            b1,
            b2,
            bc2_sqrt,
            step,
            eps,
        };
        autodiff::simd::widest(
            #[inline(always)]
            || adam_loop(&k, params, grad, &mut s.m, &mut s.v),
        );
    }
}

/// The per-step constants of [`AdamRule::apply`].
struct AdamConsts<T> {
    b1: T,
    b2: T,
    bc2_sqrt: T,
    step: T,
    eps: T,
}

/// The Adam update of every entry (see [`AdamRule`]), run with the widest vector
/// extension the CPU has (`autodiff::simd::widest`). Only the vector width differs:
/// each entry takes the same IEEE operations in the same order (no FMA contraction in Rust; `sqrt` and `/` are
/// correctly rounded at every width), so the three give the same bits. Issue #14: at
/// the baseline's 2 lanes the update of a 784-256-256-10 network was ~15% of a
/// batch-128 gradient.
#[inline(always)]
fn adam_loop<T: Real>(k: &AdamConsts<T>, params: &mut [T], grad: &[T], m: &mut [T], v: &mut [T]) {
    for (((p, g), m), v) in params.iter_mut().zip(grad).zip(m).zip(v) {
        *m = k.b1 * *m + (T::one() - k.b1) * *g;
        *v = k.b2 * *v + (T::one() - k.b2) * *g * *g;
        *p -= k.step * *m / (v.sqrt() / k.bc2_sqrt + k.eps);
    }
}

/// RMSProp (Tieleman & Hinton 2012, lecture 6e), PyTorch convention (not centred; eps
/// outside the root): `v <- alpha v + (1-alpha) g^2`; without momentum
/// `p <- p - lr g / (sqrt(v) + eps)`; with momentum mu `b <- mu b + g / (sqrt(v) + eps)`,
/// `p <- p - lr b`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RmsPropRule {
    /// Smoothing alpha in [0, 1).
    pub alpha: f64,
    /// eps > 0.
    pub eps: f64,
    /// Momentum mu in [0, 1).
    pub momentum: f64,
}

/// State of [`RmsPropRule`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RmsPropState<T> {
    /// Running mean of squared gradients v.
    pub v: Vec<T>,
    /// Momentum buffer (empty when mu = 0).
    pub buf: Vec<T>,
}

impl<T: Real> Update<T> for RmsPropRule {
    type State = RmsPropState<T>;
    fn name(&self, lr: f64) -> String {
        format!(
            "RMSProp(lr={lr}, alpha={}, eps={}, momentum={})",
            self.alpha, self.eps, self.momentum
        )
    }
    fn init(&self, params: &[T]) -> Self::State {
        let nb = if self.momentum == 0.0 {
            0
        } else {
            params.len()
        };
        RmsPropState {
            v: vec![T::zero(); params.len()],
            buf: vec![T::zero(); nb],
        }
    }
    fn apply(&self, s: &mut Self::State, lr: T, params: &mut [T], grad: &[T]) {
        let a = T::of(self.alpha);
        let eps = T::of(self.eps);
        let mu = T::of(self.momentum);
        if self.momentum == 0.0 {
            for ((p, g), v) in params.iter_mut().zip(grad).zip(s.v.iter_mut()) {
                *v = a * *v + (T::one() - a) * *g * *g;
                *p -= lr * *g / (v.sqrt() + eps);
            }
            return;
        }
        let it = params
            .iter_mut()
            .zip(grad)
            .zip(s.v.iter_mut())
            .zip(s.buf.iter_mut());
        for (((p, g), v), b) in it {
            *v = a * *v + (T::one() - a) * *g * *g;
            *b = mu * *b + *g / (v.sqrt() + eps);
            *p -= lr * *b;
        }
    }
}

/// Adagrad (Duchi, Hazan & Singer, JMLR 2011), PyTorch convention (eps outside the
/// root, no lr decay): `s <- s + g^2`, `p <- p - lr g / (sqrt(s) + eps)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdagradRule {
    /// eps > 0.
    pub eps: f64,
    /// Initial accumulator value (>= 0).
    pub initial_accumulator: f64,
}

/// State of [`AdagradRule`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdagradState<T> {
    /// Sum of squared gradients.
    pub sum: Vec<T>,
}

impl<T: Real> Update<T> for AdagradRule {
    type State = AdagradState<T>;
    fn name(&self, lr: f64) -> String {
        format!("Adagrad(lr={lr}, eps={})", self.eps)
    }
    fn init(&self, params: &[T]) -> Self::State {
        AdagradState {
            sum: vec![T::of(self.initial_accumulator); params.len()],
        }
    }
    fn apply(&self, s: &mut Self::State, lr: T, params: &mut [T], grad: &[T]) {
        let eps = T::of(self.eps);
        for ((p, g), a) in params.iter_mut().zip(grad).zip(s.sum.iter_mut()) {
            *a += *g * *g;
            *p -= lr * *g / (a.sqrt() + eps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::first_order::{CoupledL2, Decoupled};

    #[test]
    fn adam_first_two_steps_by_hand() {
        let r = AdamRule {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        };
        let mut p = vec![1.0f64, -2.0];
        let mut s = Update::<f64>::init(&r, &p);
        r.apply(&mut s, 0.1, &mut p, &[0.5, -4.0]);
        // t = 1: mhat = g, vhat = g^2, step = lr g / (|g| + eps).
        assert!((p[0] - (1.0 - 0.1 * 0.5 / (0.5 + 1e-8))).abs() < 1e-15);
        assert!((p[1] - (-2.0 + 0.1 * 4.0 / (4.0 + 1e-8))).abs() < 1e-15);
        let p1 = p.clone();
        r.apply(&mut s, 0.1, &mut p, &[1.0, 0.0]);
        let m = 0.9 * 0.05 + 0.1 * 1.0;
        let v: f64 = 0.999 * 0.001 * 0.25 + 0.001 * 1.0;
        let expect =
            p1[0] - 0.1 / (1.0 - 0.81) * m / (v.sqrt() / (1.0 - 0.999f64.powi(2)).sqrt() + 1e-8);
        assert!((p[0] - expect).abs() < 1e-14, "{} vs {expect}", p[0]);
    }

    /// The run-time dispatched Adam update (AVX-512F / AVX2 where the CPU has them) gives
    /// the baseline loop's bits, f64 and f32, on a length that is no multiple of a
    /// vector, with tiny, huge and zero gradients.
    fn dispatched_adam_is_the_baseline_loop_bit_for_bit<T: Real>() {
        let r = AdamRule {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        };
        let n = 1037;
        let p0: Vec<T> = (0..n)
            .map(|i| T::of(((i * 37) % 101) as f64 / 50.0 - 1.0))
            .collect();
        let mut p = p0.clone();
        let mut s = Update::<T>::init(&r, &p);
        let mut q = p0;
        let (mut m, mut v) = (vec![T::zero(); n], vec![T::zero(); n]);
        for t in 1..=3 {
            let g: Vec<T> = (0..n)
                .map(|i| {
                    let x = ((i * 13 + t * 7) % 29) as f64 - 14.0;
                    T::of(x * [1e-30, 1e-3, 1.0, 1e20][i % 4] * f64::from(u8::from(i % 11 != 0)))
                })
                .collect();
            r.apply(&mut s, T::of(0.01), &mut p, &g);
            // The baseline loop with the constants apply computes.
            let ti = t as i32;
            let bc1 = T::one() - T::of(0.9f64.powi(ti));
            let k = AdamConsts {
                b1: T::of(0.9),
                b2: T::of(0.999),
                bc2_sqrt: (T::one() - T::of(0.999f64.powi(ti))).sqrt(),
                step: T::of(0.01) / bc1,
                eps: T::of(1e-8),
            };
            adam_loop(&k, &mut q, &g, &mut m, &mut v);
            for i in 0..n {
                assert!(
                    p[i] == q[i] && s.m[i] == m[i] && s.v[i] == v[i],
                    "step {t} entry {i}"
                );
            }
        }
    }

    #[test]
    fn dispatched_adam_matches_the_baseline_f64_and_f32() {
        dispatched_adam_is_the_baseline_loop_bit_for_bit::<f64>();
        dispatched_adam_is_the_baseline_loop_bit_for_bit::<f32>();
    }

    #[test]
    fn heavy_ball_and_nesterov_by_hand() {
        let hb = SgdRule {
            momentum: 0.5,
            nesterov: false,
        };
        let nag = SgdRule {
            momentum: 0.5,
            nesterov: true,
        };
        let (mut p, mut q) = (vec![0.0f64], vec![0.0f64]);
        let (mut sp, mut sq) = (Update::<f64>::init(&hb, &p), Update::<f64>::init(&nag, &q));
        for _ in 0..2 {
            hb.apply(&mut sp, 1.0, &mut p, &[1.0]);
            nag.apply(&mut sq, 1.0, &mut q, &[1.0]);
        }
        // b1 = 1, b2 = 1.5. Heavy ball: -(1 + 1.5); Nesterov: -((1 + 0.5) + (1 + 0.75)).
        assert_eq!(p[0], -2.5);
        assert_eq!(q[0], -3.25);
    }

    #[test]
    fn rmsprop_adagrad_and_weight_decays_by_hand() {
        let r = RmsPropRule {
            alpha: 0.9,
            eps: 0.0,
            momentum: 0.0,
        };
        let mut p = vec![1.0f64];
        let mut s = Update::<f64>::init(&r, &p);
        r.apply(&mut s, 0.1, &mut p, &[2.0]);
        assert!((p[0] - (1.0 - 0.1 * 2.0 / (0.1f64 * 4.0).sqrt())).abs() < 1e-15);

        let a = AdagradRule {
            eps: 0.0,
            initial_accumulator: 0.0,
        };
        let mut p = vec![1.0f64];
        let mut s = Update::<f64>::init(&a, &p);
        a.apply(&mut s, 0.1, &mut p, &[2.0]);
        a.apply(&mut s, 0.1, &mut p, &[1.0]);
        assert!((p[0] - (1.0 - 0.1 - 0.1 / 5f64.sqrt())).abs() < 1e-15);

        // Coupled L2 adds wd p to the gradient; decoupled shrinks p by (1 - lr wd) first.
        let sgd = SgdRule {
            momentum: 0.0,
            nesterov: false,
        };
        let c = CoupledL2 {
            inner: sgd,
            wd: 0.5,
        };
        let mut p = vec![2.0f64];
        let mut s = Update::<f64>::init(&c, &p);
        c.apply(&mut s, 0.1, &mut p, &[1.0]);
        assert!((p[0] - (2.0 - 0.1 * (1.0 + 1.0))).abs() < 1e-15);
        let d = Decoupled {
            inner: AdamRule {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            },
            wd: 0.5,
        };
        let mut p = vec![2.0f64];
        let mut s = Update::<f64>::init(&d, &p);
        d.apply(&mut s, 0.1, &mut p, &[3.0]);
        assert!((p[0] - (2.0 * 0.95 - 0.1 * 3.0 / (3.0 + 1e-8))).abs() < 1e-15);
    }
}
