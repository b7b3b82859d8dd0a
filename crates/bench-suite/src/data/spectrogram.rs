//! The power spectrogram of a synthesised piano-like signal: the classic audio test bed
//! of beta-NMF (Fevotte, Bertin & Durrieu 2009 decompose a real piano excerpt; we
//! synthesise one so that it ships with the code and is deterministic).

use std::f64::consts::PI;

use autodiff::Real;
use nalgebra::DMatrix;
use rustfft::FftPlanner;
use rustfft::num_complex::Complex;

use crate::BenchError;

/// Every parameter of the synthetic piano signal and of its STFT.
#[derive(Clone, Debug, PartialEq)]
pub struct PianoSpec {
    /// Sample rate in Hz.
    pub sample_rate: f64,
    /// Signal length in seconds.
    pub duration_s: f64,
    /// Fundamental frequency of each note in Hz, played in this order.
    pub notes_hz: Vec<f64>,
    /// Time between successive onsets in seconds (note k starts at `k * onset_spacing_s`
    /// and rings, decaying, until the end: later notes overlap earlier ones).
    pub onset_spacing_s: f64,
    /// Decay time constant of the fundamental in seconds; partial h decays with time
    /// constant `decay_s / (1 + 0.5 (h - 1))` (higher partials die faster, as on a piano).
    pub decay_s: f64,
    /// Linear attack ramp in seconds.
    pub attack_s: f64,
    /// Number of partials per note (those above Nyquist are dropped); partial h has
    /// frequency `h f0` and amplitude `1 / h`.
    pub harmonics: usize,
    /// STFT frame length (samples); the periodic Hann window of this length is used.
    pub frame: usize,
    /// STFT hop (samples).
    pub hop: usize,
    /// Floor added to every power value, relative to the largest power
    /// (`V = |X|^2 + floor_rel * max |X|^2`), so beta <= 0 divergences are finite.
    pub floor_rel: f64,
}

impl Default for PianoSpec {
    /// C4, E4, G4, C5 (261.63, 329.63, 392.00, 523.25 Hz), onsets every 0.5 s, 2 s at
    /// 8 kHz, decay 0.4 s, attack 5 ms, 8 partials, frame 256 (32 ms), hop 128, floor
    /// 1e-9 of the maximum: a 129 x 124 matrix (frequency bins x frames).
    fn default() -> Self {
        Self {
            sample_rate: 8000.0,
            duration_s: 2.0,
            notes_hz: vec![261.63, 329.63, 392.00, 523.25],
            onset_spacing_s: 0.5,
            decay_s: 0.4,
            attack_s: 0.005,
            harmonics: 8,
            frame: 256,
            hop: 128,
            floor_rel: 1e-9,
        }
    }
}

impl PianoSpec {
    fn check(&self) -> Result<usize, BenchError> {
        let positive = [
            ("sample_rate", self.sample_rate),
            ("duration_s", self.duration_s),
            ("decay_s", self.decay_s),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(BenchError::arg(name, format!("must be > 0, got {v}")));
            }
        }
        if !(self.onset_spacing_s.is_finite() && self.onset_spacing_s >= 0.0) {
            return Err(BenchError::arg(
                "onset_spacing_s",
                format!("must be finite and >= 0, got {}", self.onset_spacing_s),
            ));
        }
        if !(self.attack_s.is_finite() && self.attack_s >= 0.0) {
            return Err(BenchError::arg("attack_s", "must be >= 0"));
        }
        if !(self.floor_rel.is_finite() && self.floor_rel >= 0.0) {
            return Err(BenchError::arg("floor_rel", "must be >= 0"));
        }
        if self.frame < 2 || self.hop == 0 {
            return Err(BenchError::arg("frame/hop", "need frame >= 2 and hop >= 1"));
        }
        // The signal's length, checked before the cast (which saturates) and before
        // anything of that size is allocated; the spectrogram's size below.
        let samples = (self.sample_rate * self.duration_s).round();
        if samples > super::MAX_DATA_ENTRIES as f64 {
            return Err(BenchError::arg(
                "duration_s",
                format!(
                    "{samples} samples are more than MAX_DATA_ENTRIES = {}",
                    super::MAX_DATA_ENTRIES
                ),
            ));
        }
        let len = samples as usize;
        if len < self.frame {
            return Err(BenchError::arg(
                "duration_s",
                format!("{len} samples are fewer than one frame of {}", self.frame),
            ));
        }
        super::check_entries(
            "frame/hop",
            self.frame / 2 + 1,
            1 + (len - self.frame) / self.hop,
        )?;
        Ok(len)
    }

    /// Number of frequency bins `frame / 2 + 1` and of frames `1 + (len - frame) / hop`.
    pub fn shape(&self) -> Result<(usize, usize), BenchError> {
        let len = self.check()?;
        Ok((self.frame / 2 + 1, 1 + (len - self.frame) / self.hop))
    }
}

/// The time-domain signal: the sum over notes k (onset `t_k`) and partials h of
/// `env(t - t_k) exp(-(t - t_k)(1 + 0.5(h-1))/decay) (1/h) sin(2 pi h f0_k (t - t_k))`,
/// with `env` the linear attack ramp, zero before the onset.
pub fn piano_signal(spec: &PianoSpec) -> Result<Vec<f64>, BenchError> {
    let len = spec.check()?;
    let nyquist = spec.sample_rate / 2.0;
    let mut x = vec![0.0; len];
    for (k, &f0) in spec.notes_hz.iter().enumerate() {
        if !(f0.is_finite() && f0 > 0.0) {
            return Err(BenchError::arg(
                "notes_hz",
                format!("note {k} has frequency {f0}"),
            ));
        }
        let onset = k as f64 * spec.onset_spacing_s;
        for (i, xi) in x.iter_mut().enumerate() {
            let t = i as f64 / spec.sample_rate - onset;
            if t < 0.0 {
                continue;
            }
            let ramp = if spec.attack_s > 0.0 {
                (t / spec.attack_s).min(1.0)
            } else {
                1.0
            };
            for h in 1..=spec.harmonics {
                let f = h as f64 * f0;
                if f >= nyquist {
                    break;
                }
                let rate = (1.0 + 0.5 * (h as f64 - 1.0)) / spec.decay_s;
                *xi += ramp * (-t * rate).exp() * (2.0 * PI * f * t).sin() / h as f64;
            }
        }
    }
    Ok(x)
}

/// Power STFT `|X(f, n)|^2` of `signal` with a periodic Hann window
/// `w[i] = 0.5 - 0.5 cos(2 pi i / frame)`, frames starting at `n * hop` (no padding;
/// trailing samples that do not fill a frame are dropped), bins `0..=frame/2`. Returned
/// as a `(frame/2 + 1) x frames` matrix.
pub fn stft_power(signal: &[f64], frame: usize, hop: usize) -> Result<DMatrix<f64>, BenchError> {
    if frame < 2 || hop == 0 || signal.len() < frame {
        return Err(BenchError::arg(
            "frame/hop",
            format!(
                "need frame >= 2, hop >= 1 and at least one full frame (signal {}, frame {frame}, hop {hop})",
                signal.len()
            ),
        ));
    }
    let frames = 1 + (signal.len() - frame) / hop;
    let bins = frame / 2 + 1;
    super::check_entries("frame/hop", bins, frames)?;
    let window: Vec<f64> = (0..frame)
        .map(|i| 0.5 - 0.5 * (2.0 * PI * i as f64 / frame as f64).cos())
        .collect();
    let fft = FftPlanner::<f64>::new().plan_fft_forward(frame);
    let mut buf = vec![Complex::new(0.0, 0.0); frame];
    let mut out = DMatrix::zeros(bins, frames);
    for n in 0..frames {
        let start = n * hop;
        for (i, b) in buf.iter_mut().enumerate() {
            *b = Complex::new(signal[start + i] * window[i], 0.0);
        }
        fft.process(&mut buf);
        for f in 0..bins {
            out[(f, n)] = buf[f].norm_sqr();
        }
    }
    Ok(out)
}

/// The floored power spectrogram of the piano signal of `spec`, `F x N` (see
/// [`PianoSpec::default`] for the default 129 x 124).
pub fn piano_spectrogram<T: Real>(spec: &PianoSpec) -> Result<DMatrix<T>, BenchError> {
    let signal = piano_signal(spec)?;
    let power = stft_power(&signal, spec.frame, spec.hop)?;
    let floor = spec.floor_rel * power.max();
    Ok(power.map(|p| T::of(p + floor)))
}
