//! Tracking the decode coefficients across time windows with an Extended Kalman Filter, in the
//! manner of llm-inferno's model tuner: the state is θ = [α, β] (ms, ms per running sequence), the
//! observation of a window is (mean ITL, mean queue wait) and the observation function is a
//! state-dependent queueing model of the engine.
//!
//! Why a filter next to the least-squares fit: LS gives one set of coefficients for the whole window
//! and its uncertainty; the filter shows whether they drift (a driver upgrade, a noisy neighbour) and
//! is what a continuously running tuner would keep updated window by window.
//!
//! # Queueing model
//! A birth-death chain on k = requests in the engine (running + waiting), arrivals Poisson at λ. With
//! M = max_num_seqs, min(k, M) sequences run; each emits a token every ITL(b) = α + β·b ms (b the
//! running batch) and needs O tokens plus a fixed prefill time t₀, so the departure rate in state k is
//! μ(k) = b / (t₀ + O·ITL(b)), b = min(k, M). The stationary distribution p_k ∝ Πᵢ λ/μ(i) gives the
//! mean queue length Lq = Σ (k − M)⁺ p_k and, by Little's law, the queue wait Wq = Lq / λ. The chain
//! is truncated at M + `queue_capacity` (an overloaded engine's queue is finite in practice: clients
//! time out). ITL is predicted at the window's observed mean batch when telemetry reports one (it is
//! then a linear observation), else at the chain's mean batch E[min(k, M)].

use nalgebra::{DMatrix, DVector, Matrix2, Vector2};
use serde::Serialize;

/// The inputs of one window the queueing model needs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct QueueInputs {
    /// Arrivals per millisecond.
    pub lambda_per_ms: f64,
    /// Mean output tokens per request.
    pub tokens_per_request: f64,
    /// Mean non-decode service time per request (prefill), ms.
    pub prefill_ms: f64,
    /// max_num_seqs.
    pub max_batch: u32,
    /// Observed mean running batch, when the window reports one.
    pub batch: Option<f64>,
}

/// What the queueing model predicts for a window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct QueuePrediction {
    pub itl_ms: f64,
    pub wait_ms: f64,
    pub mean_batch: f64,
}

/// Evaluates the birth-death model for coefficients (α, β). `queue_capacity` bounds the waiting room.
pub fn predict(alpha: f64, beta: f64, x: &QueueInputs, queue_capacity: u32) -> QueuePrediction {
    let m = x.max_batch.max(1);
    let itl = |b: f64| alpha + beta * b;
    let lambda = x.lambda_per_ms.max(0.0);
    let mu = |k: u32| {
        let b = k.min(m) as f64;
        b / (x.prefill_ms.max(0.0) + x.tokens_per_request.max(1.0) * itl(b))
    };
    // Unnormalised p_k in log space would be safer for huge chains; ratios λ/μ stay moderate for the
    // truncation used, and the walk stops once the tail is negligible.
    let (mut p, mut total, mut batch, mut lq) = (1.0f64, 1.0f64, 0.0f64, 0.0f64);
    let mut peak = 1.0f64;
    for k in 1..=m + queue_capacity {
        let rate = mu(k);
        if rate.is_nan() || rate <= 0.0 {
            break;
        }
        p *= lambda / rate;
        if !p.is_finite() {
            break;
        }
        total += p;
        batch += p * k.min(m) as f64;
        lq += p * k.saturating_sub(m) as f64;
        peak = peak.max(p);
        if p < peak * 1e-12 && k > m.min(8) {
            break;
        }
    }
    let mean_batch = batch / total;
    let wait_ms = if lambda > 0.0 {
        lq / total / lambda
    } else {
        0.0
    };
    QueuePrediction {
        itl_ms: itl(x.batch.unwrap_or(mean_batch)),
        wait_ms,
        mean_batch,
    }
}

/// Filter settings: noise levels and the rejection rules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EkfOptions {
    /// Process noise per window, as a fraction of the state (random-walk drift of α and β).
    pub process_rel_sd: f64,
    /// ITL measurement noise, as a fraction of the observed ITL.
    pub itl_rel_sd: f64,
    /// Queue-wait measurement noise: relative part and an absolute floor (ms). The floor is what keeps
    /// microsecond-scale waits (no queueing) from pulling the state: the queueing model is not
    /// resolved that finely.
    pub wait_rel_sd: f64,
    pub wait_floor_ms: f64,
    /// Innovations whose normalised squared size (NIS) exceeds this are outliers, not evidence.
    pub nis_gate: f64,
    /// Updates whose innovation covariance has a larger condition number are rejected.
    pub max_condition: f64,
    /// A parameter whose observation sensitivity (|∂h/∂θⱼ|·σⱼ relative to the measurement noise) is
    /// below this is not identified by the window: its row of the gain is zeroed.
    pub min_sensitivity: f64,
    pub queue_capacity: u32,
    /// Consecutive gated windows after which the covariance is inflated ×4 (re-acquisition).
    pub reacquire_after: usize,
}

impl Default for EkfOptions {
    fn default() -> Self {
        EkfOptions {
            process_rel_sd: 0.001,
            itl_rel_sd: 0.03,
            wait_rel_sd: 0.2,
            wait_floor_ms: 5.0,
            nis_gate: 25.0,
            max_condition: 1e12,
            min_sensitivity: 1e-4,
            queue_capacity: 1024,
            reacquire_after: 10,
        }
    }
}

/// One observed window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EkfObservation {
    pub inputs: QueueInputs,
    pub itl_ms: f64,
    pub wait_ms: Option<f64>,
}

/// Filter state and bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ekf {
    pub alpha: f64,
    pub beta: f64,
    #[serde(skip)]
    pub cov: Matrix2<f64>,
    pub updates: usize,
    /// Windows whose update was refused (ill-conditioned, gated, or non-physical result).
    pub rejected: usize,
    /// Updates in which a parameter was not identified and left unchanged.
    pub unidentified: usize,
    pub options: EkfOptions,
    /// Consecutive windows refused by the innovation gate.
    #[serde(skip)]
    gated_run: usize,
}

impl Ekf {
    /// Starts from a prior (typically the roofline's α, β) with relative standard deviation `rel_sd`.
    pub fn new(alpha: f64, beta: f64, rel_sd: f64, options: EkfOptions) -> Ekf {
        let sd = |x: f64| (x.abs() * rel_sd).max(1e-6);
        Ekf {
            alpha,
            beta,
            cov: Matrix2::new(sd(alpha).powi(2), 0.0, 0.0, sd(beta).powi(2)),
            updates: 0,
            rejected: 0,
            unidentified: 0,
            options,
            gated_run: 0,
        }
    }

    /// Standard deviations of α and β.
    pub fn sd(&self) -> (f64, f64) {
        (self.cov[(0, 0)].sqrt(), self.cov[(1, 1)].sqrt())
    }

    /// Processes one window; returns whether the state was updated.
    pub fn step(&mut self, obs: &EkfObservation) -> bool {
        let o = &self.options;
        // Predict: random walk.
        let q = Matrix2::new(
            (self.alpha.abs() * o.process_rel_sd).powi(2),
            0.0,
            0.0,
            (self.beta.abs() * o.process_rel_sd).powi(2),
        );
        self.cov += q;
        if !(obs.itl_ms.is_finite() && obs.itl_ms > 0.0) {
            self.rejected += 1;
            return false;
        }
        let wait = obs.wait_ms.filter(|w| w.is_finite() && *w >= 0.0);
        // Observation rows: ITL always, the queue wait when the window reports one.
        let m = 1 + usize::from(wait.is_some());
        let h = |a: f64, b: f64| {
            let p = predict(a, b, &obs.inputs, o.queue_capacity);
            DVector::from_iterator(m, [p.itl_ms, p.wait_ms].into_iter().take(m))
        };
        let z = DVector::from_iterator(m, [obs.itl_ms, wait.unwrap_or(0.0)].into_iter().take(m));
        let hx = h(self.alpha, self.beta);
        // Central finite-difference Jacobian (the wait is a ratio of long sums: no closed form worth it).
        let mut jac = DMatrix::zeros(m, 2);
        for j in 0..2 {
            let x = [self.alpha, self.beta];
            let d = (x[j].abs() * 1e-4).max(1e-9);
            let (mut up, mut dn) = (x, x);
            up[j] += d;
            dn[j] -= d;
            let col = (h(up[0], up[1]) - h(dn[0], dn[1])) / (2.0 * d);
            jac.set_column(j, &col);
        }
        let mut r_diag = vec![(o.itl_rel_sd * obs.itl_ms).powi(2)];
        if let Some(w) = wait {
            r_diag.push((o.wait_rel_sd * w).max(o.wait_floor_ms).powi(2));
        }
        let r = DMatrix::from_diagonal(&DVector::from_vec(r_diag.clone()));
        let cov = DMatrix::from_column_slice(2, 2, self.cov.as_slice());
        let s = &jac * &cov * jac.transpose() + &r;
        let eig = s.clone().symmetric_eigenvalues();
        let (lo, hi) = (eig.min(), eig.max());
        if !(lo > 0.0 && hi / lo <= o.max_condition) {
            self.rejected += 1;
            return false;
        }
        let Some(s_inv) = s.try_inverse() else {
            self.rejected += 1;
            return false;
        };
        let innovation = z - hx;
        let nis = (innovation.transpose() * &s_inv * &innovation)[0];
        if nis.is_nan() || nis > o.nis_gate {
            self.rejected += 1;
            // A gate protects against single outliers, but a filter whose state is far off (a bad
            // prior, a step change in the engine) would reject everything forever: after
            // `reacquire_after` consecutive refusals the covariance is inflated so it can lock on.
            self.gated_run += 1;
            if self.gated_run >= o.reacquire_after {
                self.cov *= 4.0;
                self.gated_run = 0;
            }
            return false;
        }
        self.gated_run = 0;
        let mut gain = &cov * jac.transpose() * &s_inv;
        // Identifiability: a parameter the window's observations barely depend on gets no update.
        let mut skipped = false;
        for j in 0..2 {
            let sens = (0..m)
                .map(|i| jac[(i, j)].abs() / r_diag[i].sqrt())
                .fold(0.0, f64::max)
                * cov[(j, j)].sqrt();
            if sens.is_nan() || sens < o.min_sensitivity {
                gain.row_mut(j).fill(0.0);
                skipped = true;
            }
        }
        let dx = &gain * &innovation;
        let x = Vector2::new(self.alpha + dx[0], self.beta + dx[1]);
        if !(x[0] > 0.0 && x[1] >= 0.0 && x.iter().all(|v| v.is_finite())) {
            self.rejected += 1;
            return false;
        }
        // Joseph form keeps the covariance symmetric and positive.
        let ikh = DMatrix::identity(2, 2) - &gain * &jac;
        let next = &ikh * &cov * ikh.transpose() + &gain * &r * gain.transpose();
        self.cov = Matrix2::from_column_slice(next.as_slice());
        self.alpha = x[0];
        self.beta = x[1];
        self.updates += 1;
        self.unidentified += usize::from(skipped);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(lambda_per_s: f64, batch: Option<f64>) -> QueueInputs {
        QueueInputs {
            lambda_per_ms: lambda_per_s / 1000.0,
            tokens_per_request: 200.0,
            prefill_ms: 20.0,
            max_batch: 64,
            batch,
        }
    }

    #[test]
    fn queue_model_obeys_littles_law_at_light_load() {
        // Far from the batch limit nobody waits and E[batch] = λ·E[service].
        let x = inputs(5.0, None);
        let p = predict(10.0, 0.1, &x, 256);
        assert!(p.wait_ms < 1e-6);
        let service = 20.0 + 200.0 * (10.0 + 0.1 * p.mean_batch);
        assert!(
            (p.mean_batch / (0.005 * service) - 1.0).abs() < 0.05,
            "{p:?}"
        );
        // Near saturation the wait grows.
        let busy = predict(10.0, 0.1, &inputs(28.0, None), 256);
        assert!(busy.wait_ms > 10.0 && busy.mean_batch > 40.0, "{busy:?}");
    }

    #[test]
    fn converges_from_a_prior_fifty_percent_off() {
        let (alpha, beta) = (8.0, 0.12);
        let mut ekf = Ekf::new(12.0, 0.18, 0.5, EkfOptions::default());
        for i in 0..400 {
            let batch = 2.0 + (i % 50) as f64;
            let x = inputs(1.0, Some(batch));
            let noise = 1.0 + 0.01 * (((i * 7919) % 13) as f64 - 6.0) / 6.0;
            ekf.step(&EkfObservation {
                inputs: x,
                itl_ms: (alpha + beta * batch) * noise,
                wait_ms: Some(predict(alpha, beta, &x, 1024).wait_ms),
            });
        }
        assert!((ekf.alpha / alpha - 1.0).abs() < 0.03, "{ekf:?}");
        assert!((ekf.beta / beta - 1.0).abs() < 0.03, "{ekf:?}");
    }

    #[test]
    fn constant_batch_does_not_move_an_unidentified_split_wildly() {
        let mut ekf = Ekf::new(10.0, 0.1, 0.5, EkfOptions::default());
        for _ in 0..100 {
            ekf.step(&EkfObservation {
                inputs: inputs(1.0, Some(0.0)),
                itl_ms: 9.0,
                wait_ms: None,
            });
        }
        // Batch 0 says nothing about β: it keeps its prior value.
        assert!((ekf.beta - 0.1).abs() < 1e-9, "{ekf:?}");
        assert!((ekf.alpha - 9.0).abs() < 0.1);
        assert!(ekf.unidentified > 0);
        // Garbage is refused.
        assert!(!ekf.step(&EkfObservation {
            inputs: inputs(1.0, Some(10.0)),
            itl_ms: f64::NAN,
            wait_ms: None,
        }));
    }
}
