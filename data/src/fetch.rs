//! `mixco data fetch`: download (resumable through HTTP Range), verify the
//! archive's MD5, extract safely into a staging folder, check the files, and
//! move the dataset folder into place with one rename. A dataset folder
//! under the root is therefore either absent or complete.
//!
//! Downloads in progress live in `ROOT/.downloads/NAME.part` so that an
//! interrupted transfer resumes where it stopped.

use crate::catalog::{DatasetSpec, KnownDataset};
use crate::download::{download, DownloadOptions};
use crate::fsutil::{md5_file, sha256_file, Staging};
use crate::{Error, Result};
use indicatif::ProgressBar;
use std::fs;
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
    // One fetch of a dataset at a time: a second waits, then finds it installed.
    let lock = root.join(".downloads").join(format!("{}.lock", dataset.dir_name()));
    let _lock = crate::fsutil::FileLock::wait(&lock, || {
        if opts.progress {
            eprintln!("waiting for another mixco process fetching {} into {} ...", dataset.dir_name(), root.display());
        }
    })?;
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
