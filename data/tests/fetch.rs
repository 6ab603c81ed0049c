//! `fetch` against a real HTTP server on 127.0.0.1.

use mixco_data::fetch::{fetch, FetchOptions, Outcome};
use mixco_data::fsutil::hex;
use mixco_data::{DatasetSpec, KnownDataset, Source};
use mixco_testkit::http::{Behaviour, Server};
use mixco_testkit as kit;
use std::fs;
use std::path::Path;

fn md5(bytes: &[u8]) -> String {
    use md5::Digest;
    hex(&md5::Md5::digest(bytes))
}

fn cifar10_archive() -> Vec<u8> {
    let src = tempfile::tempdir().unwrap();
    let dir = src.path().join("cifar-10-batches-bin");
    kit::write_cifar10(&dir, 20, 10);
    kit::tar_gz(&dir)
}

fn opts(url: String, body: &[u8]) -> FetchOptions {
    FetchOptions {
        spec: DatasetSpec { url, md5: md5(body), size: Some(body.len() as u64) },
        archive: None,
        verify_archive: true,
        // Fixtures are not the official files.
        verify_files: false,
        keep_archive: false,
        progress: false,
    }
}

/// Everything under `root` except the dataset folder itself.
fn leftovers(root: &Path, keep: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir(root).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name == keep {
            continue;
        }
        if p.is_dir() {
            // Lock files stay (deleting one another process waits on would let a third in).
            for f in fs::read_dir(&p).unwrap().map(|f| f.unwrap().file_name().to_string_lossy().into_owned()).filter(|f| !f.ends_with(".lock")) {
                out.push(format!("{name}/{f}"));
            }
        } else {
            out.push(name);
        }
    }
    out
}

#[test]
fn download_extract_and_second_run_is_a_no_op() {
    let body = cifar10_archive();
    let server = Server::start(vec![("/c10.tar.gz", Behaviour::Serve(body.clone()))]);
    let root = tempfile::tempdir().unwrap();
    let o = opts(server.url("/c10.tar.gz"), &body);
    let out = fetch(KnownDataset::Cifar10, root.path(), &o).unwrap();
    assert!(matches!(out, Outcome::Installed { files: 7, .. }), "{out:?}");
    assert_eq!(Source::Cifar10.load(root.path()).unwrap().train.len(), 100);
    assert!(leftovers(root.path(), "cifar-10-batches-bin").is_empty(), "{:?}", leftovers(root.path(), "cifar-10-batches-bin"));
    let again = fetch(KnownDataset::Cifar10, root.path(), &o).unwrap();
    assert!(matches!(again, Outcome::AlreadyPresent(_)));
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn interrupted_transfer_resumes_with_range() {
    let body = cifar10_archive();
    let cut = body.len() / 3;
    let server = Server::start(vec![("/a.tar.gz", Behaviour::CutOnce { body: body.clone(), cut })]);
    let root = tempfile::tempdir().unwrap();
    let o = opts(server.url("/a.tar.gz"), &body);
    let err = fetch(KnownDataset::Cifar10, root.path(), &o).unwrap_err().to_string();
    assert!(err.contains("run the same command again to resume"), "{err}");
    assert!(!root.path().join("cifar-10-batches-bin").exists());
    let part = root.path().join(".downloads/a.tar.gz.part");
    assert_eq!(fs::metadata(&part).unwrap().len(), cut as u64);

    fetch(KnownDataset::Cifar10, root.path(), &o).unwrap();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].range.as_deref(), Some(format!("bytes={cut}-").as_str()));
    assert_eq!(Source::Cifar10.load(root.path()).unwrap().test.len(), 10);
}

#[test]
fn wrong_checksum_leaves_nothing() {
    let body = cifar10_archive();
    let server = Server::start(vec![("/a.tar.gz", Behaviour::Serve(body.clone()))]);
    let root = tempfile::tempdir().unwrap();
    let mut o = opts(server.url("/a.tar.gz"), &body);
    o.spec.md5 = "0".repeat(32);
    let err = fetch(KnownDataset::Cifar10, root.path(), &o).unwrap_err().to_string();
    assert!(err.contains("a.tar.gz: checksum mismatch: expected MD5 000"), "{err}");
    assert!(leftovers(root.path(), "").iter().all(|f| !f.contains("cifar")), "{:?}", leftovers(root.path(), ""));
    assert!(!root.path().join("cifar-10-batches-bin").exists());
    assert!(!root.path().join(".downloads/a.tar.gz").exists());
}

#[test]
fn http_errors_are_reported() {
    let server = Server::start(vec![("/gone", Behaviour::Status(500))]);
    let root = tempfile::tempdir().unwrap();
    for (path, code) in [("/missing", "HTTP 404"), ("/gone", "HTTP 500")] {
        let err = fetch(KnownDataset::Cifar10, root.path(), &opts(server.url(path), b"")).unwrap_err().to_string();
        assert!(err.contains(code) && err.contains(path), "{err}");
    }
    assert!(!root.path().join("cifar-10-batches-bin").exists());
}

#[test]
fn zip_archive_for_tiny_imagenet_from_disk() {
    let src = tempfile::tempdir().unwrap();
    let dir = src.path().join("tiny-imagenet-200");
    kit::write_tiny_imagenet(&dir, 2, 3, 4);
    let zip = src.path().join("t.zip");
    let bytes = kit::zip_dir(&dir);
    fs::write(&zip, &bytes).unwrap();
    let root = tempfile::tempdir().unwrap();
    let mut o = opts("http://127.0.0.1:9/unused".into(), &bytes);
    o.archive = Some(zip.clone());
    fetch(KnownDataset::TinyImageNet, root.path(), &o).unwrap();
    assert!(zip.exists(), "a user's archive is never deleted");
    let s = Source::TinyImageNet.load(root.path()).unwrap();
    assert_eq!((s.train.len(), s.test.len()), (6, 4));
}

#[test]
fn hostile_archives_are_refused_without_writing_outside() {
    let outside = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let cases = [
        ("dotdot.tar", kit::tar_with_raw_name("../escaped.txt", b"x"), "would be written outside"),
        ("abs.tar", kit::tar_with_raw_name(&format!("{}/abs.txt", outside.path().display()), b"x"), "would be written outside"),
        ("link.tar", kit::tar_with_symlink("cifar-10-batches-bin/data_batch_1.bin", "/etc/passwd"), "links are refused"),
    ];
    for (name, bytes, want) in cases {
        let path = outside.path().join(name);
        fs::write(&path, &bytes).unwrap();
        let mut o = opts("http://127.0.0.1:9/unused".into(), &bytes);
        o.archive = Some(path);
        let err = fetch(KnownDataset::Cifar10, root.path(), &o).unwrap_err().to_string();
        assert!(err.contains(want), "{name}: {err}");
    }
    assert!(!root.path().parent().unwrap().join("escaped.txt").exists());
    assert!(!outside.path().join("abs.txt").exists());
    assert!(leftovers(root.path(), "").is_empty(), "{:?}", leftovers(root.path(), ""));
}

#[test]
fn archive_without_dataset_and_incomplete_folder() {
    let src = tempfile::tempdir().unwrap();
    let other = src.path().join("something-else");
    fs::create_dir_all(&other).unwrap();
    fs::write(other.join("a.txt"), "hi").unwrap();
    let bytes = kit::tar_gz(&other);
    let path = src.path().join("x.tar.gz");
    fs::write(&path, &bytes).unwrap();
    let root = tempfile::tempdir().unwrap();
    let mut o = opts("http://127.0.0.1:9/unused".into(), &bytes);
    o.archive = Some(path);
    let err = fetch(KnownDataset::Cifar10, root.path(), &o).unwrap_err().to_string();
    assert!(err.contains("archive has no top-level folder `cifar-10-batches-bin/`"), "{err}");
    assert!(leftovers(root.path(), "").is_empty());

    fs::create_dir_all(root.path().join("cifar-10-batches-bin")).unwrap();
    let err = fetch(KnownDataset::Cifar10, root.path(), &o).unwrap_err().to_string();
    assert!(err.contains("exists but is incomplete"), "{err}");
}

/// Issue 18, case 9: a server that sends half the archive (with a matching
/// length, unverified) left it in `.downloads/` as complete, and every
/// later fetch reused it, even from a corrected URL.
#[test]
fn a_downloaded_archive_that_does_not_extract_is_not_reused() {
    let body = cifar10_archive();
    let half = body[..body.len() / 2].to_vec();
    let server = Server::start(vec![("/half/c10.tar.gz", Behaviour::Serve(half.clone())), ("/c10.tar.gz", Behaviour::Serve(body.clone()))]);
    let root = tempfile::tempdir().unwrap();
    let mut o = opts(server.url("/half/c10.tar.gz"), &half);
    o.verify_archive = false;
    let err = fetch(KnownDataset::Cifar10, root.path(), &o).unwrap_err().to_string();
    assert!(err.contains("was deleted, so the next fetch downloads it again"), "{err}");
    assert!(!root.path().join(".downloads/c10.tar.gz").exists());
    assert!(!root.path().join("cifar-10-batches-bin").exists());
    let mut o = opts(server.url("/c10.tar.gz"), &body);
    o.verify_archive = false;
    assert!(matches!(fetch(KnownDataset::Cifar10, root.path(), &o).unwrap(), Outcome::Installed { files: 7, .. }));
    assert_eq!(server.requests().iter().filter(|r| r.path == "/c10.tar.gz").count(), 1, "downloaded again from the corrected URL");
}

/// Issue 29, group 8: two fetches of one dataset started together (the
/// second once failed with "No such file"): the second waits for the
/// first and finds the dataset installed.
#[test]
fn concurrent_fetches_of_one_dataset_take_turns() {
    let body = cifar10_archive();
    let server = Server::start(vec![("/c10.tar.gz", Behaviour::Delayed { body: body.clone(), delay: std::time::Duration::from_millis(500) })]);
    let root = tempfile::tempdir().unwrap();
    let o = opts(server.url("/c10.tar.gz"), &body);
    let results: Vec<_> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..2).map(|_| s.spawn(|| fetch(KnownDataset::Cifar10, root.path(), &o))).collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let outcomes: Vec<&Outcome> = results.iter().map(|r| r.as_ref().unwrap_or_else(|e| panic!("{e}"))).collect();
    assert_eq!(outcomes.iter().filter(|o| matches!(o, Outcome::Installed { .. })).count(), 1, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| matches!(o, Outcome::AlreadyPresent(_))).count(), 1, "{outcomes:?}");
    assert_eq!(server.requests().len(), 1, "downloaded once");
}
