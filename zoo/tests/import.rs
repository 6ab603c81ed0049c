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
    assert_eq!(imp.layout, "moco");
    assert_eq!((imp.config.arch.depth, imp.config.arch.width, imp.config.arch.stem), (mixco_model::Depth::Resnet10, 4, Stem::Cifar));
    assert_eq!((imp.config.head.hidden, imp.config.head.out_dim), (32, 16));
    assert_eq!(imp.config.method, "moco-v2");
    check_tensors(&imp.checkpoint, &expected("moco_r10w4.pth.tar"));

    assert_eq!(imp.mapped.len(), 12 * 6 + 4); // stem + 8 block convs + 3 downsamples, 4 head tensors
    assert!(imp.mapped.contains(&("module.encoder_q.layer4.0.downsample.1.running_var".into(), "layer4.0.downsample.1.running_var".into())));
    assert!(imp.mapped.contains(&("module.encoder_q.fc.2.bias".into(), "head.2.bias".into())));
    let dropped: Vec<&str> = imp.dropped.iter().map(|(k, _)| k.as_str()).collect();
    for k in ["epoch", "arch", "optimizer", "module.queue", "module.queue_ptr", "module.encoder_k.conv1.weight"] {
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

#[test]
fn malicious_pickle_is_refused_without_running_it() {
    let _ = std::fs::remove_file("/tmp/mixco-pwned");
    let path = fixture("malicious.pth.tar");
    let e = import_file(&path, &ImportOptions::default()).err().unwrap().to_string();
    assert!(e.starts_with(&format!("{}: refused: the pickle references `posix.system`", path.display())), "{e}");
    assert!(!Path::new("/tmp/mixco-pwned").exists());
}

#[test]
fn other_bad_files() {
    let e = import_file(&fixture("legacy.pth"), &ImportOptions::default()).err().unwrap().to_string();
    assert!(e.contains("legacy (pre-1.6, non-zip) format"), "{e}");
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
