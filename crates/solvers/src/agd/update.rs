//! The AGD update on a flat parameter vector ([`agd_update`]); maths in [`crate::agd`].

use autodiff::Real;
use nets::Sequential;

use crate::SolverError;

/// Where one layer's `W_l` (column-major, `rows x cols`) and optional bias sit in the
/// flat parameter vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgdLayer {
    /// Offset of `W_l`.
    pub weight: usize,
    /// `d_l` (outputs).
    pub rows: usize,
    /// `d_{l-1}` (inputs).
    pub cols: usize,
    /// Offset of `b_l` (length `rows`), if the layer has one.
    pub bias: Option<usize>,
}

/// What one AGD update computed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AgdStepInfo {
    /// Gradient summary `G`.
    pub g: f64,
    /// Step size `eta(G)`.
    pub eta: f64,
}

/// The AGD layers of a network: every parameterised layer must be dense (a `weight`
/// and a `bias`, as `nets::Dense` names them); errors otherwise.
pub fn agd_layers<T: Real>(net: &Sequential<T>) -> Result<Vec<AgdLayer>, SolverError> {
    let mut out: Vec<(usize, AgdLayer)> = Vec::new();
    for p in net.param_layout() {
        let entry = match out.last_mut() {
            Some((l, e)) if *l == p.layer => e,
            _ => {
                out.push((
                    p.layer,
                    AgdLayer {
                        weight: usize::MAX,
                        rows: 0,
                        cols: 0,
                        bias: None,
                    },
                ));
                &mut out.last_mut().expect("just pushed").1
            }
        };
        match p.name.as_str() {
            "weight" => {
                entry.weight = p.offset;
                entry.rows = p.rows;
                entry.cols = p.cols;
            }
            "bias" => entry.bias = Some(p.offset),
            other => {
                return Err(SolverError::Problem(format!(
                    "AGD supports dense layers only; layer {} has a parameter {other:?}",
                    p.layer
                )));
            }
        }
    }
    let layers: Vec<AgdLayer> = out.into_iter().map(|(_, e)| e).collect();
    if layers.is_empty()
        || layers
            .iter()
            .any(|l| l.weight == usize::MAX || l.rows * l.cols == 0)
    {
        return Err(SolverError::Problem(
            "AGD needs dense layers, each with a non-empty weight matrix".into(),
        ));
    }
    Ok(layers)
}

/// One AGD update of `params` from `grad` (flat, same layout), in place:
/// `G = (1/L) sum_l sqrt(rows/cols) ||[g_W g_b]||_F`, `eta = log((1 + sqrt(1 + 4G))/2)`,
/// each layer moves by `-gain (eta/L) sqrt(rows/cols) [g_W g_b] / ||[g_W g_b]||_F`
/// (unchanged if its gradient is zero). Errors on a non-finite gradient or lengths that
/// do not match the layout; `params` is untouched then.
pub fn agd_update<T: Real>(
    params: &mut [T],
    grad: &[T],
    layers: &[AgdLayer],
    gain: f64,
) -> Result<AgdStepInfo, SolverError> {
    if params.len() != grad.len() {
        return Err(SolverError::shape("AGD gradient", params.len(), grad.len()));
    }
    if layers.is_empty() {
        return Err(SolverError::EmptyData("AGD: no layers".into()));
    }
    let n = params.len();
    for l in layers {
        let wend = l.weight + l.rows * l.cols;
        let bend = l.bias.map_or(0, |b| b + l.rows);
        if wend > n || bend > n {
            return Err(SolverError::shape(
                "AGD layer layout end",
                n,
                wend.max(bend),
            ));
        }
    }
    if let Some(i) = grad.iter().position(|g| !g.finite()) {
        return Err(SolverError::NonFinite(format!("AGD gradient entry {i}")));
    }
    let norm = |l: &AgdLayer| {
        let sq = |s: &[T]| s.iter().map(|v| v.to_f64() * v.to_f64()).sum::<f64>();
        let mut s = sq(&grad[l.weight..l.weight + l.rows * l.cols]);
        if let Some(b) = l.bias {
            s += sq(&grad[b..b + l.rows]);
        }
        s.sqrt()
    };
    let nl = layers.len() as f64;
    let g = layers
        .iter()
        .map(|l| (l.rows as f64 / l.cols as f64).sqrt() * norm(l))
        .sum::<f64>()
        / nl;
    let eta = ((1.0 + (1.0 + 4.0 * g).sqrt()) / 2.0).ln();
    for l in layers {
        let nrm = norm(l);
        if nrm == 0.0 {
            continue;
        }
        let scale = T::of(gain * eta / nl * (l.rows as f64 / l.cols as f64).sqrt() / nrm);
        let w = l.weight..l.weight + l.rows * l.cols;
        for (p, gr) in params[w.clone()].iter_mut().zip(&grad[w]) {
            *p -= scale * *gr;
        }
        if let Some(b) = l.bias {
            for (p, gr) in params[b..b + l.rows].iter_mut().zip(&grad[b..b + l.rows]) {
                *p -= scale * *gr;
            }
        }
    }
    Ok(AgdStepInfo { g, eta })
}
