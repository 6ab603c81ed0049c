//! `mixco eval` end to end on a tiny trained encoder, and its failure paths.
#![cfg(feature = "train")]

mod util;
use util::{mixco, text};

const DATA: [&str; 6] = ["--dataset", "synthetic", "--synthetic-train", "200", "--synthetic-test", "100"];

/// One epoch of MoCo-v2 on a tiny ResNet-10, exported: (run folder, ONNX file).
fn tiny_encoder(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let out = dir.join("run");
    let o = mixco(&[&["train"][..], &DATA, &["--arch", "resnet10", "--width", "4", "--batch-size", "32", "--bn-splits", "2",
        "--queue-size", "64", "--epochs", "1", "--knn-every", "0", "--threads", "1", "--output", out.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{}", text(&o));
    let onnx = dir.join("enc.onnx");
    let o = mixco(&["export", "--onnx", out.join("final.safetensors").to_str().unwrap(), "-o", onnx.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    (out, onnx)
}

#[test]
fn eval_reports_the_model_and_the_random_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let (out, onnx) = tiny_encoder(dir.path());
    let json = dir.path().join("eval.json");
    let cache = dir.path().join("cache");
    // The ONNX file and the checkpoint (exported on the fly) give the same
    // numbers, read back from the feature cache after the first run.
    let mut reports = Vec::new();
    for (i, model) in [onnx.clone(), out.join("final.safetensors"), onnx.clone()].iter().enumerate() {
        let o = mixco(&[&["eval", model.to_str().unwrap()][..], &DATA, &["--json", json.to_str().unwrap(), "--cache-dir", cache.to_str().unwrap()]].concat());
        let t = text(&o);
        assert!(o.status.success(), "{t}");
        // The checkpoint exports to the very same ONNX bytes, so it hits the cache too.
        assert_eq!(t.matches("features read from the cache").count(), if i == 0 { 0 } else { 4 }, "run {i}: {t}");
        assert!(t.contains("random resnet10") && t.contains("linear top-1"), "{t}");
        let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        assert_eq!(r["train_images"], 200);
        assert_eq!(r["results"].as_array().unwrap().len(), 2);
        let acc = r["results"][0]["linear"]["top1"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc));
        reports.push(r["results"][0]["linear"]["top1"].clone());
    }
    assert_eq!(reports[0], reports[1]);
    assert_eq!(reports[0], reports[2]);
}

#[test]
fn eval_bad_inputs_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, b"this is not protobuf at all \xff\xff\xff").unwrap();
    let o = mixco(&["eval", junk.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("junk.onnx: not an ONNX model"), "{}", text(&o));
    let o = mixco(&["eval", dir.path().join("missing.onnx").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("missing.onnx: No such file"), "{}", text(&o));
    // Issue 29, group 17: 20,000 threads once meant minutes of silence.
    let o = mixco(&["eval", junk.to_str().unwrap(), "--threads", "20000"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("--threads 20000: this machine has"), "{}", text(&o));
}

#[test]
fn transfer_matrix_over_the_datasets_present() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = mixco(&["train", "--dataset", "synthetic", "--synthetic-train", "64", "--synthetic-test", "16", "--arch", "resnet10", "--width", "4",
        "--batch-size", "32", "--bn-splits", "2", "--queue-size", "64", "--epochs", "1", "--knn-every", "0", "--threads", "1", "--output", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let model = out.join("final.safetensors");
    let root = dir.path().join("data");
    let r = root.to_str().unwrap();
    let (csv, md) = (dir.path().join("t.csv"), dir.path().join("t.md"));
    let o = mixco(&["eval", "--transfer", model.to_str().unwrap(), "--root", r, "--csv", csv.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("none of cifar10, cifar100, tinyimagenet"), "{}", text(&o));

    mixco_testkit::write_cifar10(&root.join("cifar-10-batches-bin"), 20, 30);
    mixco_testkit::write_tiny_imagenet(&root.join("tiny-imagenet-200"), 3, 10, 9);
    let cache = dir.path().join("cache");
    let transfer = ["eval", "--transfer", model.to_str().unwrap(), "--root", r, "--csv", csv.to_str().unwrap(), "--markdown", md.to_str().unwrap(), "--cache-dir", cache.to_str().unwrap()];
    // The fixture's CIFAR-10 files hold 20 and 30 records: refused as not
    // the official files (issue 18, case 10), unless asked for.
    let o = mixco(&transfer);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("data_batch_1.bin: 20 of the official 10000 records") && text(&o).contains("--cut-data"), "{}", text(&o));
    let json = dir.path().join("t.json");
    let o = mixco(&[&transfer[..], &["--cut-data", "--json", json.to_str().unwrap()]].concat());
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report[0]["cut"][5], "test_batch.bin: 30 of the official 10000 records", "recorded: {report}");
    assert!(report[1].get("cut").is_none(), "Tiny ImageNet has no record counts");
    assert!(t.contains("cifar100: skipped") && t.contains("transfer matrix"), "{t}");
    let csv = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "model,dataset,linear_top1,linear_top5,knn20_top1,knn200_top1");
    assert_eq!(lines.len(), 1 + 2 * 2, "{csv}");
    assert!(lines[1].starts_with("final.safetensors,cifar10,") && lines[4].starts_with("random resnet10,tinyimagenet,"), "{csv}");
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(md.starts_with("| encoder | cifar10 linear | cifar10 kNN | tinyimagenet linear | tinyimagenet kNN |\n|---|---|---|---|---|\n"), "{md}");
}

/// A model mixco did not export (no metadata, other input/output names) is
/// evaluated with --mean/--std/--output, and gives the features of the
/// model it was made from; --png and --dump-features write their files.
#[test]
fn foreign_onnx_models_need_flags_and_then_match() {
    use mixco_export::proto::ModelProto;
    use prost::Message;
    let dir = tempfile::tempdir().unwrap();
    let data = DATA;
    let (_, ours) = tiny_encoder(dir.path());

    let mut m = ModelProto::decode(std::fs::read(&ours).unwrap().as_slice()).unwrap();
    m.metadata_props.clear();
    m.producer_name = "pytorch".into();
    let g = m.graph.as_mut().unwrap();
    let rename = |s: &mut String| {
        if s == "images" {
            *s = "input.1".into();
        } else if s == "features" {
            *s = "embedding".into();
        }
    };
    g.input.iter_mut().for_each(|v| rename(&mut v.name));
    g.output.iter_mut().for_each(|v| rename(&mut v.name));
    for n in &mut g.node {
        n.input.iter_mut().for_each(rename);
        n.output.iter_mut().for_each(rename);
    }
    let foreign = dir.path().join("foreign.onnx");
    std::fs::write(&foreign, m.encode_to_vec()).unwrap();

    // The same model dividing its output by zero: a clear error naming the image, not a panic in kNN.
    use mixco_export::proto::{NodeProto, TensorProto, FLOAT};
    let mut bad = m.clone();
    let g = bad.graph.as_mut().unwrap();
    g.node.iter_mut().flat_map(|n| n.output.iter_mut()).filter(|o| *o == "embedding").for_each(|o| *o = "raw".into());
    g.initializer.push(TensorProto { dims: vec![], data_type: FLOAT, name: "zero".into(), raw_data: 0f32.to_le_bytes().to_vec(), ..Default::default() });
    g.node.push(NodeProto { input: vec!["raw".into(), "zero".into()], output: vec!["embedding".into()], name: "div0".into(), op_type: "Div".into(), attribute: vec![] });
    let nan = dir.path().join("nan.onnx");
    std::fs::write(&nan, bad.encode_to_vec()).unwrap();
    let o = mixco(&[&["eval", nan.to_str().unwrap(), "--baseline", "none", "--no-cache", "--mean", "0,0,0", "--std", "1,1,1"][..], &DATA].concat());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let msg = text(&o);
    assert!(msg.contains("error: nan.onnx: output `embedding` is ") && msg.contains("for image 0 (feature 0) (train split)"), "{msg}");
    assert!(!msg.contains("panicked"), "{msg}");

    // A foreign output that keeps spatial dimensions (here the image itself,
    // N x 3 x 32 x 32): averaged over H x W and said so, not 3,072 features.
    let mut spatial = m.clone();
    let g = spatial.graph.as_mut().unwrap();
    let mut out = g.input[0].clone();
    out.name = "pixels".into();
    g.output.push(out);
    g.node.push(NodeProto { input: vec!["input.1".into()], output: vec!["pixels".into()], name: "id".into(), op_type: "Identity".into(), attribute: vec![] });
    let sp = dir.path().join("spatial.onnx");
    std::fs::write(&sp, spatial.encode_to_vec()).unwrap();
    let (js, npy_sp) = (dir.path().join("sp.json"), dir.path().join("npy-sp"));
    let o = mixco(&[&["eval", sp.to_str().unwrap(), "--baseline", "none", "--no-cache", "--mean", "0,0,0", "--std", "1,1,1", "--output", "pixels",
        "--json", js.to_str().unwrap(), "--dump-features", npy_sp.to_str().unwrap()][..], &DATA].concat());
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("output `pixels` keeps its spatial dimensions (N, C, H, W); its features are the mean over H x W (3 per image)"), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&js).unwrap()).unwrap();
    assert!(report["results"][0]["feeding"].as_str().unwrap().ends_with("averaged over H x W"), "{report}");
    let feats = std::fs::read(npy_sp.join("synthetic-spatial.onnx-train.npy")).unwrap();
    assert!(String::from_utf8_lossy(&feats[..128]).contains("'shape': (200, 3)"));
    // --dump-features naming a file: what is wrong and what to do, not "File exists (os error 17)".
    let o = mixco(&[&["eval", sp.to_str().unwrap(), "--baseline", "none", "--mean", "0,0,0", "--std", "1,1,1", "--output", "pixels",
        "--dump-features", js.to_str().unwrap()][..], &DATA].concat());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("sp.json: is a file, not a folder; name a folder"), "{}", text(&o));

    let f = foreign.to_str().unwrap();
    let o = mixco(&[&["eval", f][..], &data].concat());
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("foreign.onnx: not exported by mixco: pass the normalisation it was trained with, --mean and --std"), "{}", text(&o));
    let flags = ["--mean", "0,0,0", "--std", "1,1,1"];
    let o = mixco(&[&["eval", f][..], &data, &flags].concat());
    assert!(text(&o).contains("--baseline random builds a random encoder"), "{}", text(&o));
    let o = mixco(&[&["eval", f, "--baseline", "none", "--output", "logits"][..], &data, &flags].concat());
    assert!(text(&o).contains("--output `logits`: the model's outputs are embedding"), "{}", text(&o));
    let o = mixco(&[&["eval", ours.to_str().unwrap(), "--baseline", "none"][..], &data, &flags].concat());
    assert!(text(&o).contains("exported by mixco: it normalises inside the graph"), "{}", text(&o));

    // The bundled ONNX Runtime is the CPU build: asking for CUDA is an error, never a silent CPU run.
    let o = mixco(&[&["eval", ours.to_str().unwrap(), "--baseline", "none", "--no-cache", "--device", "cuda"][..], &data].concat());
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("cannot use CUDA device 0") && text(&o).contains("onnxruntime-gpu"), "{}", text(&o));
    let o = mixco(&[&["eval", ours.to_str().unwrap(), "--device", "tpu"][..], &data].concat());
    assert!(text(&o).contains("--device `tpu`: expected cpu, cuda or cuda:N"), "{}", text(&o));

    let (ja, jb) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let (png, npy) = (dir.path().join("chart.png"), dir.path().join("npy"));
    let o = mixco(&[&["eval", ours.to_str().unwrap(), "--baseline", "none", "--no-cache", "--json", ja.to_str().unwrap()][..], &data].concat());
    assert!(o.status.success(), "{}", text(&o));
    let o = mixco(&[&["eval", f, "--baseline", "none", "--no-cache", "--json", jb.to_str().unwrap(), "--png", png.to_str().unwrap(),
        "--dump-features", npy.to_str().unwrap()][..], &data, &flags].concat());
    assert!(o.status.success(), "{}", text(&o));
    let read = |p: &std::path::Path| -> serde_json::Value { serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap() };
    assert_eq!(read(&ja)["results"][0]["linear"], read(&jb)["results"][0]["linear"]);
    assert_eq!(read(&ja)["results"][0]["knn_top1"], read(&jb)["results"][0]["knn_top1"]);
    assert_eq!(&std::fs::read(&png).unwrap()[1..4], b"PNG");
    // .npy: header then 200 x 32 float32 features.
    let feats = std::fs::read(npy.join("synthetic-foreign.onnx-train.npy")).unwrap();
    assert!(feats.starts_with(b"\x93NUMPY\x01\x00"));
    let header_len = u16::from_le_bytes([feats[8], feats[9]]) as usize;
    assert!(String::from_utf8_lossy(&feats[10..10 + header_len]).contains("'shape': (200, 32)"));
    assert_eq!(feats.len(), 10 + header_len + 200 * 32 * 4);
    let labels = std::fs::read(npy.join("synthetic-train-labels.npy")).unwrap();
    assert_eq!(labels.len() % 64, (200 * 8) % 64);

    // `mixco bench probe` on the dumped features is the probe `mixco eval` ran.
    let dir_s = npy.to_str().unwrap();
    let o = mixco(&["bench", "probe", "--features", dir_s, "--dataset", "synthetic", "--model", "foreign.onnx", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let bench: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(bench["result"], read(&jb)["results"][0]["linear"]);
    assert!(bench["floor_s"].as_f64().unwrap() > 0.0 && bench["rows"] == 200 && bench["dim"] == 32, "{bench}");
    // A cut features file is an error naming it.
    let cut = npy.join("synthetic-foreign.onnx-test.npy");
    let bytes = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() - 3]).unwrap();
    let o = mixco(&["bench", "probe", "--features", dir_s, "--dataset", "synthetic", "--model", "foreign.onnx"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("synthetic-foreign.onnx-test.npy: shape [100, 32] needs 3200 elements of 4 bytes"), "{}", text(&o));
}

#[test]
fn bench_probe_on_synthetic_clusters() {
    let o = mixco(&["bench", "probe", "--synthetic", "2000x16x5", "--synthetic-test", "500", "--separation", "3", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((r["rows"].as_u64(), r["dim"].as_u64(), r["classes"].as_u64(), r["test_rows"].as_u64()), (Some(2000), Some(16), Some(5), Some(500)));
    assert!(r["result"]["top1"].as_f64().unwrap() > 0.9, "well-separated clusters: {r}");
    assert_eq!(r["result"]["fits"].as_array().unwrap().len(), 5);
    let o = mixco(&["bench", "probe", "--synthetic", "2000x16"]);
    assert!(!o.status.success() && text(&o).contains("expected ROWSxDIMxCLASSES"), "{}", text(&o));
}

/// `mixco zoo publish` writes a bundle that the zoo serves from its folder
/// and from a server, with the run's own encoder and settings.
#[test]
fn a_published_run_is_served_from_its_folder_and_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let (run, onnx) = tiny_encoder(dir.path());
    let report = dir.path().join("eval.json");
    let tb = dir.path().join("tb");
    let o = mixco(&[&["eval", onnx.to_str().unwrap()][..], &DATA, &["--baseline", "none", "--no-cache", "--json", report.to_str().unwrap(), "--tensorboard", tb.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{}", text(&o));
    // Issue 32: the results as TensorBoard scalars, read by TensorBoard's own reader.
    if let Some(out) = util::venv_script("tb_read.py", &[tb.join("enc.onnx").as_os_str()], "tensorboard") {
        let tbv: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        let want = 100.0 * json["results"][0]["linear"]["top1"].as_f64().unwrap();
        let got = &tbv["scalars"]["synthetic/linear_top1"][0];
        assert_eq!(got[0].as_u64(), Some(0), "{tbv}");
        assert!((got[1].as_f64().unwrap() - want).abs() < 1e-4, "{got} vs {want}");
        assert!(tbv["scalars"]["synthetic/knn200_top1"].is_array(), "{tbv}");
    }
    let dist = dir.path().join("dist");
    let o = mixco(&["zoo", "publish", run.to_str().unwrap(), report.to_str().unwrap(), "-o", dist.to_str().unwrap(), "--name", "tiny", "--description", "a test"]);
    assert!(o.status.success(), "{}", text(&o));
    // The exported encoder is the run's own (export is deterministic).
    assert_eq!(std::fs::read(dist.join("tiny.onnx")).unwrap(), std::fs::read(&onnx).unwrap());
    let card = std::fs::read_to_string(dist.join("README.md")).unwrap();
    assert!(card.contains("mixco train --config tiny.toml --dataset synthetic") && card.contains("| synthetic | linear |"), "{card}");
    // The settings file is the run's settings.
    let ck = mixco_model::Checkpoint::load(&run.join("final.safetensors")).unwrap();
    let trained: mixco_train::TrainConfig = serde_json::from_str(&ck.metadata["hparams"]).unwrap();
    assert_eq!(mixco_train::TrainConfig::from_toml(&std::fs::read_to_string(dist.join("tiny.toml")).unwrap()).unwrap(), trained);
    let manifest = std::fs::read_to_string(dist.join("manifest.toml")).unwrap();
    assert!(manifest.contains("urls = [\"tiny.onnx\"]"), "{manifest}");

    let cache = dir.path().join("cache");
    let pull = |manifest: &str| util::command().args(["zoo", "pull", "tiny", "--manifest", manifest]).env("MIXCO_CACHE", &cache).output().unwrap();
    let o = pull(dist.join("manifest.toml").to_str().unwrap());
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read(cache.join("zoo/tiny/tiny.onnx")).unwrap(), std::fs::read(&onnx).unwrap());

    std::fs::remove_dir_all(&cache).unwrap();
    let files = ["manifest.toml", "tiny.safetensors", "tiny.onnx"];
    let routes: Vec<(String, mixco_testkit::http::Behaviour)> = files.iter().map(|f| (format!("/models/{f}"), mixco_testkit::http::Behaviour::Serve(std::fs::read(dist.join(f)).unwrap()))).collect();
    let server = mixco_testkit::http::Server::start(routes.iter().map(|(p, b)| (p.as_str(), b.clone())).collect());
    let o = pull(&server.url("/models/manifest.toml"));
    assert!(o.status.success(), "{}", text(&o));
    assert!(server.requests().iter().any(|r| r.path == "/models/tiny.safetensors"));

    // Issue 29, group 11. The same name again: refused, nothing touched
    // (README.md and manifest.toml were once overwritten without a word).
    let publish = |args: &[&str]| mixco(&[&["zoo", "publish", run.to_str().unwrap(), report.to_str().unwrap(), "-o", dist.to_str().unwrap()][..], args].concat());
    let before = std::fs::read(dist.join("manifest.toml")).unwrap();
    let o = publish(&["--name", "tiny"]);
    assert!(!o.status.success() && text(&o).contains("already lists `tiny`"), "{}", text(&o));
    assert_eq!(std::fs::read(dist.join("manifest.toml")).unwrap(), before);
    // A second bundle in the folder: the manifest lists both (the first entry was once dropped);
    // README.md stays the first card, the second is tiny2.md.
    let o = publish(&["--name", "tiny2"]);
    assert!(o.status.success(), "{}", text(&o));
    let manifest = std::fs::read_to_string(dist.join("manifest.toml")).unwrap();
    assert!(manifest.contains("name = \"tiny\"") && manifest.contains("name = \"tiny2\""), "{manifest}");
    assert_eq!(std::fs::read_to_string(dist.join("README.md")).unwrap(), card);
    assert!(std::fs::read_to_string(dist.join("tiny2.md")).unwrap().starts_with("# tiny2"));
    // A report of another model: refused (its numbers were once published for this one).
    let other = dir.path().join("other.json");
    let sha = mixco_data::fsutil::sha256_hex(&std::fs::read(&onnx).unwrap());
    std::fs::write(&other, std::fs::read_to_string(&report).unwrap().replace(&sha, &"0".repeat(64))).unwrap();
    let o = mixco(&["zoo", "publish", run.to_str().unwrap(), other.to_str().unwrap(), "-o", dir.path().join("d2").to_str().unwrap(), "--name", "x"]);
    assert!(!o.status.success() && text(&o).contains("not the encoder of"), "{}", text(&o));
    // --hub without a repository: once a bundle that could not be pulled.
    let o = mixco(&["zoo", "publish", run.to_str().unwrap(), report.to_str().unwrap(), "-o", dir.path().join("d3").to_str().unwrap(), "--hub", "justowner"]);
    assert!(!o.status.success() && text(&o).contains("--hub `justowner`: expected OWNER/REPO"), "{}", text(&o));
    // A folder dataset without --name: its last path part names the model
    // (once "a name error" about the path's characters).
    let run2 = dir.path().join("run2");
    std::fs::create_dir_all(&run2).unwrap();
    let mut ck = mixco_model::Checkpoint::load(&run.join("final.safetensors")).unwrap();
    ck.metadata.insert("dataset".into(), "folder:/data/my photos".into());
    ck.save(&run2.join("final.safetensors")).unwrap();
    let onnx2 = dir.path().join("run2.onnx");
    assert!(mixco(&["export", "--onnx", run2.join("final.safetensors").to_str().unwrap(), "-o", onnx2.to_str().unwrap()]).status.success());
    let report2 = dir.path().join("eval2.json");
    let o = mixco(&[&["eval", onnx2.to_str().unwrap()][..], &DATA, &["--baseline", "none", "--no-cache", "--json", report2.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{}", text(&o));
    let o = mixco(&["zoo", "publish", run2.to_str().unwrap(), report2.to_str().unwrap(), "-o", dir.path().join("d4").to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("r10w4-my-photos-moco-v2"), "{}", text(&o));
}

/// Issue 29, groups 3, 12, 16 and 17: models and flags that once aborted
/// allocating terabytes, panicked in kNN, printed overflowed sizes or were
/// silently accepted: each is now a named error (or, for hints the run
/// contradicts, ignored), and nothing panics.
#[test]
fn hostile_models_and_flags_are_named_errors() {
    use mixco_export::proto::{AttributeProto, Dimension, ModelProto, NodeProto, StringStringEntryProto};
    use prost::Message;
    let dir = tempfile::tempdir().unwrap();
    let (_, ours) = tiny_encoder(dir.path());
    let m = ModelProto::decode(std::fs::read(&ours).unwrap().as_slice()).unwrap();
    let write = |name: &str, m: &ModelProto| {
        let p = dir.path().join(name);
        std::fs::write(&p, m.encode_to_vec()).unwrap();
        p.to_str().unwrap().to_string()
    };
    let eval = |model: &str, extra: &[&str]| mixco(&[&["eval", model, "--no-cache"][..], extra, &DATA].concat());
    let fails_with = |o: std::process::Output, want: &str| {
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "{want}: {t}");
        assert!(t.contains(want) && !t.contains("panicked"), "{want}: {t}");
    };
    let with_meta = |key: &str, value: &str| {
        let mut m = m.clone();
        m.metadata_props.retain(|p| p.key != key);
        m.metadata_props.push(StringStringEntryProto { key: key.into(), value: value.into() });
        m
    };
    // A mixco-looking model claiming a 100,000 px input: aborted allocating 30 TB.
    fails_with(eval(&write("huge.onnx", &with_meta("input_size", "100000")), &[]), "metadata field `input_size`: 100000 px is outside 1..=1024");
    // Width 1024 in the metadata: a random baseline of many GB.
    fails_with(eval(&write("wide.onnx", &with_meta("width", "1024")), &[]), "over the random baseline's limit of 250000000");
    // A foreign model whose graph fixes its input at 3 x 100000 x 100000.
    let mut foreign = m.clone();
    foreign.metadata_props.clear();
    foreign.producer_name = "pytorch".into();
    let mut fixed = foreign.clone();
    let dims = &mut fixed.graph.as_mut().unwrap().input[0].r#type.as_mut().unwrap().tensor_type.as_mut().unwrap().shape.as_mut().unwrap().dim;
    dims[2] = Dimension { dim_value: Some(100_000), dim_param: None };
    dims[3] = Dimension { dim_value: Some(100_000), dim_param: None };
    fails_with(eval(&write("fixed.onnx", &fixed), &["--mean", "0,0,0", "--std", "1,1,1"]), "--input-size 100000: it must be 1 to 1024 px");
    let f = write("foreign.onnx", &foreign);
    let flags = ["--mean", "0,0,0", "--std", "1,1,1", "--input-size", "32", "--baseline", "none"];
    // Flags: an input size of 0, a NaN or infinite std.
    fails_with(eval(&f, &["--mean", "0,0,0", "--std", "1,1,1", "--input-size", "0"]), "--input-size 0: it must be 1 to 1024 px");
    fails_with(eval(&f, &["--mean", "0,0,0", "--std", "nan,1,1", "--input-size", "32"]), "--std values must be positive finite numbers");
    fails_with(eval(&f, &["--mean", "0,0,0", "--std", "inf,1,1", "--input-size", "32"]), "--std values must be positive finite numbers");
    // Outputs without a batch axis: a scalar, and [1, N*C].
    let reshaped = |name: &str, op: &str, attribute: Vec<AttributeProto>| {
        let mut bad = foreign.clone();
        let g = bad.graph.as_mut().unwrap();
        g.node.iter_mut().flat_map(|n| n.output.iter_mut()).filter(|o| *o == "features").for_each(|o| *o = "raw".into());
        g.node.push(NodeProto { input: vec!["raw".into()], output: vec!["features".into()], name: "bad".into(), op_type: op.into(), attribute });
        write(name, &bad)
    };
    let int = |name: &str, i: i64| AttributeProto { name: name.into(), i, r#type: 2, ..Default::default() };
    fails_with(eval(&reshaped("scalar.onnx", "ReduceMean", vec![int("keepdims", 0)]), &flags), "output `features` has shape [] for a batch of");
    fails_with(eval(&reshaped("flat.onnx", "Flatten", vec![int("axis", 0)]), &flags), "features need shape (N, D) or (N, C, H, W)");
    // Negative declared output dimensions: once "18446744073709551609 per image"; the run's shape is used.
    let mut negative = foreign.clone();
    let out = &mut negative.graph.as_mut().unwrap().output[0].r#type.as_mut().unwrap().tensor_type.as_mut().unwrap().shape.as_mut().unwrap().dim;
    out.iter_mut().for_each(|d| d.dim_value = Some(-7));
    let o = eval(&write("negative.onnx", &negative), &flags);
    assert!(o.status.success() && !text(&o).contains("18446744073709551"), "{}", text(&o));
    // A graph with no outputs: once "several outputs ()".
    let mut none = foreign.clone();
    none.graph.as_mut().unwrap().output.clear();
    fails_with(eval(&write("none.onnx", &none), &flags), "the graph has no outputs");
}

/// Issue 29, group 13: external data resolved against the current folder let
/// a hostile model read `./secret.bin` into its features, and a legitimate
/// model with `model.onnx.data` beside it could not be evaluated elsewhere.
/// It is resolved against the model's own folder; paths leaving it are refused.
#[test]
fn external_data_is_read_from_the_models_folder_only() {
    use mixco_export::proto::{ModelProto, StringStringEntryProto};
    use prost::Message;
    let dir = tempfile::tempdir().unwrap();
    let (_, ours) = tiny_encoder(dir.path());
    let mut m = ModelProto::decode(std::fs::read(&ours).unwrap().as_slice()).unwrap();
    m.metadata_props.clear();
    m.producer_name = "pytorch".into();
    let inline = dir.path().join("inline.onnx");
    std::fs::write(&inline, m.encode_to_vec()).unwrap();
    // The largest initializer moved to `m.onnx.data` beside the model.
    let models = dir.path().join("models");
    std::fs::create_dir(&models).unwrap();
    let external = |location: &str| {
        let mut e = m.clone();
        let g = e.graph.as_mut().unwrap();
        let t = g.initializer.iter_mut().max_by_key(|t| t.raw_data.len()).unwrap();
        std::fs::write(models.join("m.onnx.data"), &t.raw_data).unwrap();
        let entry = |k: &str, v: String| StringStringEntryProto { key: k.into(), value: v };
        t.external_data = vec![entry("location", location.into()), entry("offset", "0".into()), entry("length", t.raw_data.len().to_string())];
        t.data_location = 1;
        t.raw_data.clear();
        e.encode_to_vec()
    };
    std::fs::write(models.join("m.onnx"), external("m.onnx.data")).unwrap();
    // Run from another folder holding a decoy of the same name.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("m.onnx.data"), vec![0u8; 1 << 16]).unwrap();
    let eval = |model: &std::path::Path, json: &std::path::Path| {
        util::command()
            .current_dir(&elsewhere)
            .args([&["eval", model.to_str().unwrap(), "--baseline", "none", "--no-cache", "--mean", "0,0,0", "--std", "1,1,1", "--input-size", "32", "--json", json.to_str().unwrap()][..], &DATA].concat())
            .output()
            .unwrap()
    };
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let o = eval(&inline, &a);
    assert!(o.status.success(), "{}", text(&o));
    let o = eval(&models.join("m.onnx"), &b);
    assert!(o.status.success(), "{}", text(&o));
    let top1 = |p: &std::path::Path| serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(p).unwrap()).unwrap()["results"][0]["linear"]["top1"].clone();
    assert!(top1(&a).is_f64(), "{}", top1(&a));
    assert_eq!(top1(&a), top1(&b), "the external data is the model's own");
    // Locations that leave the model's folder are refused.
    std::fs::write(dir.path().join("secret.bin"), vec![1u8; 1 << 16]).unwrap();
    for location in ["../secret.bin", "/etc/hostname", "sub/../../secret.bin"] {
        std::fs::write(models.join("bad.onnx"), external(location)).unwrap();
        let o = eval(&models.join("bad.onnx"), &dir.path().join("c.json"));
        assert_eq!(o.status.code(), Some(1), "{location}: {}", text(&o));
        assert!(text(&o).contains(&format!("keeps its data in `{location}`, which is not a file inside the model's folder")), "{}", text(&o));
    }
}

/// Issue 29, group 15: a cache entry rewritten with an extra column panicked
/// in the probe; an entry that is a folder, or a cache root that is a file,
/// failed after the features were extracted without naming the cache; and
/// `--dump-features` of `m+1.onnx` and `m_1.onnx` wrote one file.
#[test]
fn feature_cache_entries_are_validated_and_its_failures_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_, onnx) = tiny_encoder(dir.path());
    let cache = dir.path().join("cache");
    let eval = |cache: &std::path::Path| mixco(&[&["eval", onnx.to_str().unwrap(), "--baseline", "none", "--cache-dir", cache.to_str().unwrap()][..], &DATA].concat());
    let o = eval(&cache);
    assert!(o.status.success(), "{}", text(&o));
    let entries: Vec<std::path::PathBuf> = std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(entries.len(), 2, "train and test");
    // One entry with an extra column and the same metadata, the other replaced by a folder.
    let mut ck = mixco_model::Checkpoint::load(&entries[0]).unwrap();
    let t = ck.tensors.get_mut("features").unwrap();
    let (n, d) = (t.shape[0], t.shape[1]);
    *t = mixco_model::HostTensor::f32(vec![n, d + 1], vec![0.5; n * (d + 1)]);
    ck.save(&entries[0]).unwrap();
    std::fs::remove_file(&entries[1]).unwrap();
    std::fs::create_dir(&entries[1]).unwrap();
    let o = eval(&cache);
    let t = text(&o);
    assert!(o.status.success() && !t.contains("panicked"), "{t}");
    assert!(t.contains(&format!("{n} x {} features, expected {n} x {d}; extracted again", d + 1)), "{t}");
    assert!(t.contains("cannot write the feature cache") && t.contains("--no-cache"), "{t}");
    // A cache root that is a file: the evaluation finishes, with a warning naming it.
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, b"x").unwrap();
    let o = eval(&file);
    assert!(o.status.success() && text(&o).contains("not-a-folder") && text(&o).contains("--cache-dir"), "{}", text(&o));
    // Two models whose names differ only in a character the file names replace.
    let (a, b) = (dir.path().join("m+1.onnx"), dir.path().join("m_1.onnx"));
    std::fs::copy(&onnx, &a).unwrap();
    std::fs::copy(&onnx, &b).unwrap();
    let dump = dir.path().join("dump");
    let o = mixco(&[&["eval", a.to_str().unwrap(), b.to_str().unwrap(), "--baseline", "none", "--no-cache", "--dump-features", dump.to_str().unwrap()][..], &DATA].concat());
    assert!(o.status.success(), "{}", text(&o));
    let features = std::fs::read_dir(&dump).unwrap().filter(|e| !e.as_ref().unwrap().file_name().to_string_lossy().contains("labels")).count();
    assert_eq!(features, 4, "two models x two splits");
}
