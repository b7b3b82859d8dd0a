//! What a [`ProblemSpec`] computes: its sizes, the text of its objective, the families it
//! supports, and building its data (drawn from the seed's data stream, module doc of
//! [`crate::problems`]).

use super::*;

impl ProblemSpec {
    /// Sizes as registered (MNIST: 784 features, the default training subset, 10,000 test).
    pub fn sizes(&self) -> ProblemSizes {
        let (features, train, test) = match &self.source {
            DataSource::Digits { .. } | DataSource::DigitsUnit => (64, 1438, 359),
            DataSource::TeacherStudent { train, test, .. }
            | DataSource::Spirals { train, test, .. } => {
                let d = match &self.kind {
                    ProblemKind::Network { widths, .. } => widths[0],
                    ProblemKind::Nmf { .. } => 0,
                };
                (d, *train, *test)
            }
            DataSource::Blobs {
                train, test, dim, ..
            } => (*dim, *train, *test),
            DataSource::Mnist { train, test, .. } => (784, *train, *test),
            DataSource::PianoSpectrogram(spec) => {
                let (f, n) = spec.shape().unwrap_or((0, 0));
                (f, n, 0)
            }
            DataSource::SyntheticNmf { rows, cols, .. } => (*rows, *cols, 0),
            DataSource::DigitsPixels { .. } => (64, 1797, 0),
            DataSource::Csv {
                rows,
                features,
                train_fraction,
                ..
            } => {
                let train = (train_fraction * *rows as f64).round() as usize;
                (*features, train, rows.saturating_sub(train))
            }
        };
        let params = match &self.kind {
            ProblemKind::Network { widths, .. } => mlp_params(widths),
            ProblemKind::Nmf { rank, .. } => rank * (features + train),
        };
        ProblemSizes {
            features,
            train,
            test,
            params,
        }
    }

    /// The training objective in words (network: [`LossSpec::objective_text`]; NMF: the
    /// beta-divergence).
    pub fn objective_text(&self) -> String {
        match &self.kind {
            ProblemKind::Network { loss, l2, .. } => loss.objective_text_with(*l2),
            ProblemKind::Nmf { beta, .. } => {
                format!("beta-divergence D_beta(V | WH), beta = {beta}, no penalty")
            }
        }
    }

    /// Whether `family` applies.
    pub fn supports(&self, family: SolverFamily) -> bool {
        self.families.contains(&family)
    }

    /// Builds the data in precision `T` for `seed` (see the module doc for the seed rule).
    /// User-supplied data that is absent gives [`BenchError::DataMissing`].
    pub fn build<T: Real>(
        &self,
        seed: u64,
        opts: &BuildOptions,
    ) -> Result<ProblemData<T>, BenchError> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let supervised = |train, test| {
            Ok(ProblemData::Supervised {
                train,
                test: Some(test),
            })
        };
        match &self.source {
            DataSource::Digits { autoencoder } => {
                let (train, test) = data::digits_split::<T>(seed)?;
                if *autoencoder {
                    let to_ae = |d: Dataset<T>| {
                        let x = d.inputs().clone();
                        Dataset::new(x.clone(), nets::Targets::Dense(x))
                    };
                    supervised(to_ae(train)?, to_ae(test)?)
                } else {
                    supervised(train, test)
                }
            }
            DataSource::DigitsUnit => {
                let (train, test) = data::digits_split_unit::<T>(seed)?;
                supervised(train, test)
            }
            DataSource::TeacherStudent {
                train,
                test,
                noise_std,
            } => {
                let ProblemKind::Network { widths, .. } = &self.kind else {
                    return Err(BenchError::arg("kind", "teacher-student needs a network"));
                };
                let teacher = TeacherMlp::random(widths, &mut rng)?;
                let d = widths[0];
                let tr =
                    data::teacher_student(d, *train, *noise_std, |x| teacher.forward(x), &mut rng)?;
                let te =
                    data::teacher_student(d, *test, *noise_std, |x| teacher.forward(x), &mut rng)?;
                supervised(tr, te)
            }
            DataSource::Spirals {
                train,
                test,
                classes,
                turns,
                noise,
            } => {
                let tr = data::spirals(*train, *classes, *turns, *noise, &mut rng)?;
                let te = data::spirals(*test, *classes, *turns, *noise, &mut rng)?;
                supervised(tr, te)
            }
            DataSource::Blobs {
                train,
                test,
                dim,
                classes,
                spread,
                std,
            } => {
                let centers = data::blob_centers(*dim, *classes, *spread, &mut rng)?;
                let tr = data::blobs(&centers, *train, *std, &mut rng)?;
                let te = data::blobs(&centers, *test, *std, &mut rng)?;
                supervised(tr, te)
            }
            DataSource::Mnist {
                fashion,
                train,
                test,
            } => {
                let dir = if *fashion {
                    data::resolve_fashion_mnist_dir(
                        opts.fashion_mnist_dir.as_deref(),
                        opts.fashion_mnist_package_dir
                            .as_deref()
                            .unwrap_or(std::path::Path::new(data::FASHION_MNIST_PACKAGE_DIR)),
                    )?
                } else {
                    opts.mnist_dir
                        .clone()
                        .ok_or_else(|| BenchError::DataMissing {
                            path: PathBuf::from(format!("${}", data::MNIST_DIR_ENV)),
                        })?
                };
                let max = opts.mnist_max_train.unwrap_or(*train);
                let (train, test) = data::load_mnist_dir::<T>(&dir, Some(max), Some(*test))?;
                supervised(train, test)
            }
            DataSource::PianoSpectrogram(spec) => Ok(ProblemData::Nmf {
                v: data::piano_spectrogram(spec)?,
            }),
            DataSource::SyntheticNmf {
                rows,
                cols,
                rank,
                noise,
                floor,
            } => Ok(ProblemData::Nmf {
                v: data::synthetic_nmf(*rows, *cols, *rank, *noise, *floor, &mut rng)?.v,
            }),
            DataSource::DigitsPixels { floor } => Ok(ProblemData::Nmf {
                v: data::digits_nonnegative(*floor)?,
            }),
            DataSource::Csv {
                path,
                options,
                train_fraction,
                rows,
                features,
            } => {
                let table = data::read_labeled_csv(path, options)?;
                if table.len() != *rows || table.num_features != *features {
                    return Err(BenchError::Inconsistent {
                        first: path.display().to_string(),
                        second: format!("problem `{}`", self.name),
                        message: format!(
                            "file now has {} rows of {} features, registered {rows} of {features}",
                            table.len(),
                            table.num_features
                        ),
                    });
                }
                let (train, test) = data::train_test_from_table(&table, *train_fraction, seed)?;
                supervised(train, test)
            }
        }
    }

    /// [`ProblemSpec::build`] in the precision chosen at run time.
    pub fn build_dtype(
        &self,
        seed: u64,
        dtype: Dtype,
        opts: &BuildOptions,
    ) -> Result<AnyProblemData, BenchError> {
        Ok(match dtype {
            Dtype::F32 => AnyProblemData::F32(self.build(seed, opts)?),
            Dtype::F64 => AnyProblemData::F64(self.build(seed, opts)?),
        })
    }
}
