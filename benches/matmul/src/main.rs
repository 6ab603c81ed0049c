//! X·W and Xᵀ·D, the linear probe's two products (X: rows x 129 features
//! with the intercept column, W: 129 x classes, D: rows x classes), f32,
//! row-major, on matrixmultiply, gemm and faer; best of 5 after a warm-up.
//!
//!     RAYON_NUM_THREADS=2 cargo run --release --manifest-path benches/matmul/Cargo.toml -- ROWS CLASSES
use std::time::Instant;
fn best<F: FnMut()>(mut f: F) -> f64 { f(); let mut b = f64::MAX; for _ in 0..5 { let t = Instant::now(); f(); b = b.min(t.elapsed().as_secs_f64()); } b }
fn main() {
    let n: usize = std::env::args().nth(1).unwrap().parse().unwrap();
    let d = 129; let c: usize = std::env::args().nth(2).unwrap().parse().unwrap();
    let x: Vec<f32> = (0..n*d).map(|i| ((i * 7919) % 1000) as f32 / 1000.0).collect();
    let w: Vec<f32> = (0..d*c).map(|i| ((i * 31) % 100) as f32 / 100.0).collect();
    let g: Vec<f32> = (0..n*c).map(|i| ((i * 13) % 100) as f32 / 100.0).collect();
    let mut out = vec![0f32; n*c];
    let mut gw = vec![0f32; d*c];
    let flop = 2.0 * n as f64 * d as f64 * c as f64;
    // XW: (n x d)(d x c), row-major
    let t = best(|| unsafe { matrixmultiply::sgemm(n, d, c, 1.0, x.as_ptr(), d as isize, 1, w.as_ptr(), c as isize, 1, 0.0, out.as_mut_ptr(), c as isize, 1) });
    let t2 = best(|| unsafe { matrixmultiply::sgemm(d, n, c, 1.0, x.as_ptr(), 1, d as isize, g.as_ptr(), c as isize, 1, 0.0, gw.as_mut_ptr(), c as isize, 1) });
    println!("matrixmultiply XW {:.1} GF/s  XtG {:.1} GF/s", flop / t / 1e9, flop / t2 / 1e9);
    let threads = rayon::current_num_threads();
    let par = gemm::Parallelism::Rayon(threads);
    let t = best(|| unsafe { gemm::gemm(n, c, d, out.as_mut_ptr(), 1, c as isize, false, x.as_ptr(), 1, d as isize, w.as_ptr(), 1, c as isize, 0.0f32, 1.0f32, false, false, false, par) });
    let t2 = best(|| unsafe { gemm::gemm(d, c, n, gw.as_mut_ptr(), 1, c as isize, false, x.as_ptr(), d as isize, 1, g.as_ptr(), 1, c as isize, 0.0f32, 1.0f32, false, false, false, par) });
    println!("gemm           XW {:.1} GF/s  XtG {:.1} GF/s", flop / t / 1e9, flop / t2 / 1e9);
    use faer::{MatRef, MatMut, Par, Accum};
    let t = best(|| { let a = MatRef::from_row_major_slice(&x, n, d); let b = MatRef::from_row_major_slice(&w, d, c); let o = MatMut::from_row_major_slice_mut(&mut out, n, c); faer::linalg::matmul::matmul(o, Accum::Replace, a, b, 1.0f32, Par::rayon(threads)); });
    let t2 = best(|| { let a = MatRef::from_row_major_slice(&x, n, d); let b = MatRef::from_row_major_slice(&g, n, c); let o = MatMut::from_row_major_slice_mut(&mut gw, d, c); faer::linalg::matmul::matmul(o, Accum::Replace, a.transpose(), b, 1.0f32, Par::rayon(threads)); });
    println!("faer           XW {:.1} GF/s  XtG {:.1} GF/s", flop / t / 1e9, flop / t2 / 1e9);
    println!("{}", out[5] + gw[3]);
}
