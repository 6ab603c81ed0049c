//! `mixco zoo`: import PyTorch files and check the encoder against PyTorch's
//! own features; pull from a 127.0.0.1 server and use `zoo:NAME`.

use mixco_testkit::http::{Behaviour, Server};
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::process::Output;

mod util;

fn mixco(args: &[&str], cache: &Path) -> Output {
    util::command()
        .args(args)
        .env("MIXCO_CACHE", cache)
        .env("MIXCO_STALL_TIMEOUT", "5")
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "stdout: {}\nstderr: {}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn fail(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(1), "stdout: {}", String::from_utf8_lossy(&o.stdout));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("zoo/tests/fixtures").join(name)
}

/// The input scripts/make_import_fixtures.py feeds PyTorch: (sin(0.37 i) + 1) / 2.
fn fixed_input(size: usize) -> Vec<f32> {
    (0..2 * 3 * size * size).map(|i| (((i as f64 * 0.37).sin() + 1.0) / 2.0) as f32).collect()
}

/// Import, export, and run with ONNX Runtime: the features equal PyTorch's.
fn import_matches_pytorch(fixture_name: &str, size: usize, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("m.safetensors");
    let onnx = dir.path().join("m.onnx");
    let src = fixture(fixture_name);
    let mut args = vec!["zoo", "import", src.to_str().unwrap(), "-o", ck.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = ok(&mixco(&args, dir.path()));
    assert!(out.contains("mapped ") && out.contains("dropped "), "{out}");
    ok(&mixco(&["export", "--onnx", ck.to_str().unwrap(), "-o", onnx.to_str().unwrap()], dir.path()));

    let expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap();
    let want: Vec<f32> = expected[fixture_name]["features"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    let mut model = mixco_eval::session::OnnxModel::from_bytes("m.onnx", &std::fs::read(&onnx).unwrap(), 1).unwrap();
    let (shape, got) = model.run(&fixed_input(size), 2, size, "features").unwrap();
    assert_eq!(shape, vec![2, want.len() / 2]);
    let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
    let diff = got.iter().zip(&want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(diff <= 1e-4 * scale, "{fixture_name}: max |ours - PyTorch| = {diff} (scale {scale})");
}

#[test]
fn reference_moco_checkpoint_gives_pytorchs_features() {
    import_matches_pytorch("moco_r10w4.pth.tar", 32, &[]);
}

#[test]
fn torchvision_half_state_dict_gives_pytorchs_features() {
    import_matches_pytorch("torchvision_r10w4_half.pth", 64, &["--input-size", "64"]);
}

#[test]
fn refused_imports_leave_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.safetensors");
    let e = fail(&mixco(&["zoo", "import", fixture("malicious.pth.tar").to_str().unwrap(), "-o", out.to_str().unwrap()], dir.path()));
    assert!(e.contains("refused: the pickle references `posix.system`"), "{e}");
    let e = fail(&mixco(&["zoo", "import", fixture("legacy.pth").to_str().unwrap(), "-o", out.to_str().unwrap()], dir.path()));
    assert!(e.contains("legacy"), "{e}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn pull_verify_path_and_zoo_names() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    // A real checkpoint to serve: the imported MoCo fixture.
    let ck = dir.path().join("served.safetensors");
    ok(&mixco(&["zoo", "import", fixture("moco_r10w4.pth.tar").to_str().unwrap(), "-o", ck.to_str().unwrap()], &cache));
    let bytes = std::fs::read(&ck).unwrap();
    let sha = mixco_data::fsutil::hex(&sha2::Sha256::digest(&bytes));
    let server = Server::start(vec![("/tiny.safetensors", Behaviour::CutOnce { body: bytes.clone(), cut: bytes.len() / 3 })]);
    let manifest = dir.path().join("manifest.toml");
    std::fs::write(
        &manifest,
        format!(
            "[[model]]\nname = \"tiny\"\nmethod = \"moco-v2\"\narch = \"resnet10\"\nwidth = 4\nstem = \"cifar\"\ndataset = \"synthetic\"\nepochs = 1\n\
             [[model.file]]\nkind = \"checkpoint\"\nurls = [\"{}\"]\nsize = {}\nsha256 = \"{sha}\"\n\
             [[model.metric]]\ndataset = \"synthetic\"\nprobe = \"linear\"\ntop1 = 12.5\n",
            server.url("/tiny.safetensors"),
            bytes.len()
        ),
    )
    .unwrap();
    let m = manifest.to_str().unwrap();
    let list = ok(&mixco(&["zoo", "list", "--manifest", m], &cache));
    assert!(list.contains("tiny") && list.contains("12.50") && list.contains("0/1"), "{list}");
    let e = fail(&mixco(&["zoo", "path", "tiny", "--manifest", m], &cache));
    assert!(e.contains("not pulled yet: run `mixco zoo pull tiny`"), "{e}");

    // The first transfer is cut off; the second resumes.
    let e = fail(&mixco(&["zoo", "pull", "tiny", "--manifest", m], &cache));
    assert!(e.contains("run the same command again to resume"), "{e}");
    let out = ok(&mixco(&["zoo", "pull", "tiny", "--manifest", m], &cache));
    assert!(out.starts_with("pulled "), "{out}");
    assert_eq!(server.requests().last().unwrap().range.as_deref(), Some(format!("bytes={}-", bytes.len() / 3).as_str()));
    let path = ok(&mixco(&["zoo", "path", "tiny", "--manifest", m], &cache));
    assert_eq!(std::fs::read(path.trim()).unwrap(), bytes);
    drop(server);

    // Offline now: zoo:NAME resolves from the cache (env var manifest).
    let onnx = dir.path().join("tiny.onnx");
    let o = util::command()
        .args(["export", "--onnx", "zoo:tiny", "-o", onnx.to_str().unwrap()])
        .env("MIXCO_CACHE", &cache)
        .env("MIXCO_ZOO_MANIFEST", m)
        .output()
        .unwrap();
    ok(&o);
    assert!(onnx.is_file());
    let out = ok(&mixco(&["zoo", "verify", "--manifest", m], &cache));
    assert!(out.starts_with("ok "), "{out}");
    let json: serde_json::Value = serde_json::from_str(&ok(&mixco(&["zoo", "list", "--json", "--manifest", m], &cache))).unwrap();
    assert_eq!(json["model"][0]["cached"], true);

    // A damaged cache file is reported with exit code 1.
    std::fs::write(path.trim(), b"damaged").unwrap();
    let o = mixco(&["zoo", "verify", "--manifest", m], &cache);
    let e = fail(&o);
    assert!(String::from_utf8_lossy(&o.stdout).contains("DAMAGED"), "{e}");
    assert!(e.contains("1 zoo file(s) missing or damaged"), "{e}");
    let e = fail(&mixco(&["zoo", "pull", "nope", "--manifest", m], &cache));
    assert!(e.contains("no model `nope` in the zoo (known: tiny); see `mixco zoo list`"), "{e}");
}
