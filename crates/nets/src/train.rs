//! Loss and gradient of a batch through a reusable tape.

use autodiff::{Real, Tape, Var};
use nalgebra::DMatrix;

use crate::activation::Activation;
use crate::dataset::Targets;
use crate::error::{NetsError, Result};
use crate::layer::TapeContext;
use crate::loss::{Loss, LossKind, TargetView};
use crate::sequential::{MAX_ACTIVATION_BYTES, Sequential, TapeScratch};

impl Loss {
    /// Records the data term (no weight penalty) of `output` (a `K x N` node) on the
    /// tape and returns its `1 x 1` node. Dense targets are copied into a tape constant;
    /// labels are passed as labels (softmax CE, hinge) or expanded to a one-hot / 0-1
    /// matrix (MSE, logistic: this allocates; [`loss_and_grad`] reuses a buffer).
    pub fn on_tape<T: Real>(
        &self,
        tape: &mut Tape<T>,
        output: Var,
        targets: &Targets<T>,
    ) -> Result<Var> {
        let mut buf = DMatrix::zeros(0, 0);
        self.on_tape_with(tape, output, targets, &mut buf)
    }

    pub(crate) fn on_tape_with<T: Real>(
        &self,
        tape: &mut Tape<T>,
        output: Var,
        targets: &Targets<T>,
        buf: &mut DMatrix<T>,
    ) -> Result<Var> {
        let (rows, cols) = tape.shape(output);
        let view = self.target_view(rows, cols, targets)?;
        let r = self.reduction;
        let mut dense_targets = |tape: &mut Tape<T>| -> Var {
            match &view {
                TargetView::Dense(y) => tape.constant(y),
                _ => {
                    if buf.shape() != (rows, cols) {
                        *buf = DMatrix::zeros(rows, cols);
                    }
                    for n in 0..cols {
                        for k in 0..rows {
                            buf[(k, n)] = view.at(k, n);
                        }
                    }
                    tape.constant(buf)
                }
            }
        };
        let node = match self.kind {
            LossKind::Mse => {
                let y = dense_targets(tape);
                tape.mse(output, y, r)?
            }
            LossKind::Logistic => {
                let y = dense_targets(tape);
                tape.bce_with_logits(output, y, r)?
            }
            LossKind::SoftmaxCrossEntropy => match &view {
                TargetView::Labels(l) => tape.softmax_cross_entropy_labels(output, l, r)?,
                _ => {
                    let y = dense_targets(tape);
                    tape.softmax_cross_entropy(output, y, r)?
                }
            },
            LossKind::MulticlassHinge => match &view {
                TargetView::Labels(l) => tape.multiclass_hinge(output, l, r)?,
                _ => {
                    return Err(NetsError::Targets {
                        op: "multiclass_hinge",
                        detail: "the multiclass hinge loss needs class labels".into(),
                    });
                }
            },
        };
        Ok(node)
    }
}

/// Objective `loss(net(x), targets) + (l2/2) sum_l ||W_l||_F^2` on a batch of columns
/// and its gradient with respect to all parameters, written to `grad_out` in the flat
/// order of [`Sequential::params_to_flat`]. The data term and its gradient come from
/// the tape (reset first); the penalty and its gradient `l2 W` are added directly.
/// The tape's buffers and the network's pooled scratch are reused, so repeated calls
/// with the same shapes allocate nothing (when two threads use the same network at
/// once, the second falls back to a fresh scratch). A pass whose layer outputs exceed
/// [`crate::MAX_ACTIVATION_BYTES`] ([`Sequential::check_activation_bytes`]) is a
/// `Shape` error, returned before anything is recorded.
pub fn loss_and_grad<T: Real>(
    net: &Sequential<T>,
    loss: &Loss,
    x: &DMatrix<T>,
    targets: &Targets<T>,
    tape: &mut Tape<T>,
    grad_out: &mut [T],
) -> Result<T> {
    loss_and_grad_impl(net, loss, Input::All(x), targets, tape, grad_out, None)
}

/// [`loss_and_grad`] on the mini-batch made of the columns `cols` of `x` (in that
/// order), gathered straight onto the tape ([`Tape::constant_columns`]: one copy of the
/// batch, no intermediate batch matrix); `targets` are the batch's own targets (one per
/// entry of `cols`). Errors as [`loss_and_grad`], and on a column index `>= x.ncols()`.
pub fn loss_and_grad_columns<T: Real>(
    net: &Sequential<T>,
    loss: &Loss,
    x: &DMatrix<T>,
    cols: &[usize],
    targets: &Targets<T>,
    tape: &mut Tape<T>,
    grad_out: &mut [T],
) -> Result<T> {
    loss_and_grad_impl(
        net,
        loss,
        Input::Columns(x, cols),
        targets,
        tape,
        grad_out,
        None,
    )
}

/// The input of a gradient pass: a whole matrix, or some of its columns (a mini-batch).
#[derive(Clone, Copy)]
enum Input<'a, T: Real> {
    All(&'a DMatrix<T>),
    Columns(&'a DMatrix<T>, &'a [usize]),
}

/// [`loss_and_grad`] that also records the tape variable of every layer's output, in
/// layer order, in `outputs` (cleared first): after the call, `tape.value(outputs[i])`
/// is layer `i`'s output on `x` at the network's weights (valid until the tape is reset),
/// so a caller can reuse the forward pass (e.g. the certified enclosure's first layer).
pub fn loss_and_grad_outputs<T: Real>(
    net: &Sequential<T>,
    loss: &Loss,
    x: &DMatrix<T>,
    targets: &Targets<T>,
    tape: &mut Tape<T>,
    grad_out: &mut [T],
    outputs: &mut Vec<Var>,
) -> Result<T> {
    outputs.clear();
    loss_and_grad_impl(
        net,
        loss,
        Input::All(x),
        targets,
        tape,
        grad_out,
        Some(outputs),
    )
}

fn loss_and_grad_impl<T: Real>(
    net: &Sequential<T>,
    loss: &Loss,
    input: Input<'_, T>,
    targets: &Targets<T>,
    tape: &mut Tape<T>,
    grad_out: &mut [T],
    mut outputs: Option<&mut Vec<Var>>,
) -> Result<T> {
    let x = match input {
        Input::All(x) | Input::Columns(x, _) => x,
    };
    loss.validate()?;
    let n_params = net.num_params();
    if grad_out.len() != n_params {
        return Err(NetsError::Shape {
            op: "loss_and_grad",
            detail: format!(
                "gradient buffer has length {} but the network has {n_params} parameters",
                grad_out.len()
            ),
        });
    }
    if let Some(d) = net.input_dim()
        && x.nrows() != d
    {
        return Err(NetsError::Shape {
            op: "loss_and_grad",
            detail: format!("network takes {d} input rows but x has {}", x.nrows()),
        });
    }
    // The tape holds every layer's output (and its gradient) for the pass's columns:
    // refused beyond MAX_ACTIVATION_BYTES before anything is recorded, as `predict`
    // does (a wide net on many samples aborted the process on a failed allocation). A
    // column list may repeat columns, so the gathered input is checked too.
    let n = match input {
        Input::All(x) => x.ncols(),
        Input::Columns(x, cols) => {
            let bytes = x
                .nrows()
                .checked_mul(cols.len())
                .and_then(|e| e.checked_mul(std::mem::size_of::<T>()));
            if bytes.is_none_or(|b| b > MAX_ACTIVATION_BYTES) {
                return Err(NetsError::Shape {
                    op: "loss_and_grad",
                    detail: format!(
                        "the gathered batch needs {} rows x {} columns x {} bytes, more than MAX_ACTIVATION_BYTES = {MAX_ACTIVATION_BYTES}",
                        x.nrows(),
                        cols.len(),
                        std::mem::size_of::<T>()
                    ),
                });
            }
            cols.len()
        }
    };
    net.check_activation_bytes("loss_and_grad", x.nrows(), n)?;
    let mut local = None;
    let mut guard = net.scratch.try_lock().ok();
    let scratch: &mut TapeScratch<T> = match guard.as_deref_mut() {
        Some(s) => s,
        None => local.insert(TapeScratch::default()),
    };
    tape.reset();
    let xv = match input {
        Input::All(x) => tape.constant(x),
        Input::Columns(x, cols) => tape.constant_columns(x, cols)?,
    };
    let TapeScratch {
        vars,
        mats,
        targets: tbuf,
    } = scratch;
    let mut ctx = TapeContext::new(tape, vars, mats);
    let mut cur = xv;
    let mut expected = 0;
    let layers = net.layers();
    // A layer followed by a ReLU is recorded as one node when the layer offers it
    // (`Layer::forward_tape_relu`, bit-identical to the two nodes), except when every
    // layer's output is asked for: the fused node has no pre-activation to return.
    let fuse = outputs.is_none();
    let mut skip_relu = false;
    for (i, layer) in layers.iter().enumerate() {
        if std::mem::take(&mut skip_relu) {
            continue;
        }
        // (A parameter-free ReLU only: a skipped layer registers nothing.)
        let next_is_relu = layers.get(i + 1).is_some_and(|l| {
            l.as_activation() == Some(Activation::Relu) && l.num_param_tensors() == 0
        });
        let fused = if fuse && next_is_relu {
            layer.forward_tape_relu(&mut ctx, cur)?
        } else {
            None
        };
        match fused {
            Some(y) => {
                cur = y;
                skip_relu = true;
            }
            None => cur = layer.forward_tape(&mut ctx, cur)?,
        }
        if let Some(o) = outputs.as_deref_mut() {
            o.push(cur);
        }
        expected += layer.num_param_tensors();
        if ctx.params().len() != expected {
            return Err(NetsError::Architecture {
                op: "loss_and_grad",
                detail: format!(
                    "layer {i} ({}) declares {} parameter tensors but registered {} on the tape",
                    layer.kind(),
                    layer.num_param_tensors(),
                    ctx.params().len() + layer.num_param_tensors() - expected
                ),
            });
        }
    }
    let data = loss.on_tape_with(tape, cur, targets, tbuf)?;
    let value = tape.scalar(data)?;
    tape.backward(data)?;
    let mut penalty = 0.0f64;
    let l2 = T::of(loss.l2);
    let mut o = 0;
    let mut k = 0;
    for layer in net.layers() {
        for i in 0..layer.num_param_tensors() {
            let var = vars[k];
            k += 1;
            let Some(p) = layer.param(i) else { continue };
            let n = p.values.len();
            let dst = &mut grad_out[o..o + n];
            match tape.grad(var) {
                Some(g) if g.len() == n => dst.copy_from_slice(g.as_slice()),
                Some(g) => {
                    return Err(NetsError::Shape {
                        op: "loss_and_grad",
                        detail: format!(
                            "gradient of parameter {} has {} entries, expected {n}",
                            p.name,
                            g.len()
                        ),
                    });
                }
                None => dst.iter_mut().for_each(|d| *d = T::zero()),
            }
            if p.penalised && loss.l2 != 0.0 {
                for (d, &w) in dst.iter_mut().zip(p.values) {
                    *d += l2 * w;
                    penalty += w.to_f64() * w.to_f64();
                }
            }
            o += n;
        }
    }
    Ok(T::of(value.to_f64() + 0.5 * loss.l2 * penalty))
}

impl<T: Real> Sequential<T> {
    /// Method form of [`loss_and_grad`].
    pub fn loss_and_grad(
        &self,
        loss: &Loss,
        x: &DMatrix<T>,
        targets: &Targets<T>,
        tape: &mut Tape<T>,
        grad_out: &mut [T],
    ) -> Result<T> {
        loss_and_grad(self, loss, x, targets, tape, grad_out)
    }
}
