//! The multinomial logistic (softmax cross-entropy) objective of the linear
//! probe, per sample as scikit-learn scales it:
//!
//! F(W, b) = 1/n Σᵢ [log Σⱼ exp(zᵢⱼ) - zᵢ,yᵢ] + α/(2n) ‖W‖², z = XW + b,
//!
//! which has the minimiser of linfa's and scikit-learn's summed form with
//! C = 1/α (the intercept b is not penalised). Its cost is two f32 matrix
//! products per evaluation (XW and Xᵀ(P - Y)); sums over samples are
//! accumulated in f64.
//!
//! ```
//! use mixco_eval::softmax_loss::SoftmaxLoss;
//! // Two samples, one feature, two classes; at W = 0, b = 0 every class
//! // has probability 1/2, so F = ln 2.
//! let mut loss = SoftmaxLoss::new(&[1.0, -1.0], &[0, 1], 2, 1, 2);
//! let mut grad = vec![0.0; loss.len()];
//! let f = loss.eval(&vec![0.0; loss.len()], 1.0, &mut grad);
//! assert!((f - 2f64.ln()).abs() < 1e-7);
//! // dF/dW = 1/n Xᵀ(P - Y): sample 0 (x = 1) pulls class 0 up.
//! assert!((grad[0] + 0.5).abs() < 1e-7 && (grad[1] - 0.5).abs() < 1e-7);
//! ```

use crate::linalg;
use rayon::prelude::*;

/// Rows per parallel task in the softmax pass.
const ROWS: usize = 256;

pub struct SoftmaxLoss<'a> {
    x: &'a [f32],
    y: &'a [u32],
    n: usize,
    d: usize,
    c: usize,
    // Scratch reused by every evaluation: logits / P - Y, W in f32, XᵀD.
    z: Vec<f32>,
    w: Vec<f32>,
    gw: Vec<f32>,
}

impl<'a> SoftmaxLoss<'a> {
    /// `x`: n rows of d features (row-major); `y`: class indices below `c`.
    pub fn new(x: &'a [f32], y: &'a [u32], n: usize, d: usize, c: usize) -> SoftmaxLoss<'a> {
        assert_eq!(x.len(), n * d, "features shape");
        assert_eq!(y.len(), n, "one label per row");
        assert!(y.iter().all(|&l| (l as usize) < c), "labels below the class count");
        SoftmaxLoss { x, y, n, d, c, z: vec![0.0; n * c], w: vec![0.0; d * c], gw: vec![0.0; d * c] }
    }

    /// Parameters: W (d x c, row-major) then b (c).
    pub fn len(&self) -> usize {
        (self.d + 1) * self.c
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// F at `theta` with L2 strength `alpha`; writes ∇F into `grad`.
    pub fn eval(&mut self, theta: &[f64], alpha: f64, grad: &mut [f64]) -> f64 {
        let (n, d, c) = (self.n, self.d, self.c);
        let (w, b) = theta.split_at(d * c);
        self.w.iter_mut().zip(w).for_each(|(o, &v)| *o = v as f32);
        linalg::mul(self.x, &self.w, &mut self.z, n, d, c);
        let (loss, colsum) = residuals(&mut self.z, self.y, b, c);
        linalg::mul_tn(self.x, &self.z, &mut self.gw, n, d, c);
        let inv_n = 1.0 / n as f64;
        for ((g, &gw), &w) in grad.iter_mut().zip(&self.gw).zip(w) {
            *g = (gw as f64 + alpha * w) * inv_n;
        }
        grad[d * c..].iter_mut().zip(&colsum).for_each(|(g, s)| *g = s * inv_n);
        let w2: f64 = w.iter().map(|v| v * v).sum();
        (loss + 0.5 * alpha * w2) * inv_n
    }
}

/// Turns logits `z` (n x c, without the bias) into P - Y in place; returns
/// the summed cross-entropy and P - Y's column sums (the bias gradient).
/// Per row: bias and maximum in one pass, exp and its sum in a second,
/// scaling and column sums in a third (rows are short: 10-200 classes).
fn residuals(z: &mut [f32], y: &[u32], b: &[f64], c: usize) -> (f64, Vec<f64>) {
    let b: Vec<f32> = b.iter().map(|&v| v as f32).collect();
    // Collected in block order and summed in that order: rayon's `reduce`
    // associates as its work splits fall, which made runs differ in the
    // last bits and, through L-BFGS, in their final iterations.
    let blocks: Vec<(f64, Vec<f64>)> = z.par_chunks_mut(ROWS * c).zip(y.par_chunks(ROWS)).map(|(block, labels)| block_residuals(block, labels, &b, c)).collect();
    let mut colsum = vec![0.0; c];
    let mut loss = 0.0;
    for (l, cs) in &blocks {
        loss += l;
        colsum.iter_mut().zip(cs).for_each(|(a, b)| *a += b);
    }
    (loss, colsum)
}

/// One block of rows of [`residuals`]: (summed cross-entropy, column sums).
/// Compiled for AVX2 where the CPU has it (8 lanes instead of SSE2's 4; the
/// same operations in the same order, so the same bits).
fn block_residuals(block: &mut [f32], labels: &[u32], b: &[f32], c: usize) -> (f64, Vec<f64>) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked on the line above.
        return unsafe { block_residuals_avx2(block, labels, b, c) };
    }
    block_residuals_any(block, labels, b, c)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn block_residuals_avx2(block: &mut [f32], labels: &[u32], b: &[f32], c: usize) -> (f64, Vec<f64>) {
    block_residuals_any(block, labels, b, c)
}

#[inline(always)]
fn block_residuals_any(block: &mut [f32], labels: &[u32], b: &[f32], c: usize) -> (f64, Vec<f64>) {
    // f32 within a block of rows, f64 across blocks.
    let mut colsum = vec![0.0f32; c];
    let mut loss = 0.0f64;
    for (row, &label) in block.chunks_exact_mut(c).zip(labels) {
        let max = add_max(row, &b);
        let picked = row[label as usize] - max;
        let sum = exp_shifted(row, max);
        loss += (sum as f64).ln() - picked as f64;
        let inv = 1.0 / sum;
        for (v, s) in row.iter_mut().zip(&mut colsum) {
            *v *= inv;
            *s += *v;
        }
        row[label as usize] -= 1.0;
        colsum[label as usize] -= 1.0;
    }
    (loss, colsum.iter().map(|&v| v as f64).collect::<Vec<f64>>())
}

/// `v = exp(v - shift)` in place (for `shift` >= every entry); returns the
/// sum, in eight lanes so that the loop vectorises (a float sum in one
/// accumulator is a serial chain the compiler may not reorder).
#[inline(always)]
fn exp_shifted(v: &mut [f32], shift: f32) -> f32 {
    let mut lanes = [0.0f32; 8];
    let mut chunks = v.chunks_exact_mut(8);
    for chunk in &mut chunks {
        for (x, s) in chunk.iter_mut().zip(&mut lanes) {
            *x = exp_nonpositive(*x - shift);
            *s += *x;
        }
    }
    let mut sum: f32 = lanes.iter().sum();
    for x in chunks.into_remainder() {
        *x = exp_nonpositive(*x - shift);
        sum += *x;
    }
    sum
}

/// Adds `b` to `row` and returns the new maximum (in eight lanes, as above).
#[inline(always)]
fn add_max(row: &mut [f32], b: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut chunks = row.chunks_exact_mut(8);
    let mut bias = b.chunks_exact(8);
    for (chunk, bc) in (&mut chunks).zip(&mut bias) {
        for ((x, b), m) in chunk.iter_mut().zip(bc).zip(&mut lanes) {
            *x += b;
            *m = if *x > *m { *x } else { *m };
        }
    }
    let mut max = lanes.iter().fold(f32::NEG_INFINITY, |a, &m| if m > a { m } else { a });
    for (x, b) in chunks.into_remainder().iter_mut().zip(bias.remainder()) {
        *x += b;
        max = if *x > max { *x } else { max };
    }
    max
}

/// exp of values <= 0 (logits minus their row's maximum), within 2 ulp of
/// libm's over [-87, 0] and exactly 0-ish (1e-38) below: branch-free, so the
/// compiler vectorises it, which libm's `expf` is not (about 4x here, where
/// the softmax is the probe's largest cost after the two products).
pub fn exp_in_place(v: &mut [f32]) {
    v.iter_mut().for_each(|x| *x = exp_nonpositive(*x));
}

#[inline(always)]
fn exp_nonpositive(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two so that n·ln2 is exact in the first part (Cephes).
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding then subtracting 1.5·2^23 rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let t = if x > -87.0 { x } else { -87.0 };
    let n = (t * LOG2E + ROUND) - ROUND;
    let r = (t - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_matches_libm() {
        let mut worst = 0.0f64;
        for i in 0..=200_000 {
            let x = -87.0 * i as f32 / 200_000.0;
            let mut v = [x];
            exp_in_place(&mut v);
            let want = (x as f64).exp();
            worst = worst.max((v[0] as f64 - want).abs() / want);
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        let mut v = [-200.0f32, f32::NEG_INFINITY, 0.0];
        exp_in_place(&mut v);
        assert!(v[0] < 1e-37 && v[1] < 1e-37 && v[0] >= 0.0 && v[1] >= 0.0 && v[2] == 1.0, "{v:?}");
    }

    #[test]
    fn the_avx2_path_gives_the_same_bits() {
        let (n, c) = (300, 37);
        let mut rng = mixco_data::rng::Rng::new(9);
        let z: Vec<f32> = (0..n * c).map(|_| rng.range(-30.0, 30.0)).collect();
        let y: Vec<u32> = (0..n).map(|_| rng.below(c as u64) as u32).collect();
        let b: Vec<f32> = (0..c).map(|_| rng.range(-1.0, 1.0)).collect();
        let (mut z1, mut z2) = (z.clone(), z);
        let (l1, c1) = block_residuals(&mut z1, &y, &b, c);
        let (l2, c2) = block_residuals_any(&mut z2, &y, &b, c);
        assert_eq!(l1.to_bits(), l2.to_bits());
        assert!(c1.iter().zip(&c2).all(|(a, b)| a.to_bits() == b.to_bits()));
        assert!(z1.iter().zip(&z2).all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    /// The objective written out with loops in f64, for checking.
    fn slow(x: &[f32], y: &[u32], d: usize, c: usize, theta: &[f64], alpha: f64) -> f64 {
        let n = y.len();
        let mut total = 0.0;
        for i in 0..n {
            let z: Vec<f64> = (0..c).map(|j| theta[d * c + j] + (0..d).map(|k| x[i * d + k] as f64 * theta[k * c + j]).sum::<f64>()).collect();
            let lse = z.iter().map(|v| v.exp()).sum::<f64>().ln();
            total += lse - z[y[i] as usize];
        }
        let w2: f64 = theta[..d * c].iter().map(|v| v * v).sum();
        (total + 0.5 * alpha * w2) / n as f64
    }

    #[test]
    fn value_and_gradient_match_the_definition() {
        let (n, d, c) = (300, 7, 5);
        let mut rng = mixco_data::rng::Rng::new(3);
        let x: Vec<f32> = (0..n * d).map(|_| rng.range(-2.0, 2.0)).collect();
        let y: Vec<u32> = (0..n).map(|_| rng.below(c as u64) as u32).collect();
        let theta: Vec<f64> = (0..(d + 1) * c).map(|_| rng.range(-1.0, 1.0) as f64).collect();
        let mut loss = SoftmaxLoss::new(&x, &y, n, d, c);
        let mut grad = vec![0.0; loss.len()];
        let alpha = 3.0;
        let f = loss.eval(&theta, alpha, &mut grad);
        assert!((f - slow(&x, &y, d, c, &theta, alpha)).abs() < 1e-5, "{f}");
        // Central differences of the slow form, in every coordinate.
        for i in 0..theta.len() {
            let h = 1e-4;
            let (mut up, mut down) = (theta.clone(), theta.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (slow(&x, &y, d, c, &up, alpha) - slow(&x, &y, d, c, &down, alpha)) / (2.0 * h);
            assert!((grad[i] - numeric).abs() < 1e-5, "coordinate {i}: {} against {numeric}", grad[i]);
        }
    }
}
