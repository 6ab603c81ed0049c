//! File helpers shared by every crate that writes: atomic writes (temp file in
//! the same folder + rename) and streaming digests.

use crate::{Error, Result};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `name` as a file name: letters, digits, `.` and `-` kept, `_` as `__`,
/// any other byte as `_XX`, so that distinct names stay distinct files
/// (`m+1.onnx` and `m_1.onnx` once wrote one).
pub fn safe_file_name(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'_' => "__".to_string(),
            b if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' => (b as char).to_string(),
            b => format!("_{b:02x}"),
        })
        .collect()
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

/// Where an output file really goes.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// A regular file (or none yet) at this path: replaced atomically. A
    /// symlink's target, so that the link stays a link.
    File(PathBuf),
    /// A character device or FIFO (`/dev/null`, `/dev/stdout`, a pipe):
    /// written through in place, never renamed over.
    Stream(PathBuf),
}

/// What `path` names: an output is never renamed over a link, a device or a
/// FIFO; a block device, a socket, a folder or a dangling link is refused.
fn target(path: &Path) -> Result<Target> {
    use std::os::unix::fs::FileTypeExt;
    let refuse = |what: &str| Error::format(path, format!("is {what}; mixco writes an output only to a regular file, a character device or a FIFO"));
    let link = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Target::File(path.into())),
        Err(e) => return Err(Error::io(path, e)),
        Ok(m) => m.file_type().is_symlink(),
    };
    // Following links: what the output would really be written into.
    let meta = fs::metadata(path).map_err(|_| refuse("a symbolic link to nothing that exists"))?;
    let kind = meta.file_type();
    match () {
        _ if kind.is_file() && link => Ok(Target::File(fs::canonicalize(path).map_err(|e| Error::io(path, e))?)),
        _ if kind.is_file() => Ok(Target::File(path.into())),
        _ if kind.is_char_device() || kind.is_fifo() => Ok(Target::Stream(path.into())),
        _ if kind.is_dir() => Err(refuse("a folder")),
        _ if kind.is_block_device() => Err(refuse("a block device (a disk)")),
        _ => Err(refuse("a socket")),
    }
}

/// Writes through `write` into a temporary file beside `path`, syncs it and
/// renames it into place: readers see the old file or the whole new one,
/// never half of it. On error the temporary file is removed. A symlink is
/// followed (its target replaced, the link kept); a character device or
/// FIFO is written in place; what cannot hold a file is refused by name.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    let path = match target(path)? {
        Target::File(p) => p,
        Target::Stream(p) => return write_through(&p, write),
    };
    let path = path.as_path();
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

/// A device or FIFO written in place; its errors (a full device) are the write's.
fn write_through(path: &Path, write: impl FnOnce(&mut std::io::BufWriter<File>) -> std::io::Result<()>) -> Result<()> {
    let result = (|| {
        let mut w = std::io::BufWriter::new(fs::OpenOptions::new().write(true).open(path)?);
        write(&mut w)?;
        w.into_inner().map_err(|e| e.into_error())?.flush()
    })();
    result.map_err(|e| Error::io(path, e))
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

/// An exclusive advisory lock (`flock`) on a lock file, held until dropped;
/// the kernel releases it when the process ends, however it ends. Two
/// processes fetching the same file take turns: the second finds the
/// first's result instead of writing into the same partial file.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Locks `path` (created if needed), calling `waiting` once if another
    /// process holds it, then waiting for it.
    pub fn wait(path: &Path, waiting: impl FnOnce()) -> Result<FileLock> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let file = fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(|e| Error::io(path, e))?;
        if !try_lock(&file, path)? {
            waiting();
            file.lock().map_err(|e| Error::io(path, e))?;
        }
        Ok(FileLock { _file: file })
    }
}

/// Takes `file`'s exclusive advisory lock (std's `File::try_lock`, `flock`
/// on Linux) without waiting: false where another process holds it. The
/// kernel releases it when the file is closed or the process ends, however
/// it ends. The one lock of both kinds: fetches (`FileLock`) and run
/// folders (`mixco_train::run_dir::RunLock`).
pub fn try_lock(file: &File, path: &Path) -> Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(path, e)),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 29, group 1: outputs used to be renamed over whatever the path
    /// named (a private null device, a symlink to stdout or to a file elsewhere).
    #[test]
    fn outputs_are_never_renamed_over_links_devices_or_fifos() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // A symlink to a regular file: the file is replaced, the link stays.
        std::fs::write(d.join("real.json"), b"old").unwrap();
        std::os::unix::fs::symlink(d.join("real.json"), d.join("link.json")).unwrap();
        write_atomic(&d.join("link.json"), b"new").unwrap();
        assert!(std::fs::symlink_metadata(d.join("link.json")).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(d.join("real.json")).unwrap(), b"new");
        // The null device: written through, still a device.
        write_atomic(Path::new("/dev/null"), b"x").unwrap();
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
        // A full device: the write fails and says so.
        let e = write_atomic(Path::new("/dev/full"), &vec![0u8; 1 << 16]).unwrap_err().to_string();
        assert!(e.contains("/dev/full") && e.contains("No space left"), "{e}");
        // A FIFO: written in place (a reader on the other end gets the bytes).
        let fifo = d.join("pipe");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let reader = { let f = fifo.clone(); std::thread::spawn(move || std::fs::read(f).unwrap()) };
        write_atomic(&fifo, b"through").unwrap();
        assert_eq!(reader.join().unwrap(), b"through");
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
        // What cannot hold a file is refused by name, and nothing is written.
        std::os::unix::fs::symlink(d.join("nothing"), d.join("dangling")).unwrap();
        let e = write_atomic(&d.join("dangling"), b"x").unwrap_err().to_string();
        assert!(e.contains("dangling: is a symbolic link to nothing"), "{e}");
        let e = write_atomic(d, b"x").unwrap_err().to_string();
        assert!(e.contains("is a folder"), "{e}");
        assert_eq!(std::fs::read_dir(d).unwrap().count(), 4);
    }
}
