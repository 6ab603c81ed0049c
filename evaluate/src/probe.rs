//! The linear probe: multinomial logistic regression on standardised frozen
//! features (the objective in `softmax_loss`, minimised by `lbfgs`). The L2
//! strength is chosen on a held-out 10% of the training split (every 10th
//! sample), from the strongest down, each fit starting from the last one's
//! weights; then the model is refitted on the whole training split from the
//! chosen fit's weights and scored on the test split. This is scikit-learn's
//! `LogisticRegression(solver="lbfgs", C=1/alpha)` protocol
//! (benches/sklearn_probe.py), at most 200 iterations a fit.

use crate::features::Features;
use crate::lbfgs::{self, Stop};
use crate::linalg;
use crate::softmax_loss::SoftmaxLoss;
use serde::{Deserialize, Serialize};

pub const ALPHAS: [f64; 4] = [1e-2, 1e-1, 1.0, 10.0];
/// Iterations a fit at most, as benches/sklearn_probe.py runs scikit-learn:
/// on CIFAR-10 features 100 left the strongest L2 unconverged and changed
/// the chosen alpha; fits stop earlier at `GTOL` (docs/BENCHMARKS.md).
pub const MAX_ITER: usize = 200;
/// The optimiser's limits (for benchmarks; `mixco eval` uses the defaults).
#[derive(Clone, Copy, Debug)]
pub struct ProbeOptions {
    pub max_iter: usize,
    pub gtol: f64,
}

impl Default for ProbeOptions {
    fn default() -> ProbeOptions {
        ProbeOptions { max_iter: MAX_ITER, gtol: GTOL }
    }
}

/// On the largest gradient entry of the per-sample objective (scikit-learn's `tol`).
pub const GTOL: f64 = 1e-4;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProbeResult {
    pub top1: f64,
    pub top5: f64,
    pub alpha: f64,
    /// (alpha, held-out top-1) for each candidate.
    pub grid: Vec<(f64, f64)>,
    /// Every fit in the order run: the grid (strongest first), then the refit.
    pub fits: Vec<FitStats>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FitStats {
    pub alpha: f64,
    /// Training rows it was fitted on.
    pub rows: usize,
    pub iterations: usize,
    /// Objective evaluations (each two matrix products of rows x dim x classes).
    pub evaluations: usize,
    /// The per-sample objective at the end.
    pub loss: f64,
    pub stop: Stop,
    /// Wall time, for benchmarks; left out of reports, which stay the same
    /// from run to run.
    #[serde(skip)]
    pub seconds: f64,
}

/// What a long probe is doing, after each iteration.
#[derive(Clone, Copy, Debug)]
pub struct ProbeProgress {
    /// 1-based, of `fits` (the grid's fits, then the refit).
    pub fit: usize,
    pub fits: usize,
    pub alpha: f64,
    pub refit: bool,
    pub iteration: usize,
    pub max_iter: usize,
    pub loss: f64,
}

#[derive(Debug, thiserror::Error)]
#[error("linear probe: {0}")]
pub struct ProbeError(String);

/// Standardised copies (training mean and population std, in f64; a
/// constant feature keeps scale 1, as scikit-learn's StandardScaler).
fn standardise(train: &Features, test: &Features) -> (Vec<f32>, Vec<f32>) {
    let d = train.dim;
    let mut mean = vec![0.0f64; d];
    let mut sq = vec![0.0f64; d];
    for row in train.data.chunks_exact(d) {
        row.iter().zip(&mut mean).for_each(|(&v, m)| *m += v as f64);
    }
    mean.iter_mut().for_each(|m| *m /= train.n as f64);
    for row in train.data.chunks_exact(d) {
        row.iter().zip(&mean).zip(&mut sq).for_each(|((&v, m), s)| *s += (v as f64 - m).powi(2));
    }
    let scale: Vec<f64> = sq.iter().map(|s| (s / train.n as f64).sqrt()).map(|s| if s > 1e-8 { s } else { 1.0 }).collect();
    let apply = |f: &Features| -> Vec<f32> {
        f.data.chunks_exact(d).flat_map(|row| row.iter().zip(&mean).zip(&scale).map(|((&v, m), s)| ((v as f64 - m) / s) as f32)).collect()
    };
    (apply(train), apply(test))
}

/// Dense class indices: the sorted distinct training labels.
pub fn classes(train_y: &[u32]) -> Vec<u32> {
    let mut c = train_y.to_vec();
    c.sort_unstable();
    c.dedup();
    c
}

struct Fit<'a> {
    x: &'a [f32],
    y: &'a [u32],
    d: usize,
    c: usize,
    opts: ProbeOptions,
}

impl Fit<'_> {
    fn run(&self, alpha: f64, start: Vec<f64>, mut on_iter: impl FnMut(lbfgs::Iterate)) -> (Vec<f64>, FitStats) {
        let (n, t) = (self.y.len(), std::time::Instant::now());
        let mut loss = SoftmaxLoss::new(self.x, self.y, n, self.d, self.c);
        let opts = lbfgs::Options { max_iter: self.opts.max_iter, gtol: self.opts.gtol, ..lbfgs::Options::default() };
        let out = lbfgs::minimise(|t, g| loss.eval(t, alpha, g), start, &opts, &mut on_iter);
        let stats = FitStats { alpha, rows: n, iterations: out.iterations, evaluations: out.evaluations, loss: out.f, stop: out.stop, seconds: t.elapsed().as_secs_f64() };
        (out.x, stats)
    }
}

/// (top-1, top-5) of the linear model `theta` (W then b) on `x`; a label
/// outside the training classes (`None`) is never right.
fn score(theta: &[f64], x: &[f32], y: &[Option<u32>], d: usize, c: usize) -> (f64, f64) {
    let n = y.len();
    let w: Vec<f32> = theta[..d * c].iter().map(|&v| v as f32).collect();
    let mut z = vec![0.0f32; n * c];
    linalg::mul(x, &w, &mut z, n, d, c);
    let (mut top1, mut top5) = (0, 0);
    for (row, label) in z.chunks_exact(c).zip(y) {
        let Some(label) = *label else { continue };
        let logit = |j: usize| row[j] as f64 + theta[d * c + j];
        let mine = logit(label as usize);
        let above = (0..c).filter(|&j| logit(j) > mine).count();
        top1 += (above == 0) as usize;
        top5 += (above < 5) as usize;
    }
    let n = n.max(1) as f64;
    (top1 as f64 / n, top5 as f64 / n)
}

/// Every 10th row held out for choosing the L2 strength: (fitted rows,
/// their labels, held-out rows, their labels).
fn hold_out(x: &[f32], y: &[u32], d: usize) -> (Vec<f32>, Vec<u32>, Vec<f32>, Vec<Option<u32>>) {
    let (mut fit_x, mut fit_y, mut held_x, mut held_y) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, (row, &label)) in x.chunks_exact(d).zip(y).enumerate() {
        if i % 10 == 9 {
            held_x.extend_from_slice(row);
            held_y.push(Some(label));
        } else {
            fit_x.extend_from_slice(row);
            fit_y.push(label);
        }
    }
    (fit_x, fit_y, held_x, held_y)
}

pub fn linear_probe(train: &Features, train_y: &[u32], test: &Features, test_y: &[u32]) -> Result<ProbeResult, ProbeError> {
    linear_probe_with(train, train_y, test, test_y, ProbeOptions::default(), &mut |_| {})
}

/// The probe, calling `progress` after every L-BFGS iteration.
pub fn linear_probe_with(
    train: &Features,
    train_y: &[u32],
    test: &Features,
    test_y: &[u32],
    opts: ProbeOptions,
    progress: &mut dyn FnMut(&ProbeProgress),
) -> Result<ProbeResult, ProbeError> {
    if train.n < 10 || test.n == 0 {
        return Err(ProbeError(format!("needs at least 10 training and 1 test images, got {} and {}", train.n, test.n)));
    }
    if train.dim == 0 || train.dim != test.dim || train_y.len() != train.n || test_y.len() != test.n {
        return Err(ProbeError(format!(
            "mismatched inputs: {} x {} training features with {} labels, {} x {} test features with {} labels",
            train.n, train.dim, train_y.len(), test.n, test.dim, test_y.len()
        )));
    }
    for (what, f) in [("training", train), ("test", test)] {
        if let Some(i) = f.data.iter().position(|v| !v.is_finite()) {
            return Err(ProbeError(format!("{what} feature {} of row {} is {}", i % f.dim, i / f.dim, f.data[i])));
        }
    }
    let (a, b) = standardise(train, test);
    let names = classes(train_y);
    let index = |l: u32| names.binary_search(&l).ok().map(|i| i as u32);
    let y: Vec<u32> = train_y.iter().map(|&l| index(l).expect("a training label")).collect();
    let (d, c) = (train.dim, names.len());
    let (fit_x, fit_y, held_x, held_y) = hold_out(&a, &y, d);
    let fits_total = ALPHAS.len() + 1;
    let report = |fit: usize, alpha: f64, refit: bool| {
        move |it: lbfgs::Iterate| ProbeProgress { fit, fits: fits_total, alpha, refit, iteration: it.iteration, max_iter: opts.max_iter, loss: it.f }
    };
    // From the strongest regularisation down, each fit starting from the last.
    let held = Fit { x: &fit_x, y: &fit_y, d, c, opts };
    let mut theta = vec![0.0; (d + 1) * c];
    let (mut grid, mut fits, mut weights) = (Vec::new(), Vec::new(), Vec::new());
    for (i, &alpha) in ALPHAS.iter().rev().enumerate() {
        let tell = report(i + 1, alpha, false);
        let (t, stats) = held.run(alpha, theta, |it| progress(&tell(it)));
        grid.push((alpha, score(&t, &held_x, &held_y, d, c).0));
        fits.push(stats);
        weights.push(t.clone());
        theta = t;
    }
    // The best held-out top-1; on a tie, the weaker regularisation.
    let best = (0..grid.len()).fold(0, |b, i| if grid[i].1 >= grid[b].1 { i } else { b });
    let alpha = grid[best].0;
    let tell = report(fits_total, alpha, true);
    let all = Fit { x: &a, y: &y, d, c, opts };
    let (theta, stats) = all.run(alpha, weights.swap_remove(best), |it| progress(&tell(it)));
    fits.push(stats);
    let test_y: Vec<Option<u32>> = test_y.iter().map(|&l| index(l)).collect();
    let (top1, top5) = score(&theta, &b, &test_y, d, c);
    grid.reverse();
    Ok(ProbeResult { top1, top5, alpha, grid, fits })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixco_data::rng::Rng;

    fn blobs(n: usize, classes: u32, spread: f32, seed: u64, random_labels: bool) -> (Features, Vec<u32>) {
        let mut rng = Rng::new(seed);
        let dim = 8;
        let mut data = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let c = (i as u32) % classes;
            for d in 0..dim {
                let centre = if d as u32 % classes == c { 3.0 } else { 0.0 };
                data.push(centre + spread * (rng.uniform() - 0.5));
            }
            y.push(if random_labels { rng.below(classes as u64) as u32 } else { c });
        }
        (Features { data, n, dim }, y)
    }

    #[test]
    fn separable_features_score_near_100_and_random_labels_near_chance() {
        let (a, ya) = blobs(600, 4, 1.0, 1, false);
        let (b, yb) = blobs(200, 4, 1.0, 2, false);
        let r = linear_probe(&a, &ya, &b, &yb).unwrap();
        assert!(r.top1 > 0.98, "{r:?}");
        let (a, ya) = blobs(600, 4, 1.0, 3, true);
        let (b, yb) = blobs(400, 4, 1.0, 4, true);
        let r = linear_probe(&a, &ya, &b, &yb).unwrap();
        assert!((0.15..0.36).contains(&r.top1), "{r:?}");
        assert!(r.top5 >= 0.999, "4 classes: top-5 is everything");
    }

    /// Two mirrored classes on one feature: by symmetry the optimum is
    /// W = (u, -u) with 1/(1 + e^(2u)) = alpha·u/n, solved here by bisection.
    #[test]
    fn mirrored_classes_reach_the_hand_computed_optimum() {
        let n = 40;
        let x: Vec<f32> = (0..n).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
        let y: Vec<u32> = (0..n).map(|i| (i % 2) as u32).collect();
        let alpha = 4.0;
        let (mut lo, mut hi) = (0.0f64, 10.0f64);
        for _ in 0..100 {
            let u = 0.5 * (lo + hi);
            if 1.0 / (1.0 + (2.0 * u).exp()) > alpha * u / n as f64 { lo = u } else { hi = u }
        }
        let (theta, stats) = Fit { x: &x, y: &y, d: 1, c: 2, opts: ProbeOptions::default() }.run(alpha, vec![0.0; 4], |_| {});
        assert_eq!(stats.stop, Stop::Converged, "{stats:?}");
        assert!((theta[0] - lo).abs() < 1e-3 && (theta[1] + lo).abs() < 1e-3, "{theta:?} against u = {lo}");
        let want = (1.0 + (-2.0 * lo).exp()).ln() + alpha / n as f64 * lo * lo;
        assert!((stats.loss - want).abs() < 1e-6, "{} against {want}", stats.loss);
    }

    /// The objective and its gradient with loops in f64, for the reference solve.
    fn slow_loss(x: &[f32], y: &[u32], d: usize, c: usize, theta: &[f64], alpha: f64, grad: &mut [f64]) -> f64 {
        let n = y.len() as f64;
        grad.iter_mut().for_each(|g| *g = 0.0);
        let mut total = 0.0;
        for (row, &label) in x.chunks_exact(d).zip(y) {
            let z: Vec<f64> = (0..c).map(|j| theta[d * c + j] + (0..d).map(|k| row[k] as f64 * theta[k * c + j]).sum::<f64>()).collect();
            let lse = z.iter().map(|v| v.exp()).sum::<f64>().ln();
            total += lse - z[label as usize];
            for j in 0..c {
                let r = (z[j] - lse).exp() - (j == label as usize) as u8 as f64;
                (0..d).for_each(|k| grad[k * c + j] += r * row[k] as f64 / n);
                grad[d * c + j] += r / n;
            }
        }
        (0..d * c).for_each(|i| grad[i] += alpha * theta[i] / n);
        (total + 0.5 * alpha * theta[..d * c].iter().map(|v| v * v).sum::<f64>()) / n
    }

    /// Against plain gradient descent (Armijo backtracking) run to a
    /// gradient of 1e-8 on the slow f64 objective.
    #[test]
    fn agrees_with_a_tight_gradient_descent_solve() {
        let (a, ya) = blobs(150, 3, 6.0, 7, false);
        let (d, c) = (a.dim, 3);
        let alpha = 0.5;
        let mut theta = vec![0.0; (d + 1) * c];
        let mut g = vec![0.0; theta.len()];
        let mut f = slow_loss(&a.data, &ya, d, c, &theta, alpha, &mut g);
        let mut step = 1.0;
        for _ in 0..100_000 {
            if g.iter().all(|v| v.abs() < 1e-8) {
                break;
            }
            let g2: f64 = g.iter().map(|v| v * v).sum();
            let mut g_new = vec![0.0; g.len()];
            loop {
                let t: Vec<f64> = theta.iter().zip(&g).map(|(t, g)| t - step * g).collect();
                let f_new = slow_loss(&a.data, &ya, d, c, &t, alpha, &mut g_new);
                if f_new <= f - 0.5 * step * g2 {
                    (theta, f, g) = (t, f_new, g_new);
                    step *= 2.0;
                    break;
                }
                step *= 0.5;
            }
        }
        assert!(g.iter().all(|v| v.abs() < 1e-8), "the reference converged: {g:?}");
        let (fast, stats) = Fit { x: &a.data, y: &ya, d, c, opts: ProbeOptions::default() }.run(alpha, vec![0.0; theta.len()], |_| {});
        let f_fast = slow_loss(&a.data, &ya, d, c, &fast, alpha, &mut g);
        assert!((f_fast - f).abs() < 1e-3 * f.abs().max(1e-3), "{f_fast} against {f} ({stats:?})");
        assert!((stats.loss - f).abs() < 1e-3 * f.abs().max(1e-3), "{stats:?}");
    }

    #[test]
    fn progress_counts_every_fit_and_the_refit_last() {
        let (a, ya) = blobs(300, 4, 2.0, 5, false);
        let (b, yb) = blobs(100, 4, 2.0, 6, false);
        let mut seen: Vec<ProbeProgress> = Vec::new();
        let r = linear_probe_with(&a, &ya, &b, &yb, ProbeOptions::default(), &mut |p| seen.push(*p)).unwrap();
        assert_eq!(r.fits.len(), 5);
        assert_eq!(seen.iter().filter(|p| p.refit).count(), r.fits[4].iterations);
        assert!(seen.windows(2).all(|w| w[0].fit <= w[1].fit && w[1].fits == 5));
        let last = seen.last().unwrap();
        assert!(last.refit && last.fit == 5 && last.alpha == r.alpha && (last.loss - r.fits[4].loss).abs() < 1e-12);
        assert_eq!(r.fits[..4].iter().map(|f| f.alpha).collect::<Vec<_>>(), vec![10.0, 1.0, 0.1, 0.01]);
    }

    #[test]
    fn labels_need_not_be_dense_and_unseen_test_labels_count_wrong() {
        let (a, ya) = blobs(400, 4, 1.0, 8, false);
        let (b, yb) = blobs(100, 4, 1.0, 9, false);
        // Classes 0..4 renamed 3, 10, 11, 40; one test label unseen in training.
        let rename = |l: &u32| [3, 10, 11, 40][*l as usize];
        let (ya, mut yb): (Vec<u32>, Vec<u32>) = (ya.iter().map(rename).collect(), yb.iter().map(rename).collect());
        yb[0] = 7;
        let r = linear_probe(&a, &ya, &b, &yb).unwrap();
        assert!((r.top1 - 0.99).abs() < 1e-9, "all but the unseen one: {r:?}");
    }

    #[test]
    fn mismatched_shapes_are_an_error() {
        let (a, ya) = blobs(100, 2, 1.0, 1, false);
        let (b, yb) = blobs(10, 2, 1.0, 2, false);
        let e = linear_probe(&a, &ya[..50], &b, &yb).unwrap_err().to_string();
        assert!(e.contains("100 x 8 training features with 50 labels"), "{e}");
        let mut nan = b.data.clone();
        nan[19] = f32::NAN;
        let e = linear_probe(&a, &ya, &Features { data: nan, ..b }, &yb).unwrap_err().to_string();
        assert_eq!(e, "linear probe: test feature 3 of row 2 is NaN");
    }

    /// Sums over samples are taken in a fixed order whatever the threads do.
    #[test]
    fn repeated_runs_give_the_same_bits() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(4).build().unwrap();
        let (a, ya) = blobs(6000, 7, 6.0, 11, false);
        let (b, yb) = blobs(500, 7, 6.0, 12, false);
        let runs: Vec<ProbeResult> = (0..4).map(|_| pool.install(|| linear_probe(&a, &ya, &b, &yb).unwrap())).collect();
        for r in &runs[1..] {
            let same = r.fits.iter().zip(&runs[0].fits).all(|(x, y)| x.loss.to_bits() == y.loss.to_bits() && x.iterations == y.iterations);
            assert!(same && r.top1 == runs[0].top1, "{:?} against {:?}", r.fits, runs[0].fits);
        }
    }
}
