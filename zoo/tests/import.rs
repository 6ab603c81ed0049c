//! `mixco zoo import` on files written by PyTorch (scripts/make_import_fixtures.py).

use mixco_model::arch::Stem;
use mixco_zoo::import::{import_file, ImportOptions};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn expected(name: &str) -> serde_json::Value {
    let all: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap();
    all[name].clone()
}

/// Every tensor PyTorch saved is there, with its shape and (to f32 rounding) its sum.
fn check_tensors(ck: &mixco_model::checkpoint::Checkpoint, want: &serde_json::Value) {
    let want = want["tensors"].as_object().unwrap();
    for (name, w) in want {
        let t = ck.tensors.get(name).unwrap_or_else(|| panic!("{name} missing"));
        let shape: Vec<usize> = w["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        assert_eq!(t.shape, shape, "{name}");
        let sum: f64 = match &t.data {
            mixco_model::checkpoint::TensorData::F32(v) => v.iter().map(|&x| x as f64).sum(),
            mixco_model::checkpoint::TensorData::I64(v) => v.iter().map(|&x| x as f64).sum(),
        };
        let ws = w["sum"].as_f64().unwrap();
        assert!((sum - ws).abs() <= 1e-5 * (1.0 + ws.abs()), "{name}: sum {sum} vs {ws}");
    }
}

#[test]
fn reference_moco_checkpoint() {
    let path = fixture("moco_r10w4.pth.tar");
    let imp = import_file(&path, &ImportOptions::default()).unwrap();
    assert_eq!((imp.layout.as_str(), imp.prefix.as_str(), imp.format), ("moco", "state_dict.encoder_q.", "zip"));
    assert_eq!((imp.config.arch.depth, imp.config.arch.width, imp.config.arch.stem), (mixco_model::Depth::Resnet10, 4, Stem::Cifar));
    assert_eq!((imp.config.head.hidden, imp.config.head.out_dim), (32, 16));
    assert_eq!(imp.config.method, "moco-v2");
    check_tensors(&imp.checkpoint, &expected("moco_r10w4.pth.tar"));

    assert_eq!(imp.mapped.len(), 12 * 6 + 4); // stem + 8 block convs + 3 downsamples, 4 head tensors
    assert!(imp.mapped.contains(&("state_dict.module.encoder_q.layer4.0.downsample.1.running_var".into(), "layer4.0.downsample.1.running_var".into())));
    assert!(imp.mapped.contains(&("state_dict.module.encoder_q.fc.2.bias".into(), "head.2.bias".into())));
    let dropped: Vec<&str> = imp.dropped.iter().map(|(k, _)| k.as_str()).collect();
    for k in ["epoch", "arch", "optimizer", "state_dict.module.queue", "state_dict.module.queue_ptr", "state_dict.module.encoder_k.conv1.weight"] {
        assert!(dropped.contains(&k), "{k} should be dropped: {dropped:?}");
    }
    assert_eq!(imp.checkpoint.metadata["imported_layout"], "moco");
    let cfg = imp.checkpoint.config(&path).unwrap();
    assert_eq!(cfg, imp.config);
}

#[test]
fn torchvision_state_dict_in_half_precision() {
    let path = fixture("torchvision_r10w4_half.pth");
    let imp = import_file(&path, &ImportOptions::default()).unwrap();
    assert_eq!(imp.layout, "torchvision");
    assert!(imp.skipped.is_empty());
    assert_eq!((imp.config.arch.depth, imp.config.arch.width, imp.config.arch.stem), (mixco_model::Depth::Resnet10, 4, Stem::Imagenet));
    assert_eq!(imp.config.head.out_dim, 0, "no projection head");
    assert_eq!(imp.config.input_size, 224);
    check_tensors(&imp.checkpoint, &expected("torchvision_r10w4_half.pth"));
    let dropped: Vec<&str> = imp.dropped.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(dropped, ["fc.weight", "fc.bias"]);
    // Overrides win over inference.
    let opts = ImportOptions { input_size: Some(64), mean: Some([0.5; 3]), method: Some("supervised".into()), ..Default::default() };
    let imp = import_file(&path, &opts).unwrap();
    assert_eq!((imp.config.input_size, imp.config.mean, imp.config.method.as_str()), (64, [0.5; 3], "supervised"));
    // A width that contradicts the tensors is caught by the shape check.
    let e = import_file(&path, &ImportOptions { width: Some(8), ..Default::default() }).err().unwrap().to_string();
    assert!(e.contains("tensor `conv1.weight` has shape [4, 3, 7, 7], expected [8, 3, 7, 7]"), "{e}");
}

/// Weights reachable only through an object torch.load would call: refused.
#[test]
fn weights_behind_code_are_refused_without_running_it() {
    let _ = std::fs::remove_file("/tmp/mixco-pwned");
    let path = fixture("malicious.pth.tar");
    let e = import_file(&path, &ImportOptions::default()).err().unwrap().to_string();
    assert!(e.starts_with(&format!("{}: refused: the weights at `state_dict` can be reached only through `__builtin__.eval`", path.display())), "{e}");
    // torch.save(model): the weights are inside a class mixco does not construct.
    let e = import_file(&fixture("whole_module.legacy.pth"), &ImportOptions::default()).err().unwrap().to_string();
    assert!(e.contains("refused: the weights in the file can be reached only through `__main__.ResNet`"), "{e}");
    assert!(!Path::new("/tmp/mixco-pwned").exists());
}

/// A code-running object beside the weights is named, never run, and the weights import.
#[test]
fn code_beside_the_weights_is_skipped_and_named() {
    let _ = std::fs::remove_file("/tmp/mixco-pwned");
    let imp = import_file(&fixture("payload_beside.pth.tar"), &ImportOptions::default()).unwrap();
    assert_eq!(imp.layout, "torchvision");
    assert_eq!(imp.skipped, vec![("payload".to_string(), "posix.system".to_string())]);
    assert!(!Path::new("/tmp/mixco-pwned").exists());
}

#[test]
fn every_layout_in_both_formats_is_recognised() {
    let all: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture("layouts/expected.json")).unwrap()).unwrap();
    let all = all.as_object().unwrap();
    assert_eq!(all.len(), 14, "7 layouts x 2 formats");
    for (name, want) in all {
        let imp = import_file(&fixture(&format!("layouts/{name}")), &ImportOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(imp.layout, want["layout"].as_str().unwrap(), "{name}");
        assert_eq!(imp.prefix, want["prefix"].as_str().unwrap(), "{name}");
        assert_eq!(imp.format, want["format"].as_str().unwrap(), "{name}");
        assert_eq!((imp.config.arch.depth, imp.config.arch.width), (mixco_model::Depth::Resnet18, 4), "{name}");
        // The query / online encoder, never a momentum copy.
        assert!(imp.mapped.iter().all(|(from, _)| mixco_zoo::layout::normalise(from).starts_with(&imp.prefix)), "{name}");
        let skipped: Vec<&str> = imp.skipped.iter().map(|(_, c)| c.as_str()).collect();
        match imp.layout.as_str() {
            "solo-learn" if imp.format == "legacy" => assert!(skipped.contains(&"argparse.Namespace"), "{name}: {skipped:?}"),
            "solo-learn" => assert!(skipped.contains(&"omegaconf.dictconfig.DictConfig"), "{name}: {skipped:?}"),
            "mmselfsup" => assert!(skipped.contains(&"mmengine.logging.history_buffer.HistoryBuffer"), "{name}: {skipped:?}"),
            _ => assert!(skipped.is_empty(), "{name}: {skipped:?}"),
        }
        assert_eq!(imp.config.mixco, imp.layout == "mixco-official", "{name}");
    }
}

/// `--prefix` imports another sub-network: MoCo's key encoder.
#[test]
fn a_prefix_picks_another_sub_network() {
    let path = fixture("layouts/moco.legacy.pth");
    let opts = ImportOptions { prefix: Some("state_dict.module.encoder_k".into()), ..Default::default() };
    let imp = import_file(&path, &opts).unwrap();
    assert_eq!((imp.layout.as_str(), imp.prefix.as_str()), ("prefix", "state_dict.encoder_k."));
    assert!(imp.mapped.iter().all(|(from, _)| from.starts_with("state_dict.module.encoder_k.")));
    assert_eq!(imp.config.head.out_dim, 16, "the key encoder's MLP head");
    let e = import_file(&path, &ImportOptions { prefix: Some("state_dict.nothing.".into()), ..Default::default() }).err().unwrap().to_string();
    assert!(e.contains("no ResNet under --prefix `state_dict.nothing.`"), "{e}");
}

/// A layout mixco does not know: the error lists where the tensors are.
#[test]
fn an_unknown_layout_names_what_it_found() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("layouts/lightly.legacy.pth")).unwrap();
    // The same file with `backbone` renamed (same length: the pickle stays valid).
    let renamed: Vec<u8> = replace_all(&bytes, b"backbone.", b"trunkkkk.");
    let path = dir.path().join("unknown.ckpt");
    std::fs::write(&path, renamed).unwrap();
    let e = import_file(&path, &ImportOptions::default()).err().unwrap().to_string();
    assert!(e.contains("no known layout (mixco-official, moco, solo-learn, lightly, vissl, mmselfsup, torchvision) fits"), "{e}");
    assert!(e.contains("state_dict.trunkkkk. ("), "{e}");
    assert!(e.contains("--prefix"), "{e}");
}

fn replace_all(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn other_bad_files() {
    let e = import_file(&fixture("expected.json"), &ImportOptions::default()).err().unwrap().to_string();
    assert!(e.contains("expected.json: not a PyTorch checkpoint"), "{e}");
    let e = import_file(&fixture("nope.pth"), &ImportOptions::default()).err().unwrap().to_string();
    assert!(e.contains("nope.pth"), "{e}");
    // A truncated archive.
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("moco_r10w4.pth.tar")).unwrap();
    let cut = dir.path().join("cut.pth.tar");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = import_file(&cut, &ImportOptions::default()).err().unwrap().to_string();
    assert!(e.starts_with(&format!("{}: ", cut.display())), "{e}");
}
