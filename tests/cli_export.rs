//! `mixco export --onnx` end to end: parity with libtorch for every
//! architecture and stem, with and without head, metadata, bad checkpoints.
#![cfg(feature = "train")]

mod util;
use util::{mixco, text};
use mixco_export::proto::ModelProto;
use mixco_model::Checkpoint;
use prost::Message;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A checkpoint after two SGD steps (so batch-norm statistics are not trivial).
fn checkpoint(dir: &Path, arch: &str, stem: &str) -> PathBuf {
    let out = dir.join(format!("{arch}-{stem}"));
    let o = mixco(&[
        "train", "--dataset", "synthetic", "--synthetic-train", "32", "--synthetic-test", "8", "--arch", arch, "--stem", stem,
        "--width", "4", "--batch-size", "16", "--bn-splits", "2", "--queue-size", "32", "--epochs", "1", "--knn-every", "0",
        "--threads", "1", "--output", out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    out.join("final.safetensors")
}

/// `onnx.checker.check_model(full_check=True)` from the project venv.
fn onnx_checker(files: &[PathBuf]) {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(python.exists(), "{} missing: run `make venv` (or `make test`)", python.display());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/onnx_check.py");
    let o = Command::new(python).arg(script).args(files).output().unwrap();
    assert!(o.status.success(), "ONNX checker: {}", text(&o));
    assert_eq!(text(&o).matches(": ok (ir 8, opset 17").count(), files.len(), "{}", text(&o));
}

#[test]
fn onnx_matches_libtorch_for_every_architecture_and_stem() {
    let dir = tempfile::tempdir().unwrap();
    let mut exported = Vec::new();
    for arch in ["resnet18", "resnet34", "resnet50"] {
        for stem in ["cifar", "imagenet"] {
            let ck = checkpoint(dir.path(), arch, stem);
            for head in [false, true] {
                let onnx = dir.path().join(format!("{arch}-{stem}-{head}.onnx"));
                let mut args = vec!["export", "--onnx", ck.to_str().unwrap(), "-o", onnx.to_str().unwrap(), "--verify"];
                if head {
                    args.push("--head");
                }
                let o = mixco(&args);
                let t = text(&o);
                assert!(o.status.success(), "{arch} {stem} head={head}: {t}");
                assert_eq!(t.matches("verify: batch").count(), if head { 4 } else { 2 }, "{t}");
                let model = ModelProto::decode(std::fs::read(&onnx).unwrap().as_slice()).unwrap();
                let meta: std::collections::HashMap<_, _> = model.metadata_props.iter().map(|p| (p.key.as_str(), p.value.as_str())).collect();
                assert_eq!(meta["arch"], arch);
                assert_eq!(meta["stem"], stem);
                assert_eq!(meta["input_size"], "32");
                assert_eq!(meta["feature_dim"], if arch == "resnet50" { "128" } else { "32" });
                assert_eq!(meta["outputs"], if head { "features,projection" } else { "features" });
                let ck_meta = Checkpoint::load(&ck).unwrap().metadata;
                assert_eq!(meta["mean"], ck_meta["mean"], "written by the one metadata writer");
                assert_eq!(meta["source_sha256"].len(), 64);
                assert_eq!(model.opset_import[0].version, 17);
                // No BatchNormalization node: it is folded.
                assert!(model.graph.as_ref().unwrap().node.iter().all(|n| n.op_type != "BatchNormalization"));
                exported.push(onnx);
            }
        }
    }
    onnx_checker(&exported);
}

#[test]
fn bad_checkpoints_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ck_path = checkpoint(dir.path(), "resnet18", "cifar");
    let good = Checkpoint::load(&ck_path).unwrap();
    let out = dir.path().join("out.onnx");
    let mut cases: Vec<(&str, Checkpoint, &str)> = Vec::new();
    let mut c = good.clone();
    c.tensors.remove("layer4.1.bn2.running_var");
    cases.push(("missing", c, "tensor `layer4.1.bn2.running_var` is missing"));
    let mut c = good.clone();
    c.tensors.insert("layer1.0.conv1.weight".into(), mixco_model::HostTensor::f32(vec![4, 4, 1, 1], vec![0.0; 16]));
    cases.push(("shape", c, "tensor `layer1.0.conv1.weight` has shape [4, 4, 1, 1], expected [4, 4, 3, 3]"));
    let mut c = good.clone();
    if let mixco_model::checkpoint::TensorData::F32(v) = &mut c.tensors.get_mut("conv1.weight").unwrap().data {
        v[3] = f32::NAN;
    }
    cases.push(("nan", c, "tensor `conv1.weight` holds a non-finite value (NaN) at index 3"));
    // Issue 29, group 2: these exported with exit 0 and verified as
    // "max |ONNX Runtime - libtorch| = 0.00e0" while every output was NaN.
    let mut c = good.clone();
    if let mixco_model::checkpoint::TensorData::F32(v) = &mut c.tensors.get_mut("layer2.0.bn1.running_var").unwrap().data {
        v[1] = -1.0;
    }
    cases.push(("negvar", c, "tensor `layer2.0.bn1.running_var` holds a negative variance (-1) at index 1"));
    let mut c = good.clone();
    c.metadata.insert("std".into(), "[0.2,0.0,0.2]".into());
    cases.push(("zerostd", c, "metadata field `std`: 0 is not a positive finite number"));
    let mut c = good.clone();
    c.metadata.insert("input_size".into(), "100000".into());
    cases.push(("huge", c, "metadata field `input_size`: 100000 px is outside 1..=1024"));
    let mut c = good.clone();
    c.metadata.insert("arch".into(), "vit_b16".into());
    cases.push(("arch", c, "metadata field `arch`: unknown architecture `vit_b16`"));
    let mut c = good.clone();
    c.metadata.clear();
    cases.push(("nometa", c, "no mixco metadata (field `format` missing): not a mixco checkpoint"));
    for (name, ck, want) in cases {
        let p = dir.path().join(format!("{name}.safetensors"));
        ck.save(&p).unwrap();
        let o = mixco(&["export", "--onnx", p.to_str().unwrap(), "-o", out.to_str().unwrap(), "--verify"]);
        assert_eq!(o.status.code(), Some(1), "{name}");
        let t = text(&o);
        assert!(t.contains(&format!("{name}.safetensors: {want}")), "{name}: {t}");
        assert!(!out.exists(), "{name}: an output was written");
    }
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"\x08\x00\x00\x00\x00\x00\x00\x00{bad json").unwrap();
    let o = mixco(&["export", "--onnx", junk.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(text(&o).contains("junk.safetensors: not a safetensors file"), "{}", text(&o));
    let o = mixco(&["export", "--onnx", dir.path().join("none.safetensors").to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(text(&o).contains("none.safetensors: No such file"), "{}", text(&o));
    // The library's errors come back as the flags that caused them.
    let o = mixco(&["export", "--onnx", ck_path.to_str().unwrap(), "-o", out.to_str().unwrap(), "--opset", "13"]);
    assert!(text(&o).contains("error: --opset 13: supported opsets are 17 to 22"), "{}", text(&o));
    assert!(!out.exists());
}
