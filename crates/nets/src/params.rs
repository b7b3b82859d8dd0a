//! The flat parameter vector of a [`Sequential`] network: its length, its layout
//! ([`ParamInfo`], [`ParamSpan`]), copies to and from it, named access to single tensors
//! and the L2 weight penalty. The order is the one of the `sequential` module doc:
//! layer by layer, within a layer [`crate::Layer::param`] order (`weight` then `bias`
//! for a dense layer), each tensor column-major.

use autodiff::Real;

use crate::error::{NetsError, Result};
use crate::layer::{ParamMut, ParamRef};
use crate::sequential::Sequential;

/// Where one parameter tensor sits in the flat vector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamInfo {
    /// Index of the layer in the network.
    pub layer: usize,
    /// Parameter name within the layer.
    pub name: String,
    /// Rows of the tensor.
    pub rows: usize,
    /// Columns of the tensor.
    pub cols: usize,
    /// Offset of its first entry in the flat vector.
    pub offset: usize,
    /// Whether the L2 weight penalty applies.
    pub penalised: bool,
}

/// Where one parameter tensor sits in the flat vector, without its name: what
/// [`Sequential::param_span`] returns without allocating (the solvers' steady-state
/// lookups).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamSpan {
    /// Offset of its first entry in the flat vector.
    pub offset: usize,
    /// Rows of the tensor.
    pub rows: usize,
    /// Columns of the tensor.
    pub cols: usize,
}

impl<T: Real> Sequential<T> {
    /// Total number of scalar parameters.
    pub fn num_params(&self) -> usize {
        self.layer_param_offset(self.layers.len())
    }

    /// Offset of the first parameter of layer `layer` in the flat vector: the number of
    /// parameters of the layers before it (the total for `layer >= len()`). Allocates
    /// nothing.
    pub fn layer_param_offset(&self, layer: usize) -> usize {
        self.layers
            .iter()
            .take(layer)
            .map(|l| {
                (0..l.num_param_tensors())
                    .filter_map(|i| l.param(i))
                    .map(|p| p.values.len())
                    .sum::<usize>()
            })
            .sum()
    }

    /// The entry of [`Sequential::param_layout`] for tensor `name` of layer `layer`,
    /// without its name and without building the layout (no allocation); `None` if the
    /// layer has no such tensor.
    pub fn param_span(&self, layer: usize, name: &str) -> Option<ParamSpan> {
        let l = self.layers.get(layer)?;
        let mut offset = self.layer_param_offset(layer);
        for p in (0..l.num_param_tensors()).filter_map(|i| l.param(i)) {
            if p.name == name {
                return Some(ParamSpan {
                    offset,
                    rows: p.rows,
                    cols: p.cols,
                });
            }
            offset += p.values.len();
        }
        None
    }

    /// Where each parameter tensor sits in the flat vector (module doc for the order).
    pub fn param_layout(&self) -> Vec<ParamInfo> {
        let mut out = Vec::new();
        let mut offset = 0;
        for (li, l) in self.layers.iter().enumerate() {
            for p in (0..l.num_param_tensors()).filter_map(|i| l.param(i)) {
                out.push(ParamInfo {
                    layer: li,
                    name: p.name.to_string(),
                    rows: p.rows,
                    cols: p.cols,
                    offset,
                    penalised: p.penalised,
                });
                offset += p.values.len();
            }
        }
        out
    }

    fn check_flat_len(&self, op: &'static str, len: usize) -> Result<()> {
        let n = self.num_params();
        if len != n {
            return Err(NetsError::Shape {
                op,
                detail: format!("flat vector has length {len} but the network has {n} parameters"),
            });
        }
        Ok(())
    }

    /// Copies all parameters into `out` (length [`Sequential::num_params`]), in the flat
    /// order of the module doc.
    pub fn params_to_flat(&self, out: &mut [T]) -> Result<()> {
        self.check_flat_len("Sequential::params_to_flat", out.len())?;
        let mut o = 0;
        for l in &self.layers {
            for p in (0..l.num_param_tensors()).filter_map(|i| l.param(i)) {
                out[o..o + p.values.len()].copy_from_slice(p.values);
                o += p.values.len();
            }
        }
        Ok(())
    }

    /// Sets all parameters from `flat` (length [`Sequential::num_params`], flat order).
    /// A tensor a user's layer exposes read-only ([`crate::Layer::param`] but no
    /// [`crate::Layer::param_mut`]) keeps its values; its slot in `flat` is skipped, so
    /// the tensors after it still read their own slots.
    pub fn params_from_flat(&mut self, flat: &[T]) -> Result<()> {
        self.check_flat_len("Sequential::params_from_flat", flat.len())?;
        let mut o = 0;
        for (li, l) in self.layers.iter_mut().enumerate() {
            for i in 0..l.num_param_tensors() {
                let declared = l.param(i).map(|p| p.values.len());
                if let Some(p) = l.param_mut(i) {
                    let n = p.values.len();
                    if Some(n) != declared || o + n > flat.len() {
                        return Err(NetsError::Architecture {
                            op: "Sequential::params_from_flat",
                            detail: format!(
                                "layer {li} parameter {i}: param_mut gives {n} values but param gives {declared:?}"
                            ),
                        });
                    }
                    p.values.copy_from_slice(&flat[o..o + n]);
                    o += n;
                } else if let Some(n) = declared {
                    // Read-only: its slot is in the flat order all the same.
                    o += n;
                }
            }
        }
        Ok(())
    }

    /// The parameters as one flat vector (allocating form of `params_to_flat`).
    pub fn flat_params(&self) -> Vec<T> {
        let mut v = vec![T::zero(); self.num_params()];
        // Length is right by construction.
        let _ = self.params_to_flat(&mut v);
        v
    }

    /// The parameter tensor `name` of layer `layer` (e.g. `(0, "weight")`).
    pub fn param(&self, layer: usize, name: &str) -> Option<ParamRef<'_, T>> {
        let l = self.layers.get(layer)?;
        (0..l.num_param_tensors())
            .filter_map(|i| l.param(i))
            .find(|p| p.name == name)
    }

    /// The parameter tensor `name` of layer `layer`, mutably.
    pub fn param_mut(&mut self, layer: usize, name: &str) -> Option<ParamMut<'_, T>> {
        let l = self.layers.get_mut(layer)?;
        let i = (0..l.num_param_tensors()).find(|&i| l.param(i).is_some_and(|p| p.name == name))?;
        l.param_mut(i)
    }

    /// Tensor number `tensor` of layer `layer` (its [`crate::Layer::param_mut`] index, the
    /// flat order within the layer), mutably; `None` if there is no such tensor. Unlike
    /// [`Sequential::param_mut`] it needs no name, so a caller can walk the flat vector
    /// tensor by tensor without building [`Sequential::param_layout`].
    pub fn param_mut_at(&mut self, layer: usize, tensor: usize) -> Option<ParamMut<'_, T>> {
        let l = self.layers.get_mut(layer)?;
        if tensor >= l.num_param_tensors() {
            return None;
        }
        l.param_mut(tensor)
    }

    /// The L2 penalty `(l2/2) sum ||P||^2` over penalised parameter tensors (weights).
    pub fn weight_penalty(&self, l2: f64) -> f64 {
        let mut s = 0.0;
        for l in &self.layers {
            for p in (0..l.num_param_tensors()).filter_map(|i| l.param(i)) {
                if p.penalised {
                    s += p
                        .values
                        .iter()
                        .map(|v| v.to_f64() * v.to_f64())
                        .sum::<f64>();
                }
            }
        }
        0.5 * l2 * s
    }
}
