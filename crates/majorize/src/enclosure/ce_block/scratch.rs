//! The block scratch of [`super::ce_block`]: structure-of-arrays buffers kept per
//! thread (moved from `ce_block.rs`, unchanged but for the fields' visibility).

/// Block scratch, structure of arrays: entry `(j, n)` (logit `j` of sample `n`) at
/// `j N + n`, so that every pass below runs over the samples of a block in the inner loop
/// and vectorises. Reused across calls (only grown, never zero-filled).
#[derive(Clone, Debug, Default)]
pub(crate) struct Block {
    // Inputs, transposed.
    pub(super) c0: Vec<f64>,
    pub(super) c1: Vec<f64>,
    pub(super) qm: Vec<f64>,
    pub(super) qr: Vec<f64>,
    pub(super) e: Vec<f64>,
    pub(super) y: Vec<f64>,
    // Per entry.
    pub(super) dlo: Vec<f64>,
    pub(super) dhi: Vec<f64>,
    pub(super) eh: Vec<f64>,
    pub(super) elo: Vec<f64>,
    pub(super) gh: Vec<f64>,
    pub(super) pb: Vec<f64>,
    /// `K + 1` rows: suffix sums of `elo`.
    pub(super) suf: Vec<f64>,
    // Per sample.
    /// The guard passed (the sample's terms are in the accumulator).
    pub(crate) ok: Vec<bool>,
    pub(super) tiny: Vec<bool>,
    pub(super) mx: Vec<f64>,
    /// Index of the maximal logit (as `f64`, so that the passes stay in `f64` lanes).
    pub(super) ci: Vec<f64>,
    pub(super) s: Vec<f64>,
    pub(super) sig: Vec<f64>,
    /// `Σ |y_j|` (the caller's driver term uses it).
    pub(crate) ya: Vec<f64>,
    pub(super) yz: Vec<f64>,
    pub(super) yza: Vec<f64>,
    pub(super) inv: Vec<f64>,
    /// Degree 0: the value and its a-priori error term.
    pub(super) v: Vec<f64>,
    pub(super) e0: Vec<f64>,
    pub(super) g1: Vec<f64>,
    pub(super) w1: Vec<f64>,
    pub(super) gq: Vec<f64>,
    pub(super) wq: Vec<f64>,
    pub(super) rq: Vec<f64>,
    pub(super) re: Vec<f64>,
    pub(super) pre: Vec<f64>,
    pub(super) u2: Vec<f64>,
    pub(super) u0: Vec<f64>,
    /// Upper bound of `max_j |z_j|` over the box (the caller's driver term).
    pub(crate) zm: Vec<f64>,
    pub(super) c1c: Vec<f64>,
    pub(super) qmc: Vec<f64>,
    pub(super) qrc: Vec<f64>,
    pub(super) ec: Vec<f64>,
    // One sample's columns (the rare pairwise fallback).
    pub(super) col: [Vec<f64>; 3],
}

fn grow<T: Copy + Default>(v: &mut Vec<T>, len: usize) {
    if v.len() < len {
        v.resize(len, T::default());
    }
}

impl Block {
    pub(super) fn reserve(&mut self, k: usize, n: usize) {
        let kn = k * n;
        for v in [
            &mut self.c0,
            &mut self.c1,
            &mut self.qm,
            &mut self.qr,
            &mut self.e,
            &mut self.y,
            &mut self.dlo,
            &mut self.dhi,
            &mut self.eh,
            &mut self.elo,
            &mut self.gh,
            &mut self.pb,
        ] {
            grow(v, kn);
        }
        grow(&mut self.suf, kn + n);
        for v in [
            &mut self.mx,
            &mut self.ci,
            &mut self.s,
            &mut self.sig,
            &mut self.ya,
            &mut self.yz,
            &mut self.yza,
            &mut self.inv,
            &mut self.v,
            &mut self.e0,
            &mut self.g1,
            &mut self.w1,
            &mut self.gq,
            &mut self.wq,
            &mut self.rq,
            &mut self.re,
            &mut self.pre,
            &mut self.u2,
            &mut self.u0,
            &mut self.zm,
            &mut self.c1c,
            &mut self.qmc,
            &mut self.qrc,
            &mut self.ec,
        ] {
            grow(v, n);
        }
        grow(&mut self.ok, n);
        grow(&mut self.tiny, n);
        for v in &mut self.col {
            grow(v, k);
        }
    }
}

thread_local! {
    static BLOCK: std::cell::RefCell<Block> = std::cell::RefCell::new(Block::default());
}

/// Runs `f` with this thread's block scratch (kept between calls: no allocation at
/// steady state).
pub(crate) fn with_block<R>(f: impl FnOnce(&mut Block) -> R) -> R {
    BLOCK.with(|b| f(&mut b.borrow_mut()))
}
