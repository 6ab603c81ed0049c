//! `mixco data fetch`: download (resumable through HTTP Range), verify the
//! archive's MD5, extract safely into a staging folder, check the files, and
//! move the dataset folder into place with one rename. A dataset folder
//! under the root is therefore either absent or complete.
//!
//! Downloads in progress live in `ROOT/.downloads/NAME.part` so that an
//! interrupted transfer resumes where it stopped.

use crate::catalog::{DatasetSpec, KnownDataset};
use crate::fsutil::{md5_file, sha256_file, Staging};
use crate::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct FetchOptions {
    pub spec: DatasetSpec,
    /// Use this archive instead of downloading.
    pub archive: Option<PathBuf>,
    /// Check the archive's MD5.
    pub verify_archive: bool,
    /// Check the extracted files against their official SHA-256, where known.
    pub verify_files: bool,
    pub keep_archive: bool,
    pub progress: bool,
}

impl FetchOptions {
    pub fn new(dataset: KnownDataset) -> FetchOptions {
        FetchOptions { spec: dataset.spec(), archive: None, verify_archive: true, verify_files: true, keep_archive: false, progress: true }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    AlreadyPresent(PathBuf),
    Installed { dir: PathBuf, files: usize },
}

/// The files of `dataset` missing from `dir`.
pub fn missing_files(dataset: KnownDataset, dir: &Path) -> Vec<&'static str> {
    dataset.required_files().iter().copied().filter(|f| !dir.join(f).is_file()).collect()
}

/// Compares the extracted files with their known SHA-256; returns the
/// per-file results (empty where no digest is known).
pub fn check_known_files(dataset: KnownDataset, dir: &Path) -> Result<Vec<(String, bool)>> {
    dataset
        .known_file_sha256()
        .iter()
        .map(|(f, want)| {
            let path = dir.join(f);
            let ok = path.is_file() && sha256_file(&path)? == *want;
            Ok((f.to_string(), ok))
        })
        .collect()
}

pub fn fetch(dataset: KnownDataset, root: &Path, opts: &FetchOptions) -> Result<Outcome> {
    let dir = root.join(dataset.dir_name());
    if dir.exists() {
        let missing = missing_files(dataset, &dir);
        if missing.is_empty() {
            return Ok(Outcome::AlreadyPresent(dir));
        }
        return Err(Error::format(
            &dir,
            format!("exists but is incomplete (missing {}); remove it and fetch again", missing.join(", ")),
        ));
    }
    fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;

    let (archive, downloaded) = match &opts.archive {
        Some(a) => (a.clone(), false),
        None => {
            let name = opts.spec.url.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("archive");
            let dest = root.join(".downloads").join(name);
            if !dest.is_file() {
                download(&opts.spec.url, &dest, &DownloadOptions { expected_size: opts.spec.size, progress: opts.progress, ..Default::default() })?;
            }
            (dest, true)
        }
    };
    if !archive.is_file() {
        return Err(Error::format(&archive, "archive does not exist"));
    }
    if opts.verify_archive {
        let actual = md5_file(&archive)?;
        if actual != opts.spec.md5.to_ascii_lowercase() {
            if downloaded {
                let _ = fs::remove_file(&archive);
            }
            return Err(Error::Checksum {
                path: archive,
                algo: "MD5",
                expected: opts.spec.md5.clone(),
                actual,
            });
        }
    }

    match install(dataset, &archive, &dir, root, opts) {
        Ok(files) => {
            if downloaded && !opts.keep_archive {
                let _ = fs::remove_file(&archive);
            }
            Ok(Outcome::Installed { dir, files })
        }
        // A downloaded archive that does not install is not kept: the next
        // fetch (with a corrected --url, say) would reuse it as complete.
        Err(e) if downloaded => {
            let kept = fs::remove_file(&archive).is_err() && archive.exists();
            let what = if kept { "could not be deleted; delete it before fetching again" } else { "was deleted, so the next fetch downloads it again" };
            Err(Error::Invalid(format!("{e} (the downloaded archive {} {what})", archive.display())))
        }
        Err(e) => Err(e),
    }
}

/// Extracts `archive` beside `dir`, checks it and moves the dataset folder
/// into place: the number of files extracted.
fn install(dataset: KnownDataset, archive: &Path, dir: &Path, root: &Path, opts: &FetchOptions) -> Result<usize> {
    let staging = Staging::new(root.join(format!(".staging-{}", dataset.dir_name())))?;
    let spinner = spinner(opts.progress, format!("extracting {}", archive.display()));
    let files = crate::archive::extract(archive, staging.path())?;
    spinner.finish_and_clear();
    let extracted = staging.path().join(dataset.dir_name());
    if !extracted.is_dir() {
        return Err(Error::format(archive, format!("archive has no top-level folder `{}/`", dataset.dir_name())));
    }
    let missing = missing_files(dataset, &extracted);
    if !missing.is_empty() {
        return Err(Error::format(archive, format!("archive lacks {}", missing.join(", "))));
    }
    let checks = if opts.verify_files { check_known_files(dataset, &extracted)? } else { Vec::new() };
    for (file, ok) in checks {
        if !ok {
            return Err(Error::format(
                archive,
                format!("extracted `{}/{file}` does not match its official SHA-256", dataset.dir_name()),
            ));
        }
    }
    fs::rename(&extracted, dir).map_err(|e| Error::io(dir, e))?;
    drop(staging);
    Ok(files)
}

fn spinner(visible: bool, msg: String) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner().with_message(msg);
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// Downloads `url` to `dest`, resuming from `dest.part` when a previous
/// transfer was cut off. `dest` appears only once the body is complete.
/// How a download behaves.
#[derive(Clone, Debug)]
pub struct DownloadOptions {
    /// Checked against what the server announces, and shown by the progress bar.
    pub expected_size: Option<u64>,
    pub progress: bool,
    /// Give up when no byte arrives for this long (`MIXCO_STALL_TIMEOUT`
    /// seconds, default 60).
    pub stall_timeout: Duration,
}

impl Default for DownloadOptions {
    fn default() -> DownloadOptions {
        let secs = std::env::var("MIXCO_STALL_TIMEOUT").ok().and_then(|s| s.parse::<f64>().ok()).filter(|s| *s > 0.0);
        DownloadOptions { expected_size: None, progress: true, stall_timeout: Duration::from_secs_f64(secs.unwrap_or(60.0)) }
    }
}

pub fn download(url: &str, dest: &Path, opts: &DownloadOptions) -> Result<()> {
    let (expected_size, progress, stall) = (opts.expected_size, opts.progress, opts.stall_timeout);
    let fail = |problem: String| Error::Download { url: url.to_string(), problem };
    if let Some(dir) = dest.parent() {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let part = PathBuf::from(format!("{}.part", dest.display()));
    let offset = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(stall.min(Duration::from_secs(30))))
        .timeout_recv_response(Some(stall))
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent.get(url);
    if offset > 0 {
        req = req.header("Range", format!("bytes={offset}-"));
    }
    let resp = req.call().map_err(|e| fail(e.to_string()))?;
    let status = resp.status().as_u16();
    let length = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let start = match status {
        200 => 0,
        206 => {
            let range = resp.headers().get("content-range").and_then(|v| v.to_str().ok()).unwrap_or("");
            let first = range.strip_prefix("bytes ").and_then(|r| r.split('-').next()).and_then(|s| s.parse::<u64>().ok());
            if first != Some(offset) {
                return Err(fail(format!("server resumed at `{range}`, asked for byte {offset}")));
            }
            offset
        }
        416 if offset > 0 => {
            // The part file already holds the whole body.
            fs::rename(&part, dest).map_err(|e| Error::io(dest, e))?;
            return Ok(());
        }
        s => return Err(fail(format!("HTTP {s}"))),
    };
    let total = length.map(|l| l + start).or(expected_size);

    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .append(start > 0)
        .truncate(start == 0)
        .open(&part)
        .map_err(|e| Error::io(&part, e))?;
    let pb = if progress { ProgressBar::new(total.unwrap_or(0)) } else { ProgressBar::hidden() };
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .unwrap()
            .progress_chars("=> "),
    );
    pb.set_message(dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
    pb.set_position(start);

    // Reads happen on a helper thread so that a server which goes silent
    // mid-body is noticed (ureq has no per-read timeout).
    let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<Vec<u8>>>(4);
    let mut reader = resp.into_body().into_reader();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let chunk = match reader.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => Ok(buf[..n].to_vec()),
                Err(e) => Err(e),
            };
            let stop = chunk.is_err();
            if tx.send(chunk).is_err() || stop {
                return;
            }
        }
    });
    let mut have = start;
    loop {
        let chunk = match rx.recv_timeout(stall) {
            Ok(Ok(c)) => c,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Ok(Err(e)) => {
                pb.abandon();
                return Err(fail(format!(
                    "transfer broke off after {have} bytes ({e}); run the same command again to resume"
                )));
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                pb.abandon();
                return Err(fail(format!(
                    "the server sent nothing for {:.1} s (stalled after {have} bytes); run the same command again to resume",
                    stall.as_secs_f64()
                )));
            }
        };
        file.write_all(&chunk).map_err(|e| Error::io(&part, e))?;
        have += chunk.len() as u64;
        pb.set_position(have);
    }
    file.sync_all().map_err(|e| Error::io(&part, e))?;
    pb.finish_and_clear();
    if let Some(t) = total {
        if have != t {
            return Err(fail(format!(
                "transfer ended after {have} of {t} bytes; run the same command again to resume"
            )));
        }
    }
    fs::rename(&part, dest).map_err(|e| Error::io(dest, e))
}
