use std::sync::Arc;
use std::time::Duration;

use super::*;

#[test]
fn shards_cover_every_sample_once_in_order() {
    for n in [0usize, 1, 5, 7, 100, 1438] {
        for p in 1..=5usize {
            let mut next = 0;
            for r in 0..p {
                let s = shard_range(n, r, p);
                assert_eq!(s.start, next, "n {n} p {p} r {r}");
                assert!(s.len() <= n.div_ceil(p) && s.len() + 1 >= n / p);
                next = s.end;
            }
            assert_eq!(next, n);
        }
    }
}

#[test]
fn thread_ranks_sum_in_rank_order_and_agree_bit_for_bit() {
    let comms = ThreadComm::group(3);
    let results: Vec<Vec<f64>> = std::thread::scope(|s| {
        let handles: Vec<_> = comms
            .iter()
            .map(|c| {
                s.spawn(move || {
                    let r = c.rank() as f64;
                    let mut buf = vec![r + 0.1, 1e16 * (r - 1.0), 1.0];
                    let mut scratch = Vec::new();
                    allreduce_sum(c, &mut buf, &mut scratch).unwrap();
                    let mut b = [0.0; 2];
                    if c.rank() == 2 {
                        b = [7.0, 8.0];
                    }
                    c.broadcast_f64(&mut b, 2).unwrap();
                    c.barrier().unwrap();
                    buf.extend_from_slice(&b);
                    buf.push(any_rank(c, c.rank() == 1).unwrap() as u8 as f64);
                    buf
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // ((0.1 + 1.1) + 2.1), (-1e16 + 0) + 1e16 = 0 in rank order, 3 ones.
    let expect = vec![(0.1 + 1.1) + 2.1, 0.0, 3.0, 7.0, 8.0, 1.0];
    for r in &results {
        assert_eq!(r, &expect);
    }
    // Values gathered: 3 (allreduce) + 2 (broadcast) + 1 (any_rank); the barrier sends
    // none; each goes to the 2 other ranks, 8 bytes each.
    let values = 3 + 2 + 1;
    assert_eq!(comms[0].bytes_sent(), 8 * values * 2);
}

#[test]
fn a_missing_rank_times_out_with_an_error() {
    let comms = ThreadComm::group_with_timeout(2, Duration::from_millis(200));
    let mut buf = [1.0];
    let err = allreduce_sum_f64(&comms[0], &mut buf).unwrap_err();
    assert!(err.to_string().contains("waited"), "{err}");
}

#[test]
fn one_rank_is_the_identity_and_checks_buffers() {
    let c: Arc<dyn Comm> = Arc::new(LocalComm);
    let mut b = [1.5f32, -2.0];
    allreduce_sum(&*c, &mut b, &mut Vec::new()).unwrap();
    assert_eq!(b, [1.5, -2.0]);
    assert!(c.allgather_f64(&[1.0], &mut [0.0, 0.0]).is_err());
    assert!(c.broadcast_f64(&mut [1.0], 1).is_err());
    assert_eq!(ThreadComm::group(0).len(), 1);
}

/// A user's `Comm` that reports a rank outside `0..size` (or no ranks at all).
#[derive(Debug)]
struct BadComm {
    rank: usize,
    size: usize,
}

impl Comm for BadComm {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn allgather_f64(&self, _: &[f64], _: &mut [f64]) -> Result<(), SolverError> {
        Ok(())
    }
    fn broadcast_f64(&self, _: &mut [f64], _: usize) -> Result<(), SolverError> {
        Ok(())
    }
    fn barrier(&self) -> Result<(), SolverError> {
        Ok(())
    }
    fn describe(&self) -> String {
        "bad".into()
    }
}

/// The sharded problems check the communicator's rank and size before cutting the
/// data: a rank `>= size` (or `size = 0`) from a user's `Comm` cut a shard starting
/// beyond the data (a slicing panic for the NMF columns, an empty shard for the net).
#[test]
fn sharded_problems_refuse_a_rank_outside_the_group() {
    use crate::distributed::{ShardedNetProblem, ShardedNmfProblem};
    use nalgebra::DMatrix;
    use nets::{Activation, Dataset, Init, Loss, LossKind, Reduction, Sequential, Targets};
    use rand::SeedableRng;
    let v = DMatrix::from_fn(3, 6, |i, j| 1.0 + (i + j) as f64);
    let (w, h) = (
        DMatrix::from_element(3, 2, 1.0),
        DMatrix::from_element(2, 6, 1.0),
    );
    let cfg = crate::nmf::BetaNmfConfig::default();
    let problem = || {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let net = Sequential::<f64>::mlp(&[2, 3, 1], Activation::Relu, Init::HeUniform, &mut rng)
            .unwrap();
        let data = Dataset::new(
            DMatrix::from_fn(2, 6, |i, j| (i * j) as f64),
            Targets::Dense(DMatrix::zeros(1, 6)),
        )
        .unwrap();
        crate::NetProblem::new(net, Loss::new(LossKind::Mse, Reduction::Mean), data, None).unwrap()
    };
    for (rank, size) in [(7, 2), (2, 2), (0, 0)] {
        let comm = || Arc::new(BadComm { rank, size }) as Arc<dyn Comm>;
        let want = format!("communicator reports rank {rank} of {size} ranks");
        let e = ShardedNmfProblem::new(v.clone(), w.clone(), h.clone(), &cfg, comm())
            .err()
            .unwrap();
        assert!(e.to_string().contains(&want), "{e}");
        let e = ShardedNetProblem::new(problem(), comm()).err().unwrap();
        assert!(e.to_string().contains(&want), "{e}");
    }
}
