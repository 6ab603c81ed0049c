//! Export without libtorch: a checkpoint built in plain Rust becomes a model
//! that ONNX Runtime runs, with batch norm folded exactly.

use mixco_export::{export, proto::ModelProto, ExportOptions};
use mixco_model::arch::TensorKind;
use mixco_model::{ArchSpec, Checkpoint, HeadSpec, HostTensor, ModelConfig, Stem};
use prost::Message;
use std::path::Path;

fn config(depth: mixco_model::Depth, stem: Stem) -> ModelConfig {
    let arch = ArchSpec { depth, width: 4, stem };
    let feat = arch.backbone().feature_dim;
    ModelConfig { arch, head: HeadSpec { in_dim: feat, hidden: feat, out_dim: 8 }, method: "simclr".into(), mixco: false, input_size: 16, mean: [0.5, 0.4, 0.3], std: [0.25, 0.2, 0.3] }
}

/// Deterministic pseudo-random weights; BN variances positive.
fn checkpoint(cfg: &ModelConfig) -> Checkpoint {
    let mut ck = Checkpoint::default();
    cfg.to_metadata(&mut ck.metadata);
    let mut seed = 1u64;
    let mut next = move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    };
    for s in cfg.tensors("") {
        let n: usize = s.shape.iter().product();
        let t = match s.kind {
            TensorKind::Counter => HostTensor::i64(s.shape, vec![1; n]),
            _ if s.name.ends_with("running_var") => HostTensor::f32(s.shape, (0..n).map(|_| 0.5 + next()).collect()),
            _ => HostTensor::f32(s.shape, (0..n).map(|_| next()).collect()),
        };
        ck.tensors.insert(s.name, t);
    }
    ck
}

#[test]
fn exports_run_in_onnx_runtime_without_libtorch() {
    for (depth, stem) in [(mixco_model::Depth::Resnet10, Stem::Cifar), (mixco_model::Depth::Resnet50, Stem::Imagenet)] {
        let cfg = config(depth, stem);
        let ck = checkpoint(&cfg);
        let model = export(&ck, Path::new("m.safetensors"), &"0".repeat(64), &ExportOptions { head: true, opset: 17 }).unwrap();
        let proto = ModelProto::decode(model.bytes.as_slice()).unwrap();
        let graph = proto.graph.unwrap();
        let convs = graph.node.iter().filter(|n| n.op_type == "Conv").count();
        assert_eq!(convs, cfg.arch.backbone().conv_bns().count());
        let mut onnx = mixco_eval::session::OnnxModel::from_bytes("m.onnx", &model.bytes, 1).unwrap();
        let images = vec![0.5f32; 3 * 3 * 16 * 16];
        let (shape, f) = onnx.run(&images, 3, 16, "features").unwrap();
        assert_eq!(shape, vec![3, cfg.arch.backbone().feature_dim]);
        assert!(f.iter().all(|v| v.is_finite()));
        // Identical images give identical rows.
        let d = shape[1];
        assert_eq!(f[..d], f[d..2 * d]);
        let (shape, _) = onnx.run(&images, 3, 16, "projection").unwrap();
        assert_eq!(shape, vec![3, 8]);
    }
}

#[test]
fn opset_out_of_range_is_refused() {
    let cfg = config(mixco_model::Depth::Resnet10, Stem::Cifar);
    let e = export(&checkpoint(&cfg), Path::new("m"), "", &ExportOptions { head: false, opset: 13 }).err().unwrap();
    assert_eq!(e.to_string(), "opset 13: supported opsets are 17 to 22");
}

/// Mutated and truncated variants of an exported model through the ONNX
/// loader, and of its checkpoint through the safetensors reader: `Ok` or a
/// named error, never a panic or an abort (`MIXCO_FUZZ=N`; `make fuzz`).
#[test]
fn mutated_models_and_checkpoints_never_panic() {
    use mixco_testkit::mutate::{budget, check_no_panic};
    let cfg = config(mixco_model::Depth::Resnet10, Stem::Cifar);
    let ck = checkpoint(&cfg);
    let model = export(&ck, Path::new("m.safetensors"), &"0".repeat(64), &ExportOptions { head: false, opset: 17 }).unwrap();
    check_no_panic("onnx", &model.bytes, budget(1500), 8, |b| mixco_eval::EncoderModel::from_onnx(Path::new("m.onnx"), "m".into(), b.to_vec()));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    ck.save(&path).unwrap();
    let valid = std::fs::read(&path).unwrap();
    check_no_panic("safetensors", &valid, budget(1500), 9, |b| Checkpoint::from_bytes(&path, b));
    check_no_panic("safetensors (encoder)", &valid, budget(1500), 10, |b| Checkpoint::encoder_from_bytes(&path, b));
}
