//! The libtorch forward pass of a checkpoint's encoder, in evaluation mode:
//! the reference that exported ONNX models are checked against.

use crate::encoder::Encoder;
use crate::nn::BnMode;
use mixco_model::{Checkpoint, CheckpointError};
use std::path::Path;
use tch::{Device, Tensor};

/// Outputs `features` (and `projection` with `head`) for images in [0, 1]
/// (`[n, 3, size, size]`, flat), normalised with the checkpoint's mean/std.
pub fn forward(ck: &Checkpoint, path: &Path, images: &[f32], n: usize, size: usize, head: bool) -> Result<Vec<(String, Vec<f32>)>, CheckpointError> {
    let cfg = ck.config(path)?;
    ck.check_tensors(path, &cfg.tensors(""))?;
    let enc = Encoder::new(&cfg, Device::Cpu);
    enc.store.load(ck, "");
    let x = Tensor::from_slice(images).view([n as i64, 3, size as i64, size as i64]);
    let mean = Tensor::from_slice(&cfg.mean).view([1, 3, 1, 1]);
    let std = Tensor::from_slice(&cfg.std).view([1, 3, 1, 1]);
    let x = (x - mean) / std;
    let (f, z) = tch::no_grad(|| enc.forward(&x, BnMode::Eval));
    let flat = |t: &Tensor| Vec::<f32>::try_from(t.contiguous().view(-1)).expect("float tensor");
    let mut out = vec![("features".to_string(), flat(&f))];
    if head {
        out.push(("projection".to_string(), flat(&z)));
    }
    Ok(out)
}

/// One output of one batch, ONNX Runtime against libtorch.
#[derive(Clone, Debug)]
pub struct Comparison {
    pub batch: usize,
    pub output: String,
    /// Largest |ONNX Runtime - libtorch|.
    pub max_diff: f64,
    /// Largest |libtorch|.
    pub max_abs: f64,
    /// The largest difference that passes.
    pub allowed: f64,
}

impl Comparison {
    pub fn passed(&self) -> bool {
        self.max_diff <= self.allowed // false for NaN
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Session(#[from] mixco_eval::session::SessionError),
    #[error("output `{output}` has {got} values, libtorch gives {want}")]
    Length { output: String, got: usize, want: usize },
}

/// Export's guarantee: runs the ONNX model `onnx` with ONNX Runtime on
/// random batches of 1 and 7 images and compares every output with the
/// libtorch forward pass of checkpoint `ck` (read from `path`). An output
/// passes when its largest difference is at most `tolerance` x max(1,
/// largest |output|): absolute for outputs of order 1, relative beyond.
/// Returns the comparisons, up to and including the first that fails.
pub fn verify_export(ck: &Checkpoint, path: &Path, onnx: &[u8], input_size: usize, head: bool, tolerance: f64) -> Result<Vec<Comparison>, VerifyError> {
    let mut session = mixco_eval::session::OnnxModel::from_bytes(&path.display().to_string(), onnx, 0)?;
    let s = input_size;
    let mut rng = mixco_data::rng::Rng::new(0x0_11C5);
    let mut done = Vec::new();
    for n in [1usize, 7] {
        let images: Vec<f32> = (0..n * 3 * s * s).map(|_| rng.uniform()).collect();
        for (output, want) in forward(ck, path, &images, n, s, head)? {
            let (_, got) = session.run(&images, n, s, &output)?;
            if got.len() != want.len() {
                return Err(VerifyError::Length { output, got: got.len(), want: want.len() });
            }
            let max_diff = largest(got.iter().zip(&want).map(|(a, b)| (a - b).abs() as f64));
            let max_abs = largest(want.iter().map(|v| v.abs() as f64));
            let c = Comparison { batch: n, output, max_diff, max_abs, allowed: tolerance * max_abs.max(1.0) };
            let passed = c.passed();
            done.push(c);
            if !passed {
                return Ok(done);
            }
        }
    }
    Ok(done)
}

/// The largest value, or NaN if any is NaN (f64::max would drop it, and an
/// all-NaN output once verified as "max difference 0").
fn largest(values: impl Iterator<Item = f64>) -> f64 {
    values.fold(0.0, |m, d| if m.is_nan() || d.is_nan() { f64::NAN } else { m.max(d) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nan_anywhere_fails_the_comparison() {
        assert_eq!(largest([0.5, 2.0, 1.0].into_iter()), 2.0);
        let nan = largest([0.5, f64::NAN, 1.0].into_iter());
        assert!(nan.is_nan());
        let c = Comparison { batch: 1, output: "features".into(), max_diff: nan, max_abs: 1.0, allowed: 1e-4 };
        assert!(!c.passed());
    }
}
