//! The operations that preserve majorization (module doc of [`crate::rules`]): [`Sum`],
//! [`Scaled`], [`AffineComposition`] and [`BlockSeparable`], each an objective and a
//! surrogate builder at once (Hunter & Lange 2004, section 3).

use super::*;

/// `f_1 + f_2`, majorized by `g_1 + g_2` (minimiser by the generic inner solve).
#[derive(Clone, Debug)]
pub struct Sum<A, B>(pub A, pub B);

/// The surrogate of a [`Sum`].
#[derive(Clone, Debug)]
pub struct SumSurrogate<A, B>(pub A, pub B);

impl<T: Real, A: Objective<T>, B: Objective<T>> Objective<T> for Sum<A, B> {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn value(&self, x: &DVector<T>) -> Result<T> {
        Ok(self.0.value(x)? + self.1.value(x)?)
    }
    fn gradient(&self, x: &DVector<T>, grad: &mut DVector<T>) -> Result<()> {
        let mut g2 = DVector::zeros(grad.len());
        self.0.gradient(x, grad)?;
        self.1.gradient(x, &mut g2)?;
        *grad += g2;
        Ok(())
    }
}

impl<T: Real, A: Surrogate<T>, B: Surrogate<T>> Surrogate<T> for SumSurrogate<A, B> {
    fn anchor(&self) -> &DVector<T> {
        self.0.anchor()
    }
    fn value(&self, x: &DVector<T>) -> Result<T> {
        Ok(self.0.value(x)? + self.1.value(x)?)
    }
    fn gradient(&self, x: &DVector<T>, grad: &mut DVector<T>) -> Result<()> {
        let mut g2 = DVector::zeros(grad.len());
        self.0.gradient(x, grad)?;
        self.1.gradient(x, &mut g2)?;
        *grad += g2;
        Ok(())
    }
    fn admissible(&self, x: &DVector<T>) -> bool {
        self.0.admissible(x) && self.1.admissible(x)
    }
}

impl<T: Real, A: SurrogateBuilder<T>, B: SurrogateBuilder<T>> SurrogateBuilder<T> for Sum<A, B> {
    type Surrogate = SumSurrogate<A::Surrogate, B::Surrogate>;
    fn build(&self, anchor: &DVector<T>) -> Result<Self::Surrogate> {
        Ok(SumSurrogate(self.0.build(anchor)?, self.1.build(anchor)?))
    }
}

/// `c f` with `c > 0`, majorized by `c g` (same minimiser as `g`).
#[derive(Clone, Debug)]
pub struct Scaled<A, T: Real> {
    /// The scaled part.
    pub inner: A,
    /// The factor `c > 0`.
    pub c: T,
}

impl<A, T: Real> Scaled<A, T> {
    /// Errors unless `c > 0` and finite (a negative factor turns a majorizer into a
    /// minorizer).
    pub fn new(inner: A, c: T) -> Result<Self> {
        if !(c > T::zero() && c.finite()) {
            return Err(MajorizeError::InvalidParameter {
                name: "Scaled::c",
                value: c.to_f64(),
                reason: "must be positive and finite",
            });
        }
        Ok(Self { inner, c })
    }
}

impl<T: Real, A: Objective<T>> Objective<T> for Scaled<A, T> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn value(&self, x: &DVector<T>) -> Result<T> {
        Ok(self.c * self.inner.value(x)?)
    }
    fn gradient(&self, x: &DVector<T>, grad: &mut DVector<T>) -> Result<()> {
        self.inner.gradient(x, grad)?;
        *grad *= self.c;
        Ok(())
    }
}

impl<T: Real, A: Surrogate<T>> Surrogate<T> for Scaled<A, T> {
    fn anchor(&self) -> &DVector<T> {
        self.inner.anchor()
    }
    fn value(&self, x: &DVector<T>) -> Result<T> {
        Ok(self.c * self.inner.value(x)?)
    }
    fn gradient(&self, x: &DVector<T>, grad: &mut DVector<T>) -> Result<()> {
        self.inner.gradient(x, grad)?;
        *grad *= self.c;
        Ok(())
    }
    fn admissible(&self, x: &DVector<T>) -> bool {
        self.inner.admissible(x)
    }
    fn minimize(&self, inner: &InnerSolve) -> Result<Minimizer<T>> {
        self.inner.minimize(inner)
    }
}

impl<T: Real, A: SurrogateBuilder<T>> SurrogateBuilder<T> for Scaled<A, T> {
    type Surrogate = Scaled<A::Surrogate, T>;
    fn build(&self, anchor: &DVector<T>) -> Result<Self::Surrogate> {
        Ok(Scaled {
            inner: self.inner.build(anchor)?,
            c: self.c,
        })
    }
}

/// `x -> f(M x + c)` (`M` is `m x n`, `f` on `R^m`), majorized by `g(M x + c | M y + c)`;
/// gradient `M^T grad g`. Minimiser by the generic inner solve.
#[derive(Clone, Debug)]
pub struct AffineComposition<A, T: Real> {
    inner: A,
    m: DMatrix<T>,
    c: DVector<T>,
}

impl<A, T: Real> AffineComposition<A, T> {
    /// Errors if `c` does not have `M.nrows()` entries.
    pub fn new(inner: A, m: DMatrix<T>, c: DVector<T>) -> Result<Self> {
        if c.len() != m.nrows() {
            return Err(shape_err(
                "AffineComposition::new",
                format!("M is {}x{}, c has length {}", m.nrows(), m.ncols(), c.len()),
            ));
        }
        Ok(Self { inner, m, c })
    }
    fn map(&self, x: &DVector<T>) -> Result<DVector<T>> {
        check_len("AffineComposition", x, self.m.ncols())?;
        Ok(&self.m * x + &self.c)
    }
}

/// The surrogate of an [`AffineComposition`].
#[derive(Clone, Debug)]
pub struct AffineSurrogate<S, T: Real> {
    inner: S,
    m: DMatrix<T>,
    c: DVector<T>,
    anchor: DVector<T>,
}

impl<T: Real, A: Objective<T>> Objective<T> for AffineComposition<A, T> {
    fn dim(&self) -> usize {
        self.m.ncols()
    }
    fn value(&self, x: &DVector<T>) -> Result<T> {
        self.inner.value(&self.map(x)?)
    }
    fn gradient(&self, x: &DVector<T>, grad: &mut DVector<T>) -> Result<()> {
        let z = self.map(x)?;
        check_len("AffineComposition::gradient", grad, self.m.ncols())?;
        let mut gz = DVector::zeros(z.len());
        self.inner.gradient(&z, &mut gz)?;
        grad.gemv_tr(T::one(), &self.m, &gz, T::zero());
        Ok(())
    }
}

impl<T: Real, S: Surrogate<T>> Surrogate<T> for AffineSurrogate<S, T> {
    fn anchor(&self) -> &DVector<T> {
        &self.anchor
    }
    fn value(&self, x: &DVector<T>) -> Result<T> {
        check_len("AffineSurrogate::value", x, self.m.ncols())?;
        self.inner.value(&(&self.m * x + &self.c))
    }
    fn gradient(&self, x: &DVector<T>, grad: &mut DVector<T>) -> Result<()> {
        check_len("AffineSurrogate::gradient", x, self.m.ncols())?;
        check_len("AffineSurrogate::gradient", grad, self.m.ncols())?;
        let z = &self.m * x + &self.c;
        let mut gz = DVector::zeros(z.len());
        self.inner.gradient(&z, &mut gz)?;
        grad.gemv_tr(T::one(), &self.m, &gz, T::zero());
        Ok(())
    }
    fn admissible(&self, x: &DVector<T>) -> bool {
        x.len() == self.m.ncols() && self.inner.admissible(&(&self.m * x + &self.c))
    }
}

impl<T: Real, A: SurrogateBuilder<T>> SurrogateBuilder<T> for AffineComposition<A, T> {
    type Surrogate = AffineSurrogate<A::Surrogate, T>;
    fn build(&self, anchor: &DVector<T>) -> Result<Self::Surrogate> {
        let z = self.map(anchor)?;
        Ok(AffineSurrogate {
            inner: self.inner.build(&z)?,
            m: self.m.clone(),
            c: self.c.clone(),
            anchor: anchor.clone(),
        })
    }
}

/// An objective that can also build a boxed surrogate (object-safe; implemented for
/// every `Objective + SurrogateBuilder` with a `'static` surrogate).
pub trait DynPart<T: Real>: Objective<T> {
    /// [`SurrogateBuilder::build`], boxed.
    fn build_boxed(&self, anchor: &DVector<T>) -> Result<Box<dyn Surrogate<T>>>;
}

impl<T: Real, P> DynPart<T> for P
where
    P: Objective<T> + SurrogateBuilder<T>,
    P::Surrogate: 'static,
{
    fn build_boxed(&self, anchor: &DVector<T>) -> Result<Box<dyn Surrogate<T>>> {
        Ok(Box::new(self.build(anchor)?))
    }
}

/// `f(x) = sum_i f_i(x_i)` over consecutive blocks `x = (x_1, ..., x_m)`, majorized
/// block by block; the minimiser is the concatenation of the blocks' minimisers
/// (closed form when all blocks have one).
pub struct BlockSeparable<T: Real> {
    blocks: Vec<Box<dyn DynPart<T>>>,
}

impl<T: Real> BlockSeparable<T> {
    /// The blocks in order (their `dim()` give the split).
    pub fn new(blocks: Vec<Box<dyn DynPart<T>>>) -> Self {
        Self { blocks }
    }
    fn split(&self, x: &DVector<T>) -> Result<Vec<DVector<T>>> {
        check_len("BlockSeparable", x, Objective::dim(self))?;
        let mut out = Vec::with_capacity(self.blocks.len());
        let mut start = 0;
        for b in &self.blocks {
            let d = b.dim();
            out.push(x.rows(start, d).into_owned());
            start += d;
        }
        Ok(out)
    }
}

/// The surrogate of a [`BlockSeparable`].
pub struct BlockSurrogate<T: Real> {
    parts: Vec<Box<dyn Surrogate<T>>>,
    dims: Vec<usize>,
    anchor: DVector<T>,
}

impl<T: Real> BlockSurrogate<T> {
    fn for_each<R>(
        &self,
        x: &DVector<T>,
        mut f: impl FnMut(usize, &dyn Surrogate<T>, DVector<T>, usize) -> Result<R>,
    ) -> Result<Vec<R>> {
        check_len("BlockSurrogate", x, self.anchor.len())?;
        let mut start = 0;
        let mut out = Vec::with_capacity(self.parts.len());
        for (i, p) in self.parts.iter().enumerate() {
            let d = self.dims[i];
            out.push(f(i, p.as_ref(), x.rows(start, d).into_owned(), start)?);
            start += d;
        }
        Ok(out)
    }
}

impl<T: Real> Objective<T> for BlockSeparable<T> {
    /// The sum of the blocks' dimensions (saturating: a sum past `usize::MAX` can match no
    /// vector, so every call with it fails its length check instead of overflowing).
    fn dim(&self) -> usize {
        self.blocks
            .iter()
            .fold(0usize, |a, b| a.saturating_add(b.dim()))
    }
    fn value(&self, x: &DVector<T>) -> Result<T> {
        let parts = self.split(x)?;
        let mut s = T::zero();
        for (b, xi) in self.blocks.iter().zip(&parts) {
            s += b.value(xi)?;
        }
        Ok(s)
    }
    fn gradient(&self, x: &DVector<T>, grad: &mut DVector<T>) -> Result<()> {
        let parts = self.split(x)?;
        check_len("BlockSeparable::gradient", grad, x.len())?;
        let mut start = 0;
        for (b, xi) in self.blocks.iter().zip(&parts) {
            let mut g = DVector::zeros(xi.len());
            b.gradient(xi, &mut g)?;
            grad.rows_mut(start, xi.len()).copy_from(&g);
            start += xi.len();
        }
        Ok(())
    }
}

impl<T: Real> Surrogate<T> for BlockSurrogate<T> {
    fn anchor(&self) -> &DVector<T> {
        &self.anchor
    }
    fn value(&self, x: &DVector<T>) -> Result<T> {
        let v = self.for_each(x, |_, p, xi, _| p.value(&xi))?;
        Ok(v.into_iter().fold(T::zero(), |a, b| a + b))
    }
    fn gradient(&self, x: &DVector<T>, grad: &mut DVector<T>) -> Result<()> {
        check_len("BlockSurrogate::gradient", grad, self.anchor.len())?;
        let gs = self.for_each(x, |_, p, xi, start| {
            let mut g = DVector::zeros(xi.len());
            p.gradient(&xi, &mut g)?;
            Ok((start, g))
        })?;
        for (start, g) in gs {
            grad.rows_mut(start, g.len()).copy_from(&g);
        }
        Ok(())
    }
    fn admissible(&self, x: &DVector<T>) -> bool {
        self.for_each(x, |_, p, xi, _| Ok(p.admissible(&xi)))
            .map(|v| v.into_iter().all(|b| b))
            .unwrap_or(false)
    }
    fn minimize(&self, inner: &InnerSolve) -> Result<Minimizer<T>> {
        let mut point = self.anchor.clone();
        let mut kind = MinimizerKind::ClosedForm;
        let mut start = 0;
        for (p, d) in self.parts.iter().zip(&self.dims) {
            let m = p.minimize(inner)?;
            // A block's surrogate may be user code: a wrong-length minimiser is an error.
            check_len(
                "BlockSurrogate::minimize (a block's minimiser)",
                &m.point,
                *d,
            )?;
            point.rows_mut(start, *d).copy_from(&m.point);
            if let MinimizerKind::Inner {
                iterations,
                residual,
                converged,
            } = m.kind
            {
                kind = match kind {
                    MinimizerKind::ClosedForm => m.kind,
                    MinimizerKind::Inner {
                        iterations: i0,
                        residual: r0,
                        converged: c0,
                    } => MinimizerKind::Inner {
                        iterations: i0.max(iterations),
                        residual: r0.max(residual),
                        converged: c0 && converged,
                    },
                };
            }
            start += d;
        }
        Ok(Minimizer { point, kind })
    }
}

impl<T: Real> SurrogateBuilder<T> for BlockSeparable<T> {
    type Surrogate = BlockSurrogate<T>;
    fn build(&self, anchor: &DVector<T>) -> Result<BlockSurrogate<T>> {
        let parts = self.split(anchor)?;
        let mut out = Vec::with_capacity(parts.len());
        for (b, yi) in self.blocks.iter().zip(&parts) {
            out.push(b.build_boxed(yi)?);
        }
        Ok(BlockSurrogate {
            parts: out,
            dims: self.blocks.iter().map(|b| b.dim()).collect(),
            anchor: anchor.clone(),
        })
    }
}
