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
