//! File helpers shared by every crate that writes: atomic writes (temp file in
//! the same folder + rename) and streaming digests.

use crate::{Error, Result};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A path beside `path` that no other process will pick: `.name.tmp-PID-N`.
pub fn temp_path(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// The file name a temporary file of [`temp_path`] stands in for (`NAME` of
/// `.NAME.tmp-PID-N`), or `None` for any other name.
pub fn temp_target(file: &str) -> Option<&str> {
    let (name, rest) = file.strip_prefix('.')?.rsplit_once(".tmp-")?;
    let (pid, n) = rest.split_once('-')?;
    (pid.parse::<u32>().is_ok() && n.parse::<usize>().is_ok()).then_some(name)
}

/// Writes through `write` into a temporary file beside `path`, syncs it and
/// renames it into place: readers see the old file or the whole new one,
/// never half of it. On error the temporary file is removed.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let tmp = temp_path(path);
    let result = (|| {
        let file = File::create(&tmp)?;
        let mut w = std::io::BufWriter::new(file);
        write(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Streams a file through a digest.
pub fn digest_file<D: digest::Digest>(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = D::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// `$MIXCO_CACHE/SUB`, else `$XDG_CACHE_HOME/mixco/SUB`, else `~/.cache/mixco/SUB`.
pub fn cache_dir(sub: &str) -> PathBuf {
    let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(c) = non_empty("MIXCO_CACHE") {
        return c.join(sub);
    }
    non_empty("XDG_CACHE_HOME")
        .or_else(|| non_empty("HOME").map(|h| h.join(".cache")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("mixco")
        .join(sub)
}

/// SHA-256 of bytes in memory, as hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}

pub fn sha256_file(path: &Path) -> Result<String> {
    digest_file::<sha2::Sha256>(path)
}

pub fn md5_file(path: &Path) -> Result<String> {
    digest_file::<md5::Md5>(path)
}

/// A staging folder removed on drop unless [`Staging::keep`] is called.
pub struct Staging {
    path: PathBuf,
    keep: bool,
}

impl Staging {
    pub fn new(path: PathBuf) -> Result<Staging> {
        if path.exists() {
            fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        }
        fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        Ok(Staging { path, keep: false })
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn keep(mut self) -> PathBuf {
        self.keep = true;
        self.path.clone()
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| Error::io(path, e))
}

pub fn read_text(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| Error::io(path, e))
}
