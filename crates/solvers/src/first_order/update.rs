//! The optax-style update rule: hyperparameters in `self`, state in a serialisable
//! record, one in-place `apply`.

use autodiff::Real;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A first-order update rule (optax's `GradientTransformation`, applied in place).
///
/// `init` builds the state from the initial parameters; `apply` moves the parameters
/// given a (mini-batch) gradient and the current learning rate. The state holds every
/// count the rule needs (bias corrections), so a restored state continues exactly.
pub trait Update<T: Real> {
    /// State of the rule (moments, accumulators, step count).
    type State: Clone + Serialize + DeserializeOwned;
    /// Short name with the hyperparameters, e.g. `"Adam(lr=0.001, ...)"` (lr supplied).
    fn name(&self, lr: f64) -> String;
    /// Fresh state for these initial parameters.
    fn init(&self, params: &[T]) -> Self::State;
    /// One update: `params <- params + delta(grad, state, lr)`.
    fn apply(&self, state: &mut Self::State, lr: T, params: &mut [T], grad: &[T]);
    /// Checks a restored state against `dim` parameters: by default, it must have the
    /// structure of `init` for `dim` parameters (every buffer of length `dim`, the same
    /// fields), see [`crate::state_check::same_structure`], and hold no count above
    /// [`crate::state_check::MAX_COUNT`].
    fn check_state(&self, state: &Self::State, dim: usize) -> Result<(), crate::SolverError> {
        let fresh = self.init(&vec![T::zero(); dim]);
        let got = crate::state_check::to_value(state)?;
        crate::state_check::check_counts_in("first-order rule", &got)?;
        crate::state_check::same_structure(
            "first-order rule",
            &crate::state_check::to_value(&fresh)?,
            &got,
        )
    }
}

/// Coupled L2 penalty (PyTorch's `weight_decay` for SGD, Adam, RMSProp, Adagrad): the
/// rule sees `g + wd * params`.
#[derive(Debug, Clone, PartialEq)]
pub struct CoupledL2<U> {
    /// Inner rule.
    pub inner: U,
    /// Penalty weight wd >= 0.
    pub wd: f64,
}

/// State of [`CoupledL2`]: the inner state and a scratch gradient (not serialised).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct CoupledState<S, T> {
    /// Inner rule's state.
    pub inner: S,
    #[serde(skip)]
    scratch: Vec<T>,
}

impl<T: Real, U: Update<T>> Update<T> for CoupledL2<U> {
    type State = CoupledState<U::State, T>;
    fn name(&self, lr: f64) -> String {
        if self.wd == 0.0 {
            self.inner.name(lr)
        } else {
            format!("{}+L2({})", self.inner.name(lr), self.wd)
        }
    }
    fn init(&self, params: &[T]) -> Self::State {
        CoupledState {
            inner: self.inner.init(params),
            scratch: Vec::new(),
        }
    }
    fn apply(&self, state: &mut Self::State, lr: T, params: &mut [T], grad: &[T]) {
        if self.wd == 0.0 {
            self.inner.apply(&mut state.inner, lr, params, grad);
            return;
        }
        if state.scratch.len() != params.len() {
            state.scratch = vec![T::zero(); params.len()];
        }
        let wd = T::of(self.wd);
        for ((s, g), p) in state.scratch.iter_mut().zip(grad).zip(params.iter()) {
            *s = *g + wd * *p;
        }
        let scratch = std::mem::take(&mut state.scratch);
        self.inner.apply(&mut state.inner, lr, params, &scratch);
        state.scratch = scratch;
    }
}

/// Decoupled weight decay (Loshchilov & Hutter, ICLR 2019, "AdamW"): first
/// `params <- (1 - lr * wd) params`, then the inner rule (PyTorch order).
#[derive(Debug, Clone, PartialEq)]
pub struct Decoupled<U> {
    /// Inner rule.
    pub inner: U,
    /// Decay weight wd >= 0 (multiplied by the current learning rate).
    pub wd: f64,
}

impl<T: Real, U: Update<T>> Update<T> for Decoupled<U> {
    type State = U::State;
    fn name(&self, lr: f64) -> String {
        format!("{}+decoupled_wd({})", self.inner.name(lr), self.wd)
    }
    fn init(&self, params: &[T]) -> Self::State {
        self.inner.init(params)
    }
    fn apply(&self, state: &mut Self::State, lr: T, params: &mut [T], grad: &[T]) {
        let shrink = T::one() - lr * T::of(self.wd);
        params.iter_mut().for_each(|p| *p *= shrink);
        self.inner.apply(state, lr, params, grad);
    }
}
