//! Enclosures that start at a dense layer from a kept activation (issue #14): when the
//! directions are zero on every layer below dense layer `s`, the network below `s` does
//! not move along the ray, so the sweep can start from the caller's activation `A_s`
//! entering layer `s` instead of re-running the lower layers as Taylor models.
//!
//! **What is certified.** With `A_s` taken as data, the function
//!
//! ```text
//! psi(alpha) = sum_n w ell(top_s(A_s; W + sum_i alpha_i V_i)[:, n], y_n) + (l2/2) ||W + sum_i alpha_i V_i||^2
//! ```
//!
//! (`top_s` = the layers from `s` upwards, the penalty over every penalised tensor of the
//! network) is enclosed exactly as [`super::enclose_with_value`] encloses the whole
//! objective: for every `alpha != 0` in the box, both the exact `psi(alpha)` and the
//! driver's floating-point evaluation of it (the forward pass from the given `A_s` in
//! `T` at the weights [`super::apply_step`] writes, the loss, the penalty summed in f64)
//! lie within the bounds. A caller whose record of the objective is computed from that
//! same `A_s` (block MM's forward pass from a block, `A_s` being its kept trace) gets a
//! bound on its record; `psi` differs from the whole network's objective only by the
//! rounding with which the caller computed `A_s`. The argument is the whole engine's
//! (docs/MAJORIZE.md): the input model of `A_s` is a constant (its `c1`, `q`, `e` are
//! zero), the dense and activation rules and the loss are unchanged, and the lower
//! layers enter only the exact penalty polynomial and the penalty's overflow check.
//! The underflow terms (module `extreme`) start from `max |A_s|` with no error.
//!
//! **Cost**: one Taylor-model sweep through the layers from `s` up, instead of all
//! layers plus the forward pass of `Sequential::objective`.

use autodiff::Real;
use nalgebra::DMatrix;

use super::EnclosureWorkspace;
use super::api::{
    AffineParts, EnclosureRequest, OP, QuadraticEnclosure, Step, check_affine_output, check_output,
    validate,
};
use super::sweep::{Given, Planned, enclose_planned_first};
use crate::error::{MajorizeError, Result};

/// Where an enclosure from a kept activation starts ([`enclose_from_layer`]).
#[derive(Clone, Copy, Debug)]
pub struct FromLayer<'a, T: Real> {
    /// Index in [`nets::Sequential::layers`] of the dense layer the sweep starts at.
    pub layer: usize,
    /// That layer's input on the request's samples (`d_in x N`), as the caller's forward
    /// pass computed it at the request's weights; taken as data (see the module doc).
    pub input: &'a DMatrix<T>,
    /// Optionally that layer's output `W input + b` at the request's weights (what the
    /// caller's forward pass recorded), which saves the sweep's largest product in f64
    /// (any f64 evaluation of the sum is covered by the dense rule's rounding term);
    /// checked against a recomputation of its first and last columns, recomputed for
    /// `T != f64`.
    pub output: Option<&'a DMatrix<T>>,
    /// Optionally, with one direction `v`, the product `V input + β` of that layer's part
    /// of `v` (weight `V`, bias `β`), which saves the sweep's degree-1 product in f64 (the
    /// same argument as `output`: any f64 evaluation is within the `γ` the rule charges
    /// for its own; a caller taking several enclosures along one direction computes it
    /// once). Checked like `output`; recomputed for `T != f64`.
    pub output_dir: Option<&'a DMatrix<T>>,
}

/// The certified enclosure of `psi(alpha)` (module doc: the objective with the layers
/// below `from.layer` replaced by the given activation `from.input`) on the request's
/// box. `req.inputs` are the network's inputs (validated as by [`super::enclose`]; not
/// read by the sweep). `value`: the caller's `psi(0)` (e.g. its recorded objective, as
/// [`super::enclose_with_value`]), or `None` for the enclosure's own (the midpoint of its
/// degree-0 interval in `T`); either way the slack is computed against the returned
/// `value`, so `psi(0)` lies in `value ± slack` and the bounds hold for `alpha != 0`.
///
/// Errors: those of [`super::enclose`]; `from.layer` not a dense layer; a direction with a
/// nonzero entry on a layer below `from.layer`; `from.input` of the wrong shape or not
/// finite; `from.output` of the wrong shape, not finite or not that layer's output; a
/// non-finite `value`.
pub fn enclose_from_layer<T: Real>(
    req: &EnclosureRequest<'_, T>,
    value: Option<T>,
    from: &FromLayer<'_, T>,
    ws: &mut EnclosureWorkspace,
) -> Result<QuadraticEnclosure<T>> {
    let plan = validate(req)?;
    super::extreme::check_l2(req.loss)?;
    let bad = |detail: String| MajorizeError::Shape { op: OP, detail };
    let at = plan
        .iter()
        .position(|s| matches!(s, Step::Dense(li) if *li == from.layer))
        .ok_or_else(|| bad(format!("layer {} is not a dense layer", from.layer)))?;
    let d = req.net.layers()[from.layer]
        .as_dense()
        .ok_or_else(|| bad(format!("layer {} is not dense", from.layer)))?;
    // The layers below the start own the prefix `0..below` of the flat vector (flat
    // order: layer by layer); only a violation builds the named layout for its message.
    let below = req.net.layer_param_offset(from.layer);
    for (i, dir) in req.directions.iter().enumerate() {
        let Some(j) = dir.as_slice()[..below].iter().position(|v| *v != T::zero()) else {
            continue;
        };
        let layout = req.net.param_layout();
        let info = layout
            .iter()
            .rfind(|p| p.offset <= j)
            .ok_or_else(|| bad(format!("flat entry {j} belongs to no parameter")))?;
        return Err(MajorizeError::Domain {
            op: OP,
            detail: format!(
                "direction {i} moves layer {} ({}), below the start layer {}",
                info.layer, info.name, from.layer
            ),
        });
    }
    let (rows, n) = (d.weight.ncols(), req.inputs.ncols());
    if from.input.shape() != (rows, n) {
        return Err(bad(format!(
            "the input of layer {} is {}x{}, expected {rows}x{n}",
            from.layer,
            from.input.nrows(),
            from.input.ncols()
        )));
    }
    crate::validate::finite(OP, "layer input", from.input)?;
    if let Some(out) = from.output {
        check_output(d, from.input, out, &format_args!("layer {}", from.layer))?;
    }
    if let Some(out) = from.output_dir {
        check_dir_output(req, from.layer, from.input, out)?;
    }
    let sub = EnclosureRequest {
        inputs: from.input,
        ..*req
    };
    let planned = Planned {
        below: &plan[..at],
        run: &plan[at..],
    };
    let given = Given {
        out: from.output.and_then(super::downcast::<_, DMatrix<f64>>),
        dir: from.output_dir.and_then(super::downcast::<_, DMatrix<f64>>),
    };
    enclose_planned_first(&sub, planned, value, given, ws)
}

/// Checks `out` against the product `V input + β` of the single direction's part on
/// dense layer `layer` (as [`check_output`] checks a layer's output).
fn check_dir_output<T: Real>(
    req: &EnclosureRequest<'_, T>,
    layer: usize,
    input: &DMatrix<T>,
    out: &DMatrix<T>,
) -> Result<()> {
    let [dir] = req.directions else {
        return Err(MajorizeError::Shape {
            op: OP,
            detail: format!(
                "a direction product was given with {} directions (only with one)",
                req.directions.len()
            ),
        });
    };
    let info = |name: &str| req.net.param_span(layer, name);
    let (Some(wi), Some(bi)) = (info("weight"), info("bias")) else {
        return Err(MajorizeError::Unsupported(format!(
            "enclose: dense layer {layer} does not expose weight and bias"
        )));
    };
    let d = dir.as_slice();
    let (w_end, b_end) = (wi.offset + wi.rows * wi.cols, bi.offset + bi.rows);
    if w_end > d.len() || b_end > d.len() || bi.rows != wi.rows {
        return Err(MajorizeError::Shape {
            op: OP,
            detail: format!(
                "the direction has {} entries, too few for layer {layer}'s weight and bias",
                d.len()
            ),
        });
    }
    let map = AffineParts {
        weight: &d[wi.offset..w_end],
        rows: wi.rows,
        cols: wi.cols,
        bias: &d[bi.offset..b_end],
    };
    check_affine_output(map, input, out, &format_args!("layer {layer} direction"))
}
