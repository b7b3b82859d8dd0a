//! Synthetic generators, NMF data, the spectrogram and the registry.

use bench_suite::BenchError;
use bench_suite::data::{
    NmfNoise, PianoSpec, TeacherMlp, blob_centers, blobs, piano_spectrogram, spirals, stft_power,
    synthetic_nmf, teacher_student,
};
use bench_suite::problems::{
    BuildOptions, Dtype, ProblemData, ProblemKind, SolverFamily, find_problem, quick_suite,
    registry,
};
use nalgebra::DMatrix;
use nets::Targets;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

#[test]
fn teacher_student_targets_are_the_teacher_outputs() {
    let mut r = rng(1);
    let teacher = TeacherMlp::random(&[3, 5, 2], &mut r).unwrap();
    let d = teacher_student::<f64, _, _>(3, 40, 0.0, |x| teacher.forward(x), &mut r).unwrap();
    assert_eq!(d.inputs().shape(), (3, 40));
    let Targets::Dense(y) = d.targets() else {
        panic!("dense targets expected")
    };
    // Recompute by hand for sample 7: W2 tanh(W1 x + b1) + b2.
    let x = d.inputs().column(7).into_owned();
    let h = (&teacher.weights[0] * &x + &teacher.biases[0]).map(f64::tanh);
    let out = &teacher.weights[1] * h + &teacher.biases[1];
    assert!((out - y.column(7)).norm() < 1e-12);
    // Noise changes targets by about noise_std.
    let mut r2 = rng(1);
    let t2 = TeacherMlp::random(&[3, 5, 2], &mut r2).unwrap();
    let noisy = teacher_student::<f64, _, _>(3, 40, 0.5, |x| t2.forward(x), &mut r2).unwrap();
    assert_eq!(noisy.inputs(), d.inputs());
    let Targets::Dense(yn) = noisy.targets() else {
        panic!()
    };
    let rms = ((yn - y).norm_squared() / 80.0).sqrt();
    assert!((0.3..0.7).contains(&rms), "noise rms {rms}");
    // A teacher that returns the wrong number of columns is an error, not a panic.
    let err = teacher_student::<f64, _, _>(3, 4, 0.0, |_| Ok(DMatrix::zeros(1, 3)), &mut r);
    assert!(matches!(err, Err(BenchError::InvalidArgument { .. })));
}

#[test]
fn spirals_and_blobs_are_seeded_and_shaped() {
    let a = spirals::<f64, _>(90, 3, 1.0, 0.1, &mut rng(5)).unwrap();
    let b = spirals::<f64, _>(90, 3, 1.0, 0.1, &mut rng(5)).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.inputs().shape(), (2, 90));
    // Radii are t in (0, 1).
    for c in a.inputs().column_iter() {
        assert!(c.norm() < 1.0);
    }
    let Targets::Labels { labels, classes } = a.targets() else {
        panic!()
    };
    assert_eq!(*classes, 3);
    assert_eq!(labels.iter().filter(|&&l| l == 2).count(), 30);
    let centers = blob_centers(4, 3, 3.0, &mut rng(2)).unwrap();
    assert!(centers.iter().all(|v| v.abs() <= 3.0));
    let d = blobs::<f32, _>(&centers, 3000, 0.5, &mut rng(3)).unwrap();
    // The mean of class 1 is near centre 1 (std of mean = 0.5/sqrt(1000) ~ 0.016).
    let x = d.inputs();
    for r in 0..4 {
        let m: f64 = (0..3000)
            .filter(|i| i % 3 == 1)
            .map(|i| f64::from(x[(r, i)]))
            .sum::<f64>()
            / 1000.0;
        assert!(
            (m - centers[(r, 1)]).abs() < 0.08,
            "{m} vs {}",
            centers[(r, 1)]
        );
    }
}

#[test]
fn synthetic_nmf_noise_models() {
    let clean = synthetic_nmf::<f64, _>(30, 40, 3, NmfNoise::None, 0.0, &mut rng(1)).unwrap();
    assert!((clean.v.mean() - 1.0).abs() < 1e-12);
    assert!((&clean.w_true * &clean.h_true - &clean.v).norm() < 1e-9);
    let p = synthetic_nmf::<f64, _>(
        50,
        80,
        4,
        NmfNoise::Poisson { mean: 20.0 },
        0.0,
        &mut rng(1),
    )
    .unwrap();
    assert!(p.v.iter().all(|v| *v >= 0.0 && v.fract() == 0.0));
    assert!((p.v.mean() - 20.0).abs() < 0.5, "mean {}", p.v.mean());
    let g = synthetic_nmf::<f64, _>(
        50,
        80,
        4,
        NmfNoise::Gamma { shape: 2.0 },
        1e-12,
        &mut rng(1),
    )
    .unwrap();
    assert!(g.v.min() > 0.0);
    // Ratio V / V* has mean 1 and variance 1/shape = 0.5.
    let clean = &g.w_true * &g.h_true;
    let ratios: Vec<f64> = g.v.iter().zip(clean.iter()).map(|(v, c)| v / c).collect();
    let m = ratios.iter().sum::<f64>() / ratios.len() as f64;
    let var = ratios.iter().map(|r| (r - m).powi(2)).sum::<f64>() / ratios.len() as f64;
    assert!(
        (m - 1.0).abs() < 0.05 && (var - 0.5).abs() < 0.08,
        "{m} {var}"
    );
    let again = synthetic_nmf::<f64, _>(
        50,
        80,
        4,
        NmfNoise::Gamma { shape: 2.0 },
        1e-12,
        &mut rng(1),
    )
    .unwrap();
    assert_eq!(g, again);
    assert!(synthetic_nmf::<f64, _>(0, 3, 1, NmfNoise::None, 0.0, &mut rng(1)).is_err());
}

#[test]
fn stft_of_a_pure_tone_peaks_at_its_bin() {
    // 1000 Hz at 8 kHz with frame 256: bin 1000 / (8000 / 256) = 32 exactly.
    let x: Vec<f64> = (0..2048)
        .map(|i| (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 8000.0).sin())
        .collect();
    let p = stft_power(&x, 256, 128).unwrap();
    assert_eq!(p.shape(), (129, 15));
    for n in 0..p.ncols() {
        let col = p.column(n);
        assert_eq!(col.imax(), 32);
        // Periodic Hann: amplitude 1 sine gives |X|^2 = (N/4)^2 at the bin, and the
        // window's main lobe puts (N/8)^2 on each neighbour, nothing further out.
        assert!((col[32] - 64.0f64.powi(2)).abs() < 1e-6, "{}", col[32]);
        assert!((col[31] - 32.0f64.powi(2)).abs() < 1e-6);
        assert!(col[40] < 1e-12);
    }
}

#[test]
fn piano_spectrogram_has_documented_shape_and_notes() {
    let spec = PianoSpec::default();
    let v = piano_spectrogram::<f64>(&spec).unwrap();
    assert_eq!(v.shape(), (129, 124));
    assert_eq!(spec.shape().unwrap(), (129, 124));
    assert!(v.min() > 0.0);
    // The floor is 1e-9 of the max.
    assert!((v.min() / v.max() - 1e-9).abs() < 1e-10);
    // In frame 5 (t ~ 0.1 s) only C4 sounds: the peak bin is near 261.63 / 31.25 = 8.4.
    assert!((8..=9).contains(&v.column(5).imax()));
    // At frame 64 (t ~ 1.03 s), G4 (392 Hz -> bin 12.5) has just started and dominates.
    assert!(
        (12..=13).contains(&v.column(64).imax()),
        "{}",
        v.column(64).imax()
    );
    let bad = PianoSpec {
        duration_s: 0.01,
        ..PianoSpec::default()
    };
    assert!(piano_spectrogram::<f32>(&bad).is_err());
}

#[test]
fn registry_problems_build_with_their_declared_sizes() {
    let reg = registry();
    let mut names: Vec<&str> = reg.iter().map(|p| p.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), reg.len(), "problem names must be unique");
    let opts = BuildOptions::default();
    for p in &reg {
        let sizes = p.sizes();
        match p.build_dtype(0, Dtype::F32, &opts) {
            // No files (MNIST) or no system package (Fashion-MNIST's Debian package, which
            // CI installs on a best-effort basis): the problem is skipped, never failed.
            Err(BenchError::DataMissing { .. } | BenchError::PackageMissing { .. }) => {
                assert!(p.name.contains("mnist"), "{} should not need files", p.name);
                continue;
            }
            Err(e) => panic!("{}: {e}", p.name),
            Ok(_) => {}
        }
        match (p.build::<f64>(0, &opts).unwrap(), &p.kind) {
            (ProblemData::Supervised { train, test }, ProblemKind::Network { widths, .. }) => {
                assert_eq!(train.input_dim(), widths[0], "{}", p.name);
                assert_eq!(train.len(), sizes.train, "{}", p.name);
                assert_eq!(test.map_or(0, |t| t.len()), sizes.test, "{}", p.name);
                let out = match train.targets() {
                    Targets::Labels { classes, .. } => *classes,
                    Targets::Dense(y) => y.nrows(),
                };
                assert_eq!(out, *widths.last().unwrap(), "{}", p.name);
                assert!(!p.supports(SolverFamily::Nmf));
            }
            (ProblemData::Nmf { v }, ProblemKind::Nmf { rank, beta }) => {
                assert_eq!(v.shape(), (sizes.features, sizes.train), "{}", p.name);
                assert!(v.min() >= 0.0);
                if *beta <= 0.0 {
                    assert!(v.min() > 0.0, "{}: beta <= 0 needs positive data", p.name);
                }
                assert!(*rank > 0 && p.supports(SolverFamily::Nmf));
            }
            _ => panic!("{}: data does not match its kind", p.name),
        }
    }
    assert!(find_problem("digits-mlp").is_ok());
    assert!(matches!(
        find_problem("nope"),
        Err(BenchError::UnknownProblem(_))
    ));
    // The quick suite covers every family.
    let quick = quick_suite();
    for fam in [
        SolverFamily::Gradient,
        SolverFamily::LayerwiseMm,
        SolverFamily::Admm,
        SolverFamily::Lifted,
        SolverFamily::Nmf,
        SolverFamily::CertifiedMm,
    ] {
        assert!(quick.iter().any(|p| p.supports(fam)), "{fam:?}");
    }
}

#[test]
fn user_csv_problem_builds_a_standardised_split() {
    let dir = std::env::temp_dir().join(format!("strata-bench-usercsv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("toy.csv");
    let mut text = String::from("x1,x2,class\n");
    for i in 0..50 {
        text.push_str(&format!("{},{},{}\n", i, (i * 7) % 11, i % 3));
    }
    std::fs::write(&path, text).unwrap();
    let p = bench_suite::problems::ProblemSpec::user_csv(
        "toy",
        &path,
        bench_suite::data::CsvOptions::default(),
        &[8],
        bench_suite::problems::HiddenActivation::Relu,
        0.8,
    )
    .unwrap();
    assert_eq!(
        p.kind,
        ProblemKind::Network {
            widths: vec![2, 8, 3],
            hidden: bench_suite::problems::HiddenActivation::Relu,
            loss: bench_suite::problems::LossSpec::SoftmaxCrossEntropy,
            l2: None,
            init: bench_suite::problems::InitSpec::Default,
        }
    );
    let ProblemData::Supervised { train, test } =
        p.build::<f64>(1, &BuildOptions::default()).unwrap()
    else {
        panic!()
    };
    // Classes of 17, 17, 16 -> 14 + 14 + 13 training rows.
    assert_eq!((train.len(), test.unwrap().len()), (41, 9));
    let mean0 = train.inputs().row(0).sum() / 41.0;
    assert!(mean0.abs() < 1e-12);
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        p.build::<f64>(1, &BuildOptions::default()),
        Err(BenchError::DataMissing { .. })
    ));
}

#[test]
fn registry_build_is_deterministic_per_seed() {
    let p = find_problem("teacher-student").unwrap();
    let opts = BuildOptions::default();
    assert_eq!(
        p.build::<f64>(9, &opts).unwrap(),
        p.build::<f64>(9, &opts).unwrap()
    );
    assert_ne!(
        p.build::<f64>(9, &opts).unwrap(),
        p.build::<f64>(10, &opts).unwrap()
    );
    let mnist = find_problem("mnist-mlp").unwrap();
    let err = mnist.build::<f32>(0, &opts).unwrap_err();
    assert!(matches!(err, BenchError::DataMissing { .. }));
    assert!(err.to_string().contains("STRATA_MNIST_DIR"), "{err}");
}

/// The generators check their sizes against `MAX_DATA_ENTRIES` (and the NMF factors
/// against `MAX_FACTOR_ENTRIES`) before allocating, and refuse non-finite real
/// parameters, with errors naming the argument: before, `synthetic_nmf(10^6, 10^6, ..)`,
/// a piano spectrogram of 10^12 samples or of a hop-1 STFT, `spirals(10^12)` or
/// `blobs` of 10^12 samples aborted the process on a failed allocation, and a NaN
/// onset spacing, spiral noise or blob std gave NaN data.
#[test]
fn generators_refuse_huge_sizes_and_non_finite_parameters() {
    use bench_suite::data::MAX_DATA_ENTRIES;
    fn named(r: Result<impl std::fmt::Debug, BenchError>, name: &str, needle: &str) {
        match r {
            Err(BenchError::InvalidArgument { name: n, message }) => {
                assert_eq!(n, name, "{message}");
                assert!(message.contains(needle), "{message}");
            }
            other => panic!("expected an error naming {name}, got {other:?}"),
        }
    }
    let big = "more than MAX_DATA_ENTRIES = 1000000000";
    assert_eq!(MAX_DATA_ENTRIES, 1_000_000_000);
    let mut r = rng(9);
    named(
        synthetic_nmf::<f64, _>(1 << 20, 1 << 20, 1, NmfNoise::None, 0.0, &mut r),
        "rows/cols",
        big,
    );
    named(
        synthetic_nmf::<f64, _>(10, 10, usize::MAX / 4, NmfNoise::None, 0.0, &mut r),
        "rank",
        "factor entries",
    );
    // Small sizes pass (and the instance is built).
    assert!(synthetic_nmf::<f64, _>(4, 5, 2, NmfNoise::None, 0.0, &mut r).is_ok());
    let spec = |f: &dyn Fn(&mut PianoSpec)| {
        let mut s = PianoSpec::default();
        f(&mut s);
        s
    };
    named(
        piano_spectrogram::<f64>(&spec(&|s| s.duration_s = 1e9)),
        "duration_s",
        big,
    );
    named(
        piano_spectrogram::<f64>(&spec(&|s| {
            s.duration_s = 100.0;
            s.frame = 100_000;
            s.hop = 1;
        })),
        "frame/hop",
        big,
    );
    for v in [f64::NAN, f64::INFINITY, -0.5] {
        named(
            piano_spectrogram::<f64>(&spec(&|s| s.onset_spacing_s = v)),
            "onset_spacing_s",
            "must be finite and >= 0",
        );
    }
    named(
        stft_power(&vec![0.0; 300_000], 200_000, 1),
        "frame/hop",
        big,
    );
    named(spirals::<f64, _>(1 << 40, 3, 1.0, 0.1, &mut r), "n", big);
    named(
        spirals::<f64, _>(10, 3, 1.0, f64::NAN, &mut r),
        "noise",
        "finite",
    );
    named(
        spirals::<f64, _>(10, 3, f64::INFINITY, 0.1, &mut r),
        "turns",
        "finite",
    );
    let centers = blob_centers(4, 3, 1.0, &mut r).unwrap();
    named(
        blobs::<f64, _>(&centers, 1 << 40, 0.5, &mut r),
        "dim/n",
        big,
    );
    named(
        blobs::<f64, _>(&centers, 10, f64::NAN, &mut r),
        "std",
        "finite",
    );
    let nan_centers = blob_centers(4, 3, f64::NAN, &mut r).unwrap();
    named(
        blobs::<f64, _>(&nan_centers, 10, 0.5, &mut r),
        "centers",
        "non-finite",
    );
    named(
        teacher_student::<f64, _, _>(1 << 20, 1 << 20, 0.0, |x| Ok(x.clone()), &mut r),
        "input_dim/n",
        big,
    );
    // The blob centres and the teacher's weights (session 14, from review 3's note).
    named(
        blob_centers(1 << 20, 1 << 20, 1.0, &mut r),
        "dim/classes",
        big,
    );
    named(
        TeacherMlp::random(&[1 << 20, 1 << 20], &mut r),
        "widths",
        big,
    );
    named(
        TeacherMlp::random(&[30_000, 30_000, 30_000], &mut r),
        "widths",
        "the teacher's weights have 1800000000 entries",
    );
}
