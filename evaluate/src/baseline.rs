//! The random-initialisation baseline: an encoder of the same architecture
//! with torchvision's initialisation (Kaiming-normal convolutions, BN at
//! identity), exported like a trained one.

use crate::model::{EncoderModel, ModelError};
use mixco_data::rng::Rng;
use mixco_model::arch::{TensorKind, TensorSpec};
use mixco_model::{Checkpoint, HeadSpec, HostTensor, ModelConfig};
use std::path::Path;

fn normal(rng: &mut Rng) -> f32 {
    // Box-Muller.
    let u1 = rng.uniform().max(1e-7);
    let u2 = rng.uniform();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

fn init(spec: &TensorSpec, rng: &mut Rng) -> HostTensor {
    let n: usize = spec.shape.iter().product();
    let name = spec.name.as_str();
    match spec.kind {
        TensorKind::Counter => HostTensor::i64(spec.shape.clone(), vec![0; n]),
        _ if spec.shape.len() == 4 => {
            let fan_out = (spec.shape[0] * spec.shape[2] * spec.shape[3]) as f32;
            let std = (2.0 / fan_out).sqrt();
            HostTensor::f32(spec.shape.clone(), (0..n).map(|_| normal(rng) * std).collect())
        }
        _ if name.ends_with("running_var") || (name.ends_with(".weight") && spec.shape.len() == 1) => HostTensor::f32(spec.shape.clone(), vec![1.0; n]),
        _ => HostTensor::f32(spec.shape.clone(), vec![0.0; n]),
    }
}

/// The most parameters a random baseline is built with (1 GB of float32;
/// ResNet-50 at width 64 has 23.5 million, at width 128 94 million).
pub const MAX_BASELINE_PARAMETERS: usize = 250_000_000;

/// A random encoder matching `model`'s architecture, input size and normalisation.
pub fn random_like(model: &EncoderModel, seed: u64) -> Result<EncoderModel, ModelError> {
    let path = Path::new(&model.name);
    let (arch, _, mean, std) = ModelConfig::encoder_fields(path, &model.metadata)
        .map_err(|e| ModelError::Invalid { path: path.into(), problem: format!("cannot build the random baseline: {e}") })?;
    let parameters: usize = arch.backbone().tensors().iter().map(|t| t.shape.iter().product::<usize>()).sum();
    if parameters > MAX_BASELINE_PARAMETERS {
        let problem = format!(
            "metadata field `width`: {} at width {} has {parameters} parameters, over the random baseline's limit of {MAX_BASELINE_PARAMETERS}",
            arch.depth, arch.width
        );
        return Err(ModelError::Invalid { path: path.into(), problem });
    }
    let feat = arch.backbone().feature_dim;
    let cfg = ModelConfig { arch, head: HeadSpec { in_dim: feat, hidden: feat, out_dim: 128 }, method: "random".into(), mixco: false, input_size: model.input_size, mean, std };
    let mut ck = Checkpoint::default();
    cfg.to_metadata(&mut ck.metadata);
    let mut rng = Rng::new(seed);
    for spec in cfg.arch.backbone().tensors() {
        let t = init(&spec, &mut rng);
        ck.tensors.insert(spec.name, t);
    }
    let exported = mixco_export::export(&ck, path, "random-initialisation", &Default::default())?;
    EncoderModel::from_onnx(path, format!("random {}", cfg.arch.name()), exported.bytes)
}
