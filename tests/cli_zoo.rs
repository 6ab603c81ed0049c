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
    let expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap();
    let diff = import_against(fixture_name, &expected[fixture_name]["features"], size, extra);
    assert!(diff.0 <= 1e-4 * diff.1, "{fixture_name}: max |ours - PyTorch| = {} (scale {})", diff.0, diff.1);
}

/// (max |ours - PyTorch|, the features' scale) after import, export and ONNX Runtime.
fn import_against(fixture_name: &str, features: &serde_json::Value, size: usize, extra: &[&str]) -> (f32, f32) {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("m.safetensors");
    let onnx = dir.path().join("m.onnx");
    let src = fixture(fixture_name);
    let mut args = vec!["zoo", "import", src.to_str().unwrap(), "-o", ck.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = ok(&mixco(&args, dir.path()));
    assert!(out.contains("mapped ") && out.contains("dropped "), "{out}");
    ok(&mixco(&["export", "--onnx", ck.to_str().unwrap(), "-o", onnx.to_str().unwrap()], dir.path()));

    let want: Vec<f32> = features.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    let mut model = mixco_eval::session::OnnxModel::from_bytes("m.onnx", &std::fs::read(&onnx).unwrap(), 1).unwrap();
    let (shape, got) = model.run(&fixed_input(size), 2, size, "features").unwrap();
    assert_eq!(shape, vec![2, want.len() / 2]);
    let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
    // Checked first: f32::max would drop a NaN difference.
    assert!(got.iter().all(|v| v.is_finite()), "{fixture_name}: non-finite features");
    let diff = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    (diff, scale)
}

/// Every layout, in both of torch.save's formats (scripts/make_import_fixtures.py):
/// imported, exported and run in ONNX Runtime, it gives PyTorch's features.
#[test]
fn every_layout_in_both_formats_gives_pytorchs_features() {
    let expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture("layouts/expected.json")).unwrap()).unwrap();
    let mut worst = Vec::new();
    for (name, want) in expected.as_object().unwrap() {
        let size = want["input_size"].as_u64().unwrap() as usize;
        let s = size.to_string();
        let (diff, scale) = import_against(&format!("layouts/{name}"), &want["features"], size, &["--input-size", &s]);
        println!("{name}: {} layout, max |ours - PyTorch| = {diff:.2e} (features up to {scale:.2})", want["layout"].as_str().unwrap());
        worst.push((name.clone(), diff, scale));
    }
    assert_eq!(worst.len(), 14);
    for (name, diff, scale) in worst {
        assert!(diff <= 1e-4 * scale, "{name}: max |ours - PyTorch| = {diff} (scale {scale})");
    }
}

#[test]
fn reference_moco_checkpoint_gives_pytorchs_features() {
    import_matches_pytorch("moco_r10w4.pth.tar", 32, &[]);
}

/// MoCo v1's layout (one linear projection, `encoder_q.fc`): the backbone
/// imports and gives PyTorch's features.
#[test]
fn moco_v1_backbone_matches_pytorch() {
    import_matches_pytorch("moco_v1_r10w4.pth.tar", 32, &[]);
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
    assert!(e.contains("refused: the weights at `state_dict` can be reached only through `__builtin__.eval`"), "{e}");
    let e = fail(&mixco(&["zoo", "import", fixture("whole_module.legacy.pth").to_str().unwrap(), "-o", out.to_str().unwrap()], dir.path()));
    assert!(e.contains("only through `__main__.ResNet`"), "{e}");
    // A layout mixco does not know names what it found.
    let bytes = std::fs::read(fixture("layouts/vissl.legacy.pth")).unwrap();
    let unknown = tempfile::tempdir().unwrap();
    let renamed = unknown.path().join("renamed.torch");
    let pos = bytes.windows(17).position(|w| w == b"classy_state_dict").unwrap();
    let mut b = bytes.clone();
    b[pos..pos + 6].copy_from_slice(b"CLASSY");
    std::fs::write(&renamed, b).unwrap();
    let e = fail(&mixco(&["zoo", "import", renamed.to_str().unwrap(), "-o", out.to_str().unwrap()], dir.path()));
    assert!(e.contains("no known layout") && e.contains("CLASSY_state_dict.base_model.") && e.contains("--prefix"), "{e}");
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

/// A manifest entry of a publisher's file: `hash` is its TOML hash line (or empty).
fn publisher_entry(name: &str, url: &str, hash: &str) -> String {
    format!(
        "[[model]]\nname = \"{name}\"\nmethod = \"moco-v2\"\narch = \"resnet10\"\nwidth = 4\nstem = \"cifar\"\ndataset = \"cifar10\"\nepochs = 200\n\
         [[model.file]]\nkind = \"pytorch\"\nurls = [\"{url}\"]\n{hash}\n\n"
    )
}

/// The publishers' hosts served from 127.0.0.1 under their own paths (via
/// --mirror rewriting), each file verified the way its publisher allows,
/// pinned at first use, and imported when used as `zoo:NAME`.
#[test]
fn publishers_files_are_verified_pinned_and_imported() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let moco = std::fs::read(fixture("moco_r10w4.pth.tar")).unwrap();
    let tv = std::fs::read(fixture("torchvision_r10w4_half.pth")).unwrap();
    let hex = |d: &[u8]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let (tv_sha, moco_md5) = (hex(&sha2::Sha256::digest(&tv)), hex(&md5::Md5::digest(&moco)));
    let prefix = &tv_sha[..8];
    let page = "<html><body><form id=\"download-form\" action=\"https://drive.usercontent.google.com/download\" method=\"get\">\
                <input type=\"hidden\" name=\"id\" value=\"F1\"><input type=\"hidden\" name=\"confirm\" value=\"t\"></form></body></html>";
    let tv_path = format!("/pt/models/resnet18-{prefix}.pth");
    let routes = |drive_file: &[u8]| {
        vec![
            ("/fb/moco/moco_checkpoints/moco_v2_200ep/moco_v2_200ep_pretrain.pth.tar", Behaviour::Serve(moco.clone())),
            (tv_path.as_str(), Behaviour::Serve(tv.clone())),
            ("/drive/uc?export=download&id=F1", Behaviour::Html(page.into())),
            ("/content/download?id=F1&confirm=t", Behaviour::Serve(drive_file.to_vec())),
            ("/hf/owner/repo/resolve/main/tv.pth", Behaviour::Serve(tv.clone())),
        ]
    };
    let server = Server::start(routes(&moco));
    let manifest = dir.path().join("manifest.toml");
    std::fs::write(
        &manifest,
        [
            publisher_entry("moco", "https://dl.fbaipublicfiles.com/moco/moco_checkpoints/moco_v2_200ep/moco_v2_200ep_pretrain.pth.tar", &format!("md5 = \"{moco_md5}\"")),
            publisher_entry("tv", &format!("https://download.pytorch.org/models/resnet18-{prefix}.pth"), &format!("sha256_prefix = \"{prefix}\"")),
            publisher_entry("drive", "https://drive.google.com/uc?export=download&id=F1", ""),
            publisher_entry("hub", "hf://owner/repo/tv.pth", &format!("sha256 = \"{tv_sha}\"")),
        ]
        .concat(),
    )
    .unwrap();
    let mirrors = |s: &Server| {
        ["https://dl.fbaipublicfiles.com=/fb", "https://download.pytorch.org=/pt", "https://drive.google.com=/drive", "https://drive.usercontent.google.com=/content"]
            .iter()
            .map(|m| m.replace("=/", &format!("={}/", s.url(""))))
            .collect::<Vec<_>>()
            .join(";")
    };
    let run = |args: &[&str], mirror: &str, hub: &str| {
        util::command()
            .args(args)
            .env("MIXCO_CACHE", &cache)
            .env("MIXCO_STALL_TIMEOUT", "5")
            .env("MIXCO_ZOO_MANIFEST", &manifest)
            .env("MIXCO_ZOO_MIRROR", mirror)
            .env("HF_ENDPOINT", hub)
            .output()
            .unwrap()
    };
    let (m, hub) = (mirrors(&server), server.url("/hf"));
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();

    let o = run(&["zoo", "pull", "moco"], &m, &hub);
    ok(&o);
    assert!(stderr(&o).contains("verified by the publisher's MD5") && stderr(&o).contains("is pinned"), "{}", stderr(&o));
    let o = run(&["zoo", "pull", "tv"], &m, &hub);
    ok(&o);
    assert!(stderr(&o).contains(&format!("SHA-256 prefix {prefix}")), "{}", stderr(&o));
    ok(&run(&["zoo", "pull", "hub"], &m, &hub));

    // No published hash: refused unless trusted, then pinned.
    let e = fail(&run(&["zoo", "pull", "drive"], &m, &hub));
    assert!(e.contains("published no hash") && e.contains("--trust-unverified"), "{e}");
    let o = run(&["zoo", "pull", "drive", "--trust-unverified"], &m, &hub);
    ok(&o);
    assert!(stderr(&o).contains("trusted on first use"), "{}", stderr(&o));
    assert!(server.requests().iter().any(|r| r.path == "/content/download?id=F1&confirm=t"), "the confirmation form was followed");

    // A cached file changed after its pin is found, and downloaded again.
    let cached = cache.join("zoo/tv/tv.pth");
    std::fs::write(&cached, b"tampered").unwrap();
    let e = fail(&run(&["zoo", "verify", "tv"], &m, &hub));
    assert!(e.contains("missing or damaged"), "{e}");
    ok(&run(&["zoo", "pull", "tv"], &m, &hub));
    assert_eq!(std::fs::read(&cached).unwrap(), tv);

    // A file with no published hash that changes at its source after the
    // first pull is refused: the pin is the only check it has.
    drop(server);
    let changed = Server::start(routes(&tv));
    std::fs::remove_file(cache.join("zoo/drive/drive.pth")).unwrap();
    let e = fail(&run(&["zoo", "pull", "drive", "--trust-unverified"], &mirrors(&changed), &changed.url("/hf")));
    assert!(e.contains("the file changed since") && e.contains("drive.pth.sha256 and pull again"), "{e}");

    // Issue 29, group 9: a pin that is truncated, emptied or a folder once
    // read as "no pin", and a tampered cached file then verified.
    let pin = cache.join("zoo/tv/tv.pth.sha256");
    let good_pin = std::fs::read(&pin).unwrap();
    std::fs::write(&cached, b"tampered").unwrap();
    for damage in ["truncated", "empty", "folder"] {
        match damage {
            "truncated" => std::fs::write(&pin, &good_pin[..20]).unwrap(),
            "empty" => std::fs::write(&pin, b"").unwrap(),
            _ => {
                std::fs::remove_file(&pin).unwrap();
                std::fs::create_dir(&pin).unwrap();
            }
        }
        let e = fail(&run(&["zoo", "verify", "tv"], &mirrors(&changed), &changed.url("/hf")));
        assert!(e.contains("the pin of zoo:tv is damaged"), "{damage}: {e}");
        if damage == "folder" {
            std::fs::remove_dir(&pin).unwrap();
        }
    }

    // zoo:NAME imports the publisher's file (no pickle code runs) and exports it.
    let onnx = dir.path().join("moco.onnx");
    let o = run(&["export", "--onnx", "zoo:moco", "-o", onnx.to_str().unwrap()], &mirrors(&changed), &changed.url("/hf"));
    ok(&o);
    assert!(stderr(&o).contains("moco layout") && onnx.is_file(), "{}", stderr(&o));
}

/// Issue 29, group 10: trusting a file on first use once pinned whatever
/// came back, a captive portal's page included, and refused the real file
/// for ever after. The content must look like its kind before it is pinned.
#[test]
fn an_html_page_is_never_pinned_as_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let portal = Server::start(vec![("/m.pth", Behaviour::Html("<html><body>Sign in to the hotel Wi-Fi</body></html>".into()))]);
    let manifest = dir.path().join("manifest.toml");
    std::fs::write(&manifest, publisher_entry("m", &portal.url("/m.pth"), "")).unwrap();
    let m = manifest.to_str().unwrap();
    let e = fail(&mixco(&["zoo", "pull", "m", "--trust-unverified", "--manifest", m], &cache));
    assert!(e.contains("it is not a pth file (it starts with `<html><body>Sign in"), "{e}");
    assert!(!cache.join("zoo/m/m.pth.sha256").exists() && !cache.join("zoo/m/m.pth").exists(), "nothing pinned or kept");
    // The real file, later, is pulled and pinned.
    let real = Server::start(vec![("/m.pth", Behaviour::Serve(std::fs::read(fixture("moco_r10w4.pth.tar")).unwrap()))]);
    std::fs::write(&manifest, publisher_entry("m", &real.url("/m.pth"), "")).unwrap();
    ok(&mixco(&["zoo", "pull", "m", "--trust-unverified", "--manifest", m], &cache));
    assert!(cache.join("zoo/m/m.pth.sha256").exists());
}

/// Legacy-format files (the format of MoCo's 2020 release, the MixCo
/// paper's checkpoint and mmselfsup's published models) served from
/// 127.0.0.1 under their publishers' paths: pulled, verified, imported
/// through `zoo:NAME` and evaluated across datasets with `eval --transfer`.
#[test]
fn legacy_publishers_files_evaluate_across_datasets() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let read = |name: &str| std::fs::read(fixture(&format!("layouts/{name}"))).unwrap();
    let (moco, mm, official) = (read("moco.legacy.pth"), read("mmselfsup.legacy.pth"), read("mixco_official.legacy.pth"));
    let hex = |d: &[u8]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let prefix = hex(&sha2::Sha256::digest(&mm))[..8].to_string();
    let mm_path = format!("/mm/mmselfsup/1.x/mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k/mocov2_resnet50_8xb32-coslr-200e_in1k_20220825-{prefix}.pth");
    let server = Server::start(vec![
        ("/fb/moco/moco_checkpoints/moco_v2_800ep/moco_v2_800ep_pretrain.pth.tar", Behaviour::Serve(moco.clone())),
        (mm_path.as_str(), Behaviour::Serve(mm.clone())),
        ("/drive/uc?export=download&id=1Dg_SNGBmpyPCRIvrt8EIfQrUEIvtWasW", Behaviour::Serve(official.clone())),
    ]);
    let entry = |name: &str, stem: &str, url: &str, hash: &str| {
        format!(
            "[[model]]\nname = \"{name}\"\nmethod = \"moco-v2\"\narch = \"resnet18\"\nwidth = 4\nstem = \"{stem}\"\ndataset = \"imagenet\"\n\
             input_size = 32\nepochs = 200\n[[model.file]]\nkind = \"pytorch\"\nurls = [\"{url}\"]\n{hash}\n\n"
        )
    };
    let manifest = dir.path().join("manifest.toml");
    let moco_md5 = hex(&md5::Md5::digest(&moco));
    std::fs::write(
        &manifest,
        [
            entry("moco", "cifar", "https://dl.fbaipublicfiles.com/moco/moco_checkpoints/moco_v2_800ep/moco_v2_800ep_pretrain.pth.tar", &format!("md5 = \"{moco_md5}\"")),
            entry("mm", "imagenet", &format!("https://download.openmmlab.com/mmselfsup/1.x/mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k/mocov2_resnet50_8xb32-coslr-200e_in1k_20220825-{prefix}.pth"), &format!("sha256_prefix = \"{prefix}\"")),
            entry("official", "imagenet", "https://drive.google.com/uc?export=download&id=1Dg_SNGBmpyPCRIvrt8EIfQrUEIvtWasW", ""),
        ]
        .concat(),
    )
    .unwrap();
    let mirror = ["https://dl.fbaipublicfiles.com=/fb", "https://download.openmmlab.com=/mm", "https://drive.google.com=/drive"]
        .map(|m| m.replace("=/", &format!("={}/", server.url(""))))
        .join(";");
    let run = |args: &[&str]| {
        util::command()
            .args(args)
            .env("MIXCO_CACHE", &cache)
            .env("MIXCO_STALL_TIMEOUT", "5")
            .env("MIXCO_ZOO_MANIFEST", &manifest)
            .env("MIXCO_ZOO_MIRROR", &mirror)
            .output()
            .unwrap()
    };
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();
    // The MixCo paper's file has no published hash: pinned at first use.
    let o = run(&["zoo", "pull", "official", "--trust-unverified"]);
    ok(&o);
    let o = run(&["export", "--onnx", "zoo:official", "-o", dir.path().join("official.onnx").to_str().unwrap()]);
    ok(&o);
    assert!(stderr(&o).contains("(mixco-official layout, legacy format"), "{}", stderr(&o));

    let root = dir.path().join("data");
    mixco_testkit::write_cifar10(&root.join("cifar-10-batches-bin"), 20, 30);
    mixco_testkit::write_tiny_imagenet(&root.join("tiny-imagenet-200"), 3, 10, 9);
    let json = dir.path().join("t.json");
    let o = run(&["eval", "--transfer", "zoo:moco", "zoo:mm", "--root", root.to_str().unwrap(), "--cut-data", "--threads", "1", "--json", json.to_str().unwrap()]);
    let out = ok(&o);
    let err = stderr(&o);
    assert!(err.contains("zoo:moco: imported") && err.contains("(moco layout, legacy format"), "{err}");
    assert!(err.contains("zoo:mm: imported") && err.contains("(mmselfsup layout, legacy format"), "{err}");
    assert!(out.contains("transfer matrix"), "{out}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let text = report.to_string();
    for want in ["cifar10", "tinyimagenet", "moco", "mm"] {
        assert!(text.contains(want), "{want} missing from the report");
    }
}
