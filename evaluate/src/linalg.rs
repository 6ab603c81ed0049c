//! Dense f32 matrix products (row-major slices) on faer, the probe's and
//! kNN's only heavy arithmetic. faer was measured against matrixmultiply and
//! gemm on the probe's shapes (docs/BENCHMARKS.md): as fast for X·W and
//! 1.6-1.8x faster for Xᵀ·D, whose inner dimension is the sample count.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

fn par() -> Par {
    match rayon::current_num_threads() {
        0 | 1 => Par::Seq,
        n => Par::rayon(n),
    }
}

/// `out (m x n) = a (m x k) · b (k x n)`.
pub fn mul(a: &[f32], b: &[f32], out: &mut [f32], m: usize, k: usize, n: usize) {
    let a = MatRef::from_row_major_slice(a, m, k);
    let b = MatRef::from_row_major_slice(b, k, n);
    matmul(MatMut::from_row_major_slice_mut(out, m, n), Accum::Replace, a, b, 1.0f32, par());
}

/// `out (m x n) = aᵀ · b` for `a (k x m)` and `b (k x n)`.
pub fn mul_tn(a: &[f32], b: &[f32], out: &mut [f32], k: usize, m: usize, n: usize) {
    let a = MatRef::from_row_major_slice(a, k, m);
    let b = MatRef::from_row_major_slice(b, k, n);
    matmul(MatMut::from_row_major_slice_mut(out, m, n), Accum::Replace, a.transpose(), b, 1.0f32, par());
}

/// `out (m x n) = a · bᵀ` for `a (m x k)` and `b (n x k)`.
pub fn mul_nt(a: &[f32], b: &[f32], out: &mut [f32], m: usize, k: usize, n: usize) {
    let a = MatRef::from_row_major_slice(a, m, k);
    let b = MatRef::from_row_major_slice(b, n, k);
    matmul(MatMut::from_row_major_slice_mut(out, m, n), Accum::Replace, a, b.transpose(), 1.0f32, par());
}

/// Median seconds of the probe's two products on `rows x dim` features and
/// `classes` outputs (X·W and Xᵀ·D), over `repeat` runs after a warm-up:
/// the rate that sets the probe's arithmetic floor on this machine.
pub fn time_products(rows: usize, dim: usize, classes: usize, repeat: usize) -> (f64, f64) {
    let x: Vec<f32> = (0..rows * dim).map(|i| (i % 17) as f32 - 8.0).collect();
    let w: Vec<f32> = (0..dim * classes).map(|i| (i % 5) as f32).collect();
    let mut z = vec![0.0f32; rows * classes];
    let mut g = vec![0.0f32; dim * classes];
    let median = |mut f: Box<dyn FnMut() + '_>| {
        f();
        let mut t: Vec<f64> = (0..repeat.max(1)).map(|_| { let s = std::time::Instant::now(); f(); s.elapsed().as_secs_f64() }).collect();
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    };
    let xw = median(Box::new(|| mul(&x, &w, &mut z, rows, dim, classes)));
    let z2 = z.clone();
    let xtd = median(Box::new(|| mul_tn(&x, &z2, &mut g, rows, dim, classes)));
    (xw, xtd)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the triple loop, on shapes that are not multiples of any block.
    #[test]
    fn products_match_the_definition() {
        let (m, k, n) = (37, 19, 23);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 - 5.0).collect();
        let naive = |i: usize, j: usize| (0..k).map(|l| a[i * k + l] * b[l * n + j]).sum::<f32>();
        let mut out = vec![0.0; m * n];
        mul(&a, &b, &mut out, m, k, n);
        assert!((0..m * n).all(|e| out[e] == naive(e / n, e % n)));
        // aᵀ of a (m x k) stored as (k x m): transpose a by hand.
        let at: Vec<f32> = (0..k * m).map(|e| a[(e % m) * k + e / m]).collect();
        mul_tn(&at, &b, &mut out, k, m, n);
        assert!((0..m * n).all(|e| out[e] == naive(e / n, e % n)));
        let bt: Vec<f32> = (0..n * k).map(|e| b[(e % k) * n + e / k]).collect();
        mul_nt(&a, &bt, &mut out, m, k, n);
        assert!((0..m * n).all(|e| out[e] == naive(e / n, e % n)));
    }
}
