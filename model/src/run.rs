//! A run folder's format, shared by the trainer (which writes it), `mixco
//! plot` and the zoo (which read it), none of which needs libtorch: the file
//! names and `log.jsonl`, one [`EpochLog`] per line.

use mixco_data::{fsutil, Error};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

/// The files a run writes into its output folder.
pub const LOG_FILE: &str = "log.jsonl";
pub const LAST_FILE: &str = "last.safetensors";
pub const FINAL_FILE: &str = "final.safetensors";
pub const CURVES_FILE: &str = "curves.png";
/// The same curves as SVG (runs before 0.1 also wrote this name).
pub const CURVES_SVG_FILE: &str = "curves.svg";
/// TensorBoard's event files (`mixco_eval::tensorboard`), one per start of a run.
pub const EVENTS_PREFIX: &str = "events.out.tfevents.";

/// The checkpoint kept after `epoch` (`save_every`).
pub fn epoch_file(epoch: usize) -> String {
    format!("epoch-{epoch:04}.safetensors")
}

/// Whether `name` is one of the files a run writes (those above, or an `epoch-NNNN` checkpoint).
pub fn is_run_file(name: &str) -> bool {
    matches!(name, LOG_FILE | LAST_FILE | FINAL_FILE | CURVES_FILE | CURVES_SVG_FILE)
        || (name.starts_with("epoch-") && name.ends_with(".safetensors"))
        || name.starts_with(EVENTS_PREFIX)
}

/// A run's name (in curves and plots): its folder's.
pub fn run_name(dir: &Path) -> String {
    dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| dir.display().to_string())
}

/// One line of `log.jsonl`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochLog {
    /// Epochs completed; 0 is the random initialisation (kNN only).
    pub epoch: usize,
    // Defaults let `mixco plot` read logs of other tools with only the curves' fields.
    #[serde(default)]
    pub step: usize,
    #[serde(default)]
    pub lr: f64,
    pub loss: Option<f64>,
    pub loss_contrastive: Option<f64>,
    pub loss_mix: Option<f64>,
    pub knn_top1: Option<f64>,
    /// Epoch mean of the batches' mean cosine between the projections of
    /// different images (the collapse monitor; absent at epoch 0 and in older logs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_cosine: Option<f64>,
    /// Quick linear probe (at the random initialisation and at the end).
    #[serde(default)]
    pub probe_top1: Option<f64>,
    #[serde(default)]
    pub images_per_s: f64,
    #[serde(default)]
    pub seconds: f64,
    /// What changed in the run before this epoch (a resume that extended it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The lines of a run's `log.jsonl` (a resumed run appends to it).
pub fn read_log(path: &Path) -> Result<Vec<EpochLog>, Error> {
    Ok(raw_lines(path)?.into_iter().map(|(_, line)| line).collect())
}

/// Appends one line to `log.jsonl` (created if missing).
pub fn append_log(path: &Path, line: &EpochLog) -> Result<(), Error> {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| Error::io(path, e))?;
    writeln!(f, "{}", serde_json::to_string(line).expect("a log line serialises")).map_err(|e| Error::io(path, e))
}

/// The lines of the log at `path` as written (a re-serialised float could
/// differ in its last digit), each with what it says.
fn raw_lines(path: &Path) -> Result<Vec<(String, EpochLog)>, Error> {
    let text = fsutil::read_text(path)?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let line: EpochLog = serde_json::from_str(l).map_err(|e| Error::format(path, format!("line {}: not a log line ({e})", i + 1)))?;
            Ok((l.to_string(), line))
        })
        .collect()
}

/// `log.jsonl`'s text for the lines at or before `step`, byte for byte.
fn log_up_to(lines: &[(String, EpochLog)], step: usize) -> String {
    lines.iter().filter(|(_, l)| l.step <= step).map(|(l, _)| format!("{l}\n")).collect()
}

/// Rewrites `dir/log.jsonl` (atomically) without the lines of steps past
/// `step`: epochs logged after the checkpoint a run resumes from, which the
/// resumed run trains and logs again. Returns how many lines were dropped.
pub fn truncate_log(dir: &Path, step: usize) -> Result<usize, Error> {
    let path = dir.join(LOG_FILE);
    if !path.exists() {
        return Ok(0);
    }
    let lines = raw_lines(&path)?;
    let dropped = lines.iter().filter(|(_, l)| l.step > step).count();
    if dropped > 0 {
        fsutil::write_atomic(&path, log_up_to(&lines, step).as_bytes())?;
    }
    Ok(dropped)
}

/// Starts `to/log.jsonl` for a run resumed from another folder `from`: the
/// lines of `from/log.jsonl` up to `step`, so that the new folder's log and
/// curves cover the whole run. No log in `from`: an empty one.
pub fn copy_log(from: &Path, to: &Path, step: usize) -> Result<(), Error> {
    let src = from.join(LOG_FILE);
    let lines = if src.exists() { raw_lines(&src)? } else { Vec::new() };
    fsutil::write_atomic(&to.join(LOG_FILE), log_up_to(&lines, step).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_past_the_checkpoint_are_dropped_or_not_copied() {
        let dir = tempfile::tempdir().unwrap();
        let line = |epoch: usize, step: usize| format!("{{\"epoch\":{epoch},\"step\":{step},\"lr\":0.1,\"loss\":null,\"loss_contrastive\":null,\"loss_mix\":null,\"knn_top1\":null,\"query_cosine\":null,\"probe_top1\":null,\"images_per_s\":0.0,\"seconds\":0.0}}\n");
        std::fs::write(dir.path().join(LOG_FILE), [line(0, 0), line(1, 4), line(2, 8)].concat()).unwrap();
        let to = dir.path().join("elsewhere");
        copy_log(dir.path(), &to, 4).unwrap();
        assert_eq!(std::fs::read_to_string(to.join(LOG_FILE)).unwrap(), [line(0, 0), line(1, 4)].concat(), "the lines as written");
        assert_eq!(truncate_log(dir.path(), 4).unwrap(), 1);
        let steps: Vec<usize> = read_log(&dir.path().join(LOG_FILE)).unwrap().iter().map(|l| l.step).collect();
        assert_eq!(steps, [0, 4]);
        assert_eq!(truncate_log(dir.path(), 4).unwrap(), 0);
        copy_log(&dir.path().join("no-log-here"), &to, 4).unwrap();
        assert_eq!(std::fs::read_to_string(to.join(LOG_FILE)).unwrap(), "");
    }

    #[test]
    fn run_files_are_known_by_name() {
        for f in [LOG_FILE, LAST_FILE, FINAL_FILE, CURVES_FILE, CURVES_SVG_FILE, &epoch_file(3)] {
            assert!(is_run_file(f), "{f}");
        }
        for f in [".mixco.lock", "notes.txt", "epoch-3.txt"] {
            assert!(!is_run_file(f), "{f}");
        }
    }
}
