//! End-to-end runs of `mixco data` as a user would type them.

mod util;
use util::{mixco, streams};
use mixco_testkit::http::{Behaviour, Server};
use mixco_testkit as kit;

#[test]
fn fetch_then_info_from_local_server() {
    let src = tempfile::tempdir().unwrap();
    let dir = src.path().join("cifar-100-binary");
    kit::write_cifar100(&dir, 200, 100);
    let body = kit::tar_gz(&dir);
    let md5 = {
        use md5::Digest;
        mixco_data::fsutil::hex(&md5::Md5::digest(&body))
    };
    let server = Server::start(vec![("/c100.tar.gz", Behaviour::Serve(body))]);
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap();
    let url = server.url("/c100.tar.gz");
    let o = mixco(&["data", "fetch", "cifar100", "--root", r, "--url", &url, "--md5", &md5]);
    let (out, err) = streams(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("cifar100: 4 files verified and installed"), "{out}");
    let o = mixco(&["data", "fetch", "cifar100", "--root", r, "--url", &url, "--md5", &md5]);
    assert!(streams(&o).0.contains("already present"));

    let o = mixco(&["data", "info", "cifar100", "--root", r, "--json"]);
    let info: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(info["splits"][0]["images"], 200);
    assert_eq!(info["splits"][1]["per_class"][5], 1);
    // Reported, then an exit code: 200 records are not the official 50,000.
    assert_eq!(o.status.code(), Some(1));
    assert!(streams(&o).1.contains("train.bin: 200 of the official 50000 records; test.bin: 100 of the official 10000 records"), "{}", streams(&o).1);
    let o = mixco(&["data", "info", "cifar100-coarse", "--root", r, "--cut-data"]);
    let (out, _) = streams(&o);
    assert!(o.status.success() && out.contains("20 classes") && out.contains("coarse19"), "{out}");
}

#[test]
fn bad_input_exits_non_zero_with_the_file_named() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap();
    let o = mixco(&["data", "info", "cifar10", "--root", r]);
    let (_, err) = streams(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.starts_with("error: ") && err.contains("cifar-10-batches-bin") && err.contains("mixco data fetch cifar10"), "{err}");

    let dir = root.path().join("cifar-10-batches-bin");
    kit::write_cifar10(&dir, 2, 2);
    // Readable, but not the official files: reported, then exit 1 (was 0).
    let o = mixco(&["data", "info", "cifar10", "--root", r]);
    assert_eq!(o.status.code(), Some(1), "{:?}", streams(&o));
    assert!(streams(&o).0.contains("MISMATCH") && streams(&o).1.contains("files differ from the official ones"), "{:?}", streams(&o));
    std::fs::write(dir.join("test_batch.bin"), vec![0u8; 5000]).unwrap();
    let o = mixco(&["data", "info", "cifar10", "--root", r]);
    let (_, err) = streams(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("test_batch.bin: size 5000 bytes is not a whole number"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let o = mixco(&["data", "fetch", "mnist", "--root", r]);
    assert_eq!(o.status.code(), Some(1));
    assert!(streams(&o).1.contains("`mnist` cannot be fetched"));

    let server = Server::start(vec![]);
    let o = mixco(&["data", "fetch", "tinyimagenet", "--root", r, "--url", &server.url("/nope.zip")]);
    let (_, err) = streams(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("/nope.zip: HTTP 404"), "{err}");
    assert!(!root.path().join("tiny-imagenet-200").exists());
}

#[test]
fn preview_writes_a_png_of_the_synthetic_set() {
    let out = tempfile::tempdir().unwrap();
    let png = out.path().join("grid.png");
    let o = mixco(&["data", "preview", "synthetic", "--synthetic-train", "50", "-c", "16", "-o", png.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", streams(&o));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    // 4 x 4 grid of 32 px images with 1 px gaps.
    assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), 4 * 33 + 1);
}

#[test]
fn doctor_finds_onnx_runtime_or_names_the_variable() {
    let o = util::command().arg("doctor").env_remove("MIXCO_ORT_LIB").output().unwrap();
    let (out, err) = streams(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("ONNX Runtime: ") && out.contains("libonnxruntime.so"), "{out}");
    assert!(out.contains("ORT Build Info"), "{out}");

    let o = util::command().arg("doctor").env("MIXCO_ORT_LIB", "/nonexistent/libonnxruntime.so").output().unwrap();
    let (out, err) = streams(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(out.contains("/nonexistent/libonnxruntime.so: ONNX Runtime library does not exist (from $MIXCO_ORT_LIB); set MIXCO_ORT_LIB"), "{out}{err}");
}
