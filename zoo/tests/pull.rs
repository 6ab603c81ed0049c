//! `Zoo::pull` against a real HTTP server on 127.0.0.1.

use mixco_data::download::DownloadOptions;
use mixco_testkit::http::{Behaviour, Server};
use mixco_zoo::{FileKind, FileStatus, Zoo};
use sha2::Digest;
use std::path::Path;
use std::time::{Duration, Instant};

fn body(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn sha(b: &[u8]) -> String {
    mixco_data::fsutil::hex(&sha2::Sha256::digest(b))
}

fn entry(name: &str, urls: &[String], size: usize, sha256: &str) -> String {
    let urls: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
    format!(
        "[[model]]\nname = \"{name}\"\nmethod = \"moco-v2\"\narch = \"resnet18\"\nwidth = 16\nstem = \"cifar\"\ndataset = \"cifar10\"\nepochs = 3\n\
         [[model.file]]\nkind = \"checkpoint\"\nurls = [{}]\nsize = {size}\nsha256 = \"{sha256}\"\n\n",
        urls.join(", ")
    )
}

fn zoo(dir: &Path, manifest: &str) -> Zoo {
    let path = dir.join("manifest.toml");
    std::fs::write(&path, manifest).unwrap();
    Zoo::open(Some(path.to_str().unwrap()), dir.join("cache")).unwrap()
}

fn quiet(stall: f64) -> DownloadOptions {
    DownloadOptions { expected_size: None, progress: false, stall_timeout: Duration::from_secs_f64(stall), ..Default::default() }
}

#[test]
fn pull_verifies_and_second_pull_is_offline() {
    let dir = tempfile::tempdir().unwrap();
    let data = body(300_000, 1);
    let server = Server::start(vec![("/a.safetensors", Behaviour::Serve(data.clone()))]);
    let z = zoo(dir.path(), &entry("a", &[server.url("/a.safetensors")], data.len(), &sha(&data)));
    let got = z.pull("a", &[FileKind::Checkpoint], &quiet(10.0)).unwrap();
    assert_eq!(got.len(), 1);
    assert!(got[0].1, "downloaded");
    assert_eq!(std::fs::read(&got[0].0).unwrap(), data);
    drop(server); // offline from here on
    let again = z.pull("a", &[FileKind::Checkpoint], &quiet(10.0)).unwrap();
    assert!(!again[0].1, "second pull must not download");
    let m = z.manifest.get("a").unwrap();
    assert_eq!(z.status(m, &m.files[0]).unwrap(), FileStatus::Verified);
    // A damaged file is reported, and replaced by the next pull.
    std::fs::write(&got[0].0, b"damaged").unwrap();
    assert!(matches!(z.status(m, &m.files[0]).unwrap(), FileStatus::Corrupt(_)));
}

#[test]
fn interrupted_pull_resumes_with_a_range_request() {
    let dir = tempfile::tempdir().unwrap();
    let data = body(200_000, 2);
    let server = Server::start(vec![("/b", Behaviour::CutOnce { body: data.clone(), cut: 70_000 })]);
    let z = zoo(dir.path(), &entry("b", &[server.url("/b")], data.len(), &sha(&data)));
    let e = z.pull("b", &[FileKind::Checkpoint], &quiet(10.0)).unwrap_err().to_string();
    assert!(e.contains("run the same command again to resume"), "{e}");
    let (path, fetched) = z.pull("b", &[FileKind::Checkpoint], &quiet(10.0)).unwrap().remove(0);
    assert!(fetched);
    assert_eq!(std::fs::read(path).unwrap(), data);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].range.as_deref(), Some("bytes=70000-"));
}

#[test]
fn checksum_mismatch_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = body(50_000, 3);
    let server = Server::start(vec![("/c", Behaviour::Serve(data.clone()))]);
    let z = zoo(dir.path(), &entry("c", &[server.url("/c")], data.len(), &sha(b"something else")));
    let e = z.pull("c", &[FileKind::Checkpoint], &quiet(10.0)).unwrap_err().to_string();
    assert!(e.starts_with("zoo:c: the download from http://127.0.0.1:"), "{e}");
    assert!(e.contains("does not match the manifest (SHA-256") && e.ends_with("nothing was kept"), "{e}");
    // Lock files stay (deleting one that another process waits on would let a third in).
    let left: Vec<_> = walk(&dir.path().join("cache")).into_iter().filter(|p| p.extension().is_none_or(|e| e != "lock")).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn http_errors_fall_through_mirrors_and_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let data = body(10_000, 4);
    let server = Server::start(vec![
        ("/500", Behaviour::Status(500)),
        ("/ok", Behaviour::Serve(data.clone())),
    ]);
    // 404 then 500: both reported.
    let z = zoo(dir.path(), &entry("d", &[server.url("/missing"), server.url("/500")], data.len(), &sha(&data)));
    let e = z.pull("d", &[FileKind::Checkpoint], &quiet(10.0)).unwrap_err().to_string();
    assert!(e.starts_with("could not download `d`: "), "{e}");
    assert!(e.contains("HTTP 404") && e.contains("HTTP 500"), "{e}");
    // A dead mirror followed by a good one succeeds.
    let z = zoo(dir.path(), &entry("d", &[server.url("/500"), server.url("/ok")], data.len(), &sha(&data)));
    let (path, _) = z.pull("d", &[FileKind::Checkpoint], &quiet(10.0)).unwrap().remove(0);
    assert_eq!(std::fs::read(path).unwrap(), data);
}

#[test]
fn stalled_server_times_out_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = body(100_000, 5);
    let server = Server::start(vec![("/s", Behaviour::Stall { body: data.clone(), after: 1000, pause: Duration::from_secs(20) })]);
    let z = zoo(dir.path(), &entry("s", &[server.url("/s")], data.len(), &sha(&data)));
    let t = Instant::now();
    let e = z.pull("s", &[FileKind::Checkpoint], &quiet(0.5)).unwrap_err().to_string();
    assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
    assert!(e.contains("the server sent nothing for 0.5 s (stalled after 1000 bytes)"), "{e}");
    assert!(!z.path(z.manifest.get("s").unwrap(), FileKind::Checkpoint).exists());
}

#[test]
fn bad_manifests_are_refused_with_the_entry_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.toml");
    std::fs::write(&path, entry("ok", &["https://x/a".into()], 10, &"0".repeat(64)) + &entry("bad one", &["https://x/b".into()], 10, &"0".repeat(64))).unwrap();
    let e = Zoo::open(Some(path.to_str().unwrap()), dir.path().into()).err().unwrap().to_string();
    assert_eq!(e, format!("zoo manifest {}: model 2 (`bad one`): the name must be non-empty ASCII letters, digits, `-`, `_` or `.`", path.display()));
    // A manifest served over HTTP, and one that is not there.
    let text = entry("m", &["https://x/a".into()], 10, &"0".repeat(64));
    let server = Server::start(vec![("/manifest.toml", Behaviour::Serve(text.into_bytes()))]);
    let z = Zoo::open(Some(&server.url("/manifest.toml")), dir.path().into()).unwrap();
    assert_eq!(z.manifest.models[0].name, "m");
    let e = Zoo::open(Some(&server.url("/gone.toml")), dir.path().into()).err().unwrap().to_string();
    assert!(e.ends_with("/gone.toml: HTTP 404"), "{e}");
}

/// Issue 29, group 8: two pulls of one model started together once both
/// failed ("does not match the manifest"): the second waits for the first
/// and finds the file verified.
#[test]
fn concurrent_pulls_of_one_model_take_turns() {
    let dir = tempfile::tempdir().unwrap();
    let data = body(300_000, 9);
    let server = Server::start(vec![("/c.safetensors", Behaviour::Delayed { body: data.clone(), delay: Duration::from_millis(500) })]);
    let manifest = dir.path().join("manifest.toml");
    std::fs::write(&manifest, entry("c", &[server.url("/c.safetensors")], data.len(), &sha(&data))).unwrap();
    let waited = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let results: Vec<_> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..2)
            .map(|_| {
                let (manifest, dir, waited) = (manifest.clone(), dir.path().to_path_buf(), waited.clone());
                s.spawn(move || {
                    let mut z = Zoo::open(Some(manifest.to_str().unwrap()), dir.join("cache")).unwrap();
                    z.notify = Box::new(move |n| {
                        if matches!(n, mixco_zoo::Notice::Waiting { .. }) {
                            waited.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    });
                    z.pull("c", &[FileKind::Checkpoint], &quiet(10.0)).map(|v| v[0].1)
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let fetched: Vec<bool> = results.into_iter().map(|r| r.unwrap_or_else(|e| panic!("{e}"))).collect();
    assert_eq!(fetched.iter().filter(|&&f| f).count(), 1, "one downloads, the other reuses: {fetched:?}");
    assert_eq!(waited.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(server.requests().len(), 1);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}
