//! A run folder has one writer at a time, which first removes what a killed
//! writer left (its format: `mixco_model::run`); a new run never appends to
//! or replaces another run's files unasked, and a resumed run's log is cut
//! (in place) or copied (into another folder) to its checkpoint's step.

use crate::trainer::TrainError;
use mixco_model::run::is_run_file;
use mixco_data::Error;
use std::fs::File;
use std::io::{Read, Seek, Write};
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
        if !mixco_data::fsutil::try_lock(&file, &path)? {
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

/// Where a run will write, decided before anything in the folder changes:
/// whether it continues the run of its resume checkpoint in place, and the
/// files of an earlier run that `--overwrite` asked to delete.
#[derive(Debug)]
pub struct FolderPlan {
    out: PathBuf,
    /// The resume checkpoint's folder, if resuming.
    from: Option<PathBuf>,
    in_place: bool,
    earlier: Vec<PathBuf>,
}

/// What preparing the folder did, for the caller to report.
#[derive(Debug, Default)]
pub struct Prepared {
    /// Temporary files a killed writer left, deleted.
    pub stale: Vec<PathBuf>,
    /// Log lines after the resume step, dropped (they are trained again).
    pub dropped_lines: usize,
}

impl FolderPlan {
    /// A run into `out`, resumed from checkpoint `resume` if given. Resuming
    /// in the checkpoint's own folder continues that run; anywhere else the
    /// folder is checked for another run as for a fresh start: refused,
    /// unless `overwrite`.
    pub fn new(out: &Path, resume: Option<&Path>, overwrite: bool) -> Result<FolderPlan, TrainError> {
        let from = resume.map(|p| p.parent().unwrap_or(Path::new(".")).to_path_buf());
        let in_place = from.as_ref().is_some_and(|d| same_dir(d, out));
        let earlier = if in_place { Vec::new() } else { earlier_run(out) };
        if !earlier.is_empty() && !overwrite {
            return Err(TrainError::HoldsRun { dir: out.into() });
        }
        Ok(FolderPlan { out: out.into(), from, in_place, earlier })
    }

    /// The locked folder made ready for a run at `step`: stale temporary
    /// files and the earlier run's files deleted, the log cut or copied to
    /// the resume step.
    pub fn prepare(self, lock: &RunLock, step: usize) -> Result<Prepared, TrainError> {
        let stale = lock.remove_stale_temps();
        for p in &self.earlier {
            std::fs::remove_file(p).map_err(|e| Error::io(p, std::io::Error::new(e.kind(), format!("cannot delete the earlier run's file: {e}"))))?;
        }
        let dropped_lines = match &self.from {
            Some(_) if self.in_place => mixco_model::run::truncate_log(&self.out, step)?,
            Some(from) => {
                mixco_model::run::copy_log(from, &self.out, step)?;
                0
            }
            None => 0,
        };
        Ok(Prepared { stale, dropped_lines })
    }
}

/// Whether two paths name the same folder (a missing one is no folder).
pub fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The run files in `out` (none if it is missing or no folder).
pub fn earlier_run(out: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(out) else { return Vec::new() };
    entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.file_name().is_some_and(|n| is_run_file(&n.to_string_lossy()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_run(dir: &Path, steps: &[usize]) {
        std::fs::create_dir_all(dir).unwrap();
        let line = |s: usize| format!("{{\"epoch\":{s},\"step\":{s},\"lr\":0.1,\"loss\":null,\"loss_contrastive\":null,\"loss_mix\":null,\"knn_top1\":null,\"query_cosine\":null,\"probe_top1\":null,\"images_per_s\":0.0,\"seconds\":0.0}}\n");
        let lines: String = steps.iter().map(|&s| line(s)).collect();
        std::fs::write(dir.join(mixco_model::run::LOG_FILE), lines).unwrap();
        std::fs::write(dir.join(mixco_model::run::LAST_FILE), b"ck").unwrap();
    }

    #[test]
    fn a_new_run_refuses_another_runs_folder_unless_asked() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        // A missing folder, or one of other files, holds no run.
        assert!(FolderPlan::new(&out, None, false).is_ok());
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("notes.txt"), b"mine").unwrap();
        assert!(FolderPlan::new(&out, None, false).is_ok());
        write_run(&out, &[1, 2]);
        let e = FolderPlan::new(&out, None, false).unwrap_err();
        assert!(matches!(e, TrainError::HoldsRun { .. }) && e.to_string().contains("already holds a run"), "{e}");
        // --overwrite: its run files go, the user's file stays.
        let lock = RunLock::acquire(&out).unwrap();
        FolderPlan::new(&out, None, true).unwrap().prepare(&lock, 0).unwrap();
        assert!(earlier_run(&out).is_empty() && out.join("notes.txt").exists());
    }

    #[test]
    fn a_resume_cuts_its_log_in_place_and_copies_it_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        write_run(&a, &[10, 20, 30]);
        let ck = a.join(mixco_model::run::LAST_FILE);
        // In place (named through another path to the same folder): the lines after step 20 go.
        let plan = FolderPlan::new(&dir.path().join("a/../a"), Some(&ck), false).unwrap();
        let lock = RunLock::acquire(&a).unwrap();
        assert_eq!(plan.prepare(&lock, 20).unwrap().dropped_lines, 1);
        drop(lock);
        assert_eq!(std::fs::read_to_string(a.join("log.jsonl")).unwrap().lines().count(), 2);
        // Into another folder: the log up to the step is copied; a folder holding a run is refused.
        let lock = RunLock::acquire(&b).unwrap();
        FolderPlan::new(&b, Some(&ck), false).unwrap().prepare(&lock, 10).unwrap();
        assert_eq!(std::fs::read_to_string(b.join("log.jsonl")).unwrap().lines().count(), 1);
        write_run(&b, &[1]);
        assert!(FolderPlan::new(&b, Some(&ck), false).is_err());
    }

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
