//! Mini-batching: seeded shuffling with a reused index buffer, or the full batch.

use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::SolverError;

/// How a stochastic method draws its samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Batching {
    /// Every gradient is a full-batch gradient (deterministic).
    Full,
    /// Mini-batches of `size` columns; a step is one epoch: a permutation (shuffled from
    /// the run's RNG when `shuffle`) cut into consecutive batches, the last one smaller
    /// if `size` does not divide N (kept, so passes are counted exactly).
    MiniBatch {
        /// Batch size (>= 1).
        size: usize,
        /// Reshuffle at the start of every epoch.
        shuffle: bool,
    },
}

impl Batching {
    /// Shuffled mini-batches of the given size.
    pub fn mini(size: usize) -> Self {
        Batching::MiniBatch {
            size,
            shuffle: true,
        }
    }

    /// Checks the batch size.
    pub fn validate(&self, solver: &'static str) -> Result<(), SolverError> {
        match *self {
            Batching::MiniBatch { size: 0, .. } => {
                Err(SolverError::config(solver, "batch size", 0, "must be >= 1"))
            }
            _ => Ok(()),
        }
    }
}

/// Cuts `0..N` into (optionally shuffled) mini-batches, reusing one index buffer.
/// Serialisable, so that a run checkpointed in the middle of an epoch resumes with the
/// same permutation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchSampler {
    indices: Vec<usize>,
    size: usize,
}

impl BatchSampler {
    /// A sampler over `n` samples with batches of `size` (clamped to `1..=n`).
    pub fn new(n: usize, size: usize) -> Self {
        BatchSampler {
            indices: (0..n).collect(),
            size: size.clamp(1, n.max(1)),
        }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Batch size.
    pub fn batch_size(&self) -> usize {
        self.size
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Batches per epoch: ceil(N / size). A size of 0 (from `Default` or a hand-edited
    /// checkpoint) is read as 1.
    pub fn batches_per_epoch(&self) -> usize {
        self.indices.len().div_ceil(self.size.max(1))
    }

    /// Starts an epoch: resets the order to `0..N` and shuffles it if asked (Fisher-Yates
    /// from `rng`; the reset makes the order depend only on the RNG state).
    pub fn start_epoch<R: Rng + ?Sized>(&mut self, shuffle: bool, rng: &mut R) {
        for (i, x) in self.indices.iter_mut().enumerate() {
            *x = i;
        }
        if shuffle {
            self.indices.shuffle(rng);
        }
    }

    /// Checks a restored sampler for `n` samples in batches of `size`, positioned at
    /// batch `next`: its indices must be a permutation of `0..n` and `next` at most the
    /// number of batches per epoch (a checkpoint is user data).
    pub fn check(&self, n: usize, size: usize, next: usize) -> Result<(), SolverError> {
        let bad = |m: String| Err(SolverError::Checkpoint(format!("batch sampler: {m}")));
        if self.indices.len() != n {
            return bad(format!("{} indices for {n} samples", self.indices.len()));
        }
        if self.size != size.clamp(1, n.max(1)) {
            return bad(format!("batch size {} instead of {size}", self.size));
        }
        let mut seen = vec![false; n];
        for &i in &self.indices {
            if i >= n || std::mem::replace(&mut seen[i], true) {
                return bad(format!("index {i} repeated or out of 0..{n}"));
            }
        }
        if next > self.batches_per_epoch() {
            return bad(format!(
                "position {next} beyond the {} batches of an epoch",
                self.batches_per_epoch()
            ));
        }
        Ok(())
    }

    /// The `b`-th batch of the current epoch (empty past the end).
    pub fn batch(&self, b: usize) -> &[usize] {
        let (n, size) = (self.indices.len(), self.size.max(1));
        let lo = b.saturating_mul(size).min(n);
        let hi = lo.saturating_add(size).min(n);
        &self.indices[lo..hi]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn degenerate_samplers_do_not_panic() {
        // `Default` (and a checkpoint file deserialised with `size: 0`) gives size 0.
        let s = BatchSampler::default();
        assert_eq!(s.batches_per_epoch(), 0);
        assert!(s.batch(0).is_empty());
        let s: BatchSampler = serde_json::from_str(r#"{"indices":[0,1,2],"size":0}"#).unwrap();
        assert_eq!(s.batches_per_epoch(), 3);
        assert_eq!(s.batch(1), &[1]);
        // A batch index far past the end is empty, not an overflow.
        let s = BatchSampler::new(5, 2);
        assert!(s.batch(usize::MAX).is_empty());
    }

    #[test]
    fn batches_cover_every_sample_once() {
        let mut s = BatchSampler::new(7, 3);
        s.start_epoch(true, &mut rand::rngs::StdRng::seed_from_u64(3));
        assert_eq!(s.batches_per_epoch(), 3);
        let sizes: Vec<usize> = (0..4).map(|b| s.batch(b).len()).collect();
        assert_eq!(sizes, [3, 3, 1, 0]);
        let mut all: Vec<usize> = (0..3).flat_map(|b| s.batch(b).to_vec()).collect();
        all.sort_unstable();
        assert_eq!(all, (0..7).collect::<Vec<_>>());
    }
}
