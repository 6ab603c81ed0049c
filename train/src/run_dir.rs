//! A run folder has one writer at a time, which first removes what a killed
//! writer left (its format: `mixco_model::run`).

use crate::trainer::TrainError;
use mixco_model::run::is_run_file;
use mixco_data::Error;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The lock file; not a run file (a folder holding only it holds no run).
pub const LOCK_FILE: &str = ".mixco.lock";

/// An exclusive advisory lock (`flock`) on `DIR/.mixco.lock` for the life of
/// a run: the kernel releases it when the process ends, however it ends.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    pub dir: PathBuf,
}

impl RunLock {
    /// Creates `dir` if needed and locks it, writing this process's PID
    /// into the lock file. Creating that file is also the check that the
    /// folder is writable, before any epoch is trained. A folder another
    /// process holds is refused, naming its PID.
    pub fn acquire(dir: &Path) -> Result<RunLock, TrainError> {
        if dir.exists() && !dir.is_dir() {
            return Err(Error::format(dir, "is a file, not a folder: a run writes several files into its output folder; choose a folder").into());
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(|e| {
            Error::io(&path, std::io::Error::new(e.kind(), format!("the output folder is not writable ({e})")))
        })?;
        // SAFETY: flock on a file descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let holder = pid.trim().parse::<u32>().map(|p| format!("process {p}")).unwrap_or_else(|_| "another process".into());
            return Err(TrainError::Busy { dir: dir.into(), holder });
        }
        let write = |f: &mut File| -> std::io::Result<()> {
            f.set_len(0)?;
            f.rewind()?;
            writeln!(f, "{}", std::process::id())
        };
        write(&mut file).map_err(|e| Error::io(&path, e))?;
        Ok(RunLock { _file: file, dir: dir.into() })
    }

    /// Deletes the temporary files of run files (`.NAME.tmp-PID-N`, see
    /// `mixco_data::fsutil::temp_path`) that a killed or failed writer left;
    /// with the lock held, none of them is being written. Returns them.
    pub fn remove_stale_temps(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let stale: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.file_name().and_then(|n| n.to_str()).and_then(mixco_data::fsutil::temp_target).is_some_and(is_run_file))
            .collect();
        stale.into_iter().filter(|p| std::fs::remove_file(p).is_ok()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_writer_at_a_time_and_the_holder_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let lock = RunLock::acquire(&run).unwrap();
        assert_eq!(std::fs::read_to_string(run.join(LOCK_FILE)).unwrap().trim(), std::process::id().to_string());
        // flock locks belong to open file descriptions: a second open in
        // the same process conflicts as another process's would.
        let e = RunLock::acquire(&run).unwrap_err().to_string();
        assert!(e.contains(&format!("process {}", std::process::id())) && e.contains("run"), "{e}");
        drop(lock);
        RunLock::acquire(&run).unwrap();
    }

    #[test]
    fn an_unwritable_folder_is_found_before_training() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"x").unwrap();
        // A regular file where the folder should be (root can write into read-only folders).
        let e = RunLock::acquire(&file).unwrap_err().to_string();
        assert!(e.contains("a-file: is a file, not a folder"), "{e}");
    }

    #[test]
    fn stale_temporary_files_of_run_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let lock = RunLock::acquire(dir.path()).unwrap();
        for name in [".last.safetensors.tmp-99999-0", ".log.jsonl.tmp-1-3", ".notes.txt.tmp-5-0", "last.safetensors", ".last.safetensors.tmp-x-0"] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let mut removed: Vec<String> = lock.remove_stale_temps().iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        removed.sort();
        assert_eq!(removed, [".last.safetensors.tmp-99999-0", ".log.jsonl.tmp-1-3"]);
        assert!(dir.path().join("last.safetensors").exists() && dir.path().join(".notes.txt.tmp-5-0").exists());
    }
}
