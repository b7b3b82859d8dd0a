//! On the suite's piano spectrogram (129 x 124, rank 4, the runner's initial factors of
//! seed 0), the default (relaxed, `theta = 0.95`) ME rule ends below MM after 200
//! iterations for beta in {1, 1.5, 2, 3}, and never increases the objective.

use bench_suite::data::{PianoSpec, piano_spectrogram};
use bench_suite::runner::initial_factors;
use majorize::nmf::{self, NmfConfig, Rule};
use nalgebra::DMatrix;

#[test]
fn relaxed_me_ends_below_mm_on_the_piano_spectrogram() {
    let v: DMatrix<f64> = piano_spectrogram(&PianoSpec::default()).unwrap();
    let (w0, h0) = initial_factors(&v, 4, 0).unwrap();
    for beta in [1.0, 1.5, 2.0, 3.0] {
        let run = |cfg: NmfConfig| {
            let (mut w, mut h) = (w0.clone(), h0.clone());
            nmf::factorize(&v, &mut w, &mut h, &cfg, 200).unwrap()
        };
        let mm = run(NmfConfig::new(beta));
        let me = run(NmfConfig::new(beta).with_rule(Rule::Me));
        for i in 1..me.len() {
            assert!(
                me[i] <= me[i - 1] * (1.0 + 1e-10),
                "beta {beta} it {i}: {} -> {}",
                me[i - 1],
                me[i]
            );
        }
        eprintln!(
            "beta {beta}: MM {:.6e} ME {:.6e} ratio {:.3}",
            mm[200],
            me[200],
            me[200] / mm[200]
        );
        assert!(
            me[200] < mm[200],
            "beta {beta}: ME {} vs MM {}",
            me[200],
            mm[200]
        );
    }
}
