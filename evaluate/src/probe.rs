//! The linear probe: multinomial logistic regression (`linfa-logistic`,
//! L-BFGS) on standardised frozen features. The L2 strength is chosen on a
//! held-out 10% of the training split (every 10th sample), then the model is
//! refitted on the whole training split and scored on the test split.

use crate::features::Features;
use linfa::prelude::*;
use linfa_logistic::MultiLogisticRegression;
use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::Serialize;

pub const ALPHAS: [f64; 4] = [1e-2, 1e-1, 1.0, 10.0];

#[derive(Clone, Debug, Serialize)]
pub struct ProbeResult {
    pub top1: f64,
    pub top5: f64,
    pub alpha: f64,
    /// (alpha, held-out top-1) for each candidate.
    pub grid: Vec<(f64, f64)>,
}

#[derive(Debug, thiserror::Error)]
#[error("linear probe: {0}")]
pub struct ProbeError(String);

fn standardise(train: &Features, test: &Features) -> (Array2<f64>, Array2<f64>) {
    let a = ArrayView2::from_shape((train.n, train.dim), &train.data).unwrap().mapv(|v| v as f64);
    let b = ArrayView2::from_shape((test.n, test.dim), &test.data).unwrap().mapv(|v| v as f64);
    let mean = a.mean_axis(Axis(0)).unwrap();
    let std = a.std_axis(Axis(0), 0.0).mapv(|s| if s > 1e-8 { s } else { 1.0 });
    ((&a - &mean) / &std, (&b - &mean) / &std)
}

type Fitted = linfa_logistic::MultiFittedLogisticRegression<f64, usize>;

/// Fits from `start` (a neighbouring fit's weights) when given: warm starts
/// along the L2 grid and into the final refit.
fn fit(x: &Array2<f64>, y: &Array1<usize>, alpha: f64, start: Option<&Fitted>) -> Result<Fitted, ProbeError> {
    // 100 L-BFGS iterations, as scikit-learn's default: with warm starts the
    // accuracy equals 200 cold iterations' (docs/BENCHMARKS.md).
    let mut params = MultiLogisticRegression::default().alpha(alpha).max_iterations(100);
    if let Some(m) = start {
        let mut w = m.params().clone();
        w.push_row(m.intercept().view()).expect("intercept has one entry per class");
        params = params.initial_params(w);
    }
    params.fit(&Dataset::new(x.clone(), y.clone())).map_err(|e| ProbeError(e.to_string()))
}

/// (top-1, top-5) of a fitted model.
fn score(model: &linfa_logistic::MultiFittedLogisticRegression<f64, usize>, x: &Array2<f64>, y: &[u32]) -> (f64, f64) {
    let probs = model.predict_probabilities(x);
    let classes = model.classes();
    let (mut top1, mut top5) = (0, 0);
    for (row, &label) in probs.axis_iter(Axis(0)).zip(y) {
        let mut order: Vec<usize> = (0..classes.len()).collect();
        order.sort_by(|&i, &j| row[j].partial_cmp(&row[i]).unwrap_or(std::cmp::Ordering::Equal));
        let label = label as usize;
        if classes[order[0]] == label {
            top1 += 1;
        }
        if order.iter().take(5).any(|&i| classes[i] == label) {
            top5 += 1;
        }
    }
    let n = y.len().max(1) as f64;
    (top1 as f64 / n, top5 as f64 / n)
}

pub fn linear_probe(train: &Features, train_y: &[u32], test: &Features, test_y: &[u32]) -> Result<ProbeResult, ProbeError> {
    if train.n < 10 || test.n == 0 {
        return Err(ProbeError(format!("needs at least 10 training and 1 test images, got {} and {}", train.n, test.n)));
    }
    let (a, b) = standardise(train, test);
    let y: Array1<usize> = train_y.iter().map(|&l| l as usize).collect();
    let held: Vec<usize> = (0..train.n).filter(|i| i % 10 == 9).collect();
    let kept: Vec<usize> = (0..train.n).filter(|i| i % 10 != 9).collect();
    let (fit_x, fit_y) = (a.select(Axis(0), &kept), y.select(Axis(0), &kept));
    let held_x = a.select(Axis(0), &held);
    let held_y: Vec<u32> = held.iter().map(|&i| train_y[i]).collect();
    // From the strongest regularisation down, each fit starting from the last.
    let mut grid = Vec::new();
    let mut fits: Vec<Fitted> = Vec::new();
    for &alpha in ALPHAS.iter().rev() {
        let model = fit(&fit_x, &fit_y, alpha, fits.last())?;
        grid.push((alpha, score(&model, &held_x, &held_y).0));
        fits.push(model);
    }
    grid.reverse();
    fits.reverse();
    let best = (0..grid.len()).fold(0, |b, i| if grid[i].1 > grid[b].1 { i } else { b });
    let alpha = grid[best].0;
    let same_classes = fits[best].classes().len() == { let mut c: Vec<usize> = y.to_vec(); c.sort_unstable(); c.dedup(); c.len() };
    let model = fit(&a, &y, alpha, same_classes.then(|| &fits[best]))?;
    let (top1, top5) = score(&model, &b, test_y);
    Ok(ProbeResult { top1, top5, alpha, grid })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixco_data::synthetic::Rng;

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
}
