//! HTTP downloads that resume (`Range`), notice a stalled server and never
//! leave a partial file under the final name: the body goes to `DEST.part`
//! and is renamed once complete. Used by `mixco data fetch` and `mixco zoo pull`.

use crate::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

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

/// Where the server's answer leaves the transfer.
enum Start {
    /// Write the body from this byte of the file on.
    At(u64),
    /// The part file already holds the whole body.
    Complete,
}

/// Downloads `url` to `dest`, resuming from `dest.part` when a previous
/// transfer was cut off. `dest` appears only once the body is complete.
pub fn download(url: &str, dest: &Path, opts: &DownloadOptions) -> Result<()> {
    let fail = |problem: String| Error::Download { url: url.to_string(), problem };
    if let Some(dir) = dest.parent() {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let part = PathBuf::from(format!("{}.part", dest.display()));
    let offset = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    let resp = request(url, offset, opts.stall_timeout).map_err(fail)?;
    let length = resp.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let start = match resume_point(&resp, offset).map_err(fail)? {
        Start::At(start) => start,
        Start::Complete => return fs::rename(&part, dest).map_err(|e| Error::io(dest, e)),
    };
    let total = length.map(|l| l + start).or(opts.expected_size);
    let mut file = OpenOptions::new().create(true).write(true).append(start > 0).truncate(start == 0).open(&part).map_err(|e| Error::io(&part, e))?;
    let pb = bar(opts.progress, total, dest, start);
    let have = match copy_body(chunks(resp), &mut file, &part, &pb, start, opts.stall_timeout) {
        Ok(have) => have,
        Err(e) => {
            pb.abandon();
            return Err(match e {
                Copy::Io(e) => e,
                Copy::Broken(problem) => fail(problem),
            });
        }
    };
    file.sync_all().map_err(|e| Error::io(&part, e))?;
    pb.finish_and_clear();
    if let Some(t) = total.filter(|&t| t != have) {
        return Err(fail(format!("transfer ended after {have} of {t} bytes; run the same command again to resume")));
    }
    fs::rename(&part, dest).map_err(|e| Error::io(dest, e))
}

/// GET `url`, from byte `offset` on when there is a part file.
fn request(url: &str, offset: u64, stall: Duration) -> std::result::Result<ureq::http::Response<ureq::Body>, String> {
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
    req.call().map_err(|e| e.to_string())
}

fn resume_point(resp: &ureq::http::Response<ureq::Body>, offset: u64) -> std::result::Result<Start, String> {
    match resp.status().as_u16() {
        200 => Ok(Start::At(0)),
        206 => {
            let range = resp.headers().get("content-range").and_then(|v| v.to_str().ok()).unwrap_or("");
            let first = range.strip_prefix("bytes ").and_then(|r| r.split('-').next()).and_then(|s| s.parse::<u64>().ok());
            match first == Some(offset) {
                true => Ok(Start::At(offset)),
                false => Err(format!("server resumed at `{range}`, asked for byte {offset}")),
            }
        }
        416 if offset > 0 => Ok(Start::Complete),
        s => Err(format!("HTTP {s}")),
    }
}

fn bar(visible: bool, total: Option<u64>, dest: &Path, start: u64) -> ProgressBar {
    let pb = if visible { ProgressBar::new(total.unwrap_or(0)) } else { ProgressBar::hidden() };
    pb.set_style(ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}").unwrap().progress_chars("=> "));
    pb.set_message(dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
    pb.set_position(start);
    pb
}

/// The body's chunks, read on a helper thread so that a server which goes
/// silent mid-body is noticed (ureq has no per-read timeout).
fn chunks(resp: ureq::http::Response<ureq::Body>) -> Receiver<std::io::Result<Vec<u8>>> {
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
    rx
}

enum Copy {
    Io(Error),
    /// The transfer broke off or stalled (resumable).
    Broken(String),
}

/// Appends the chunks to `file` until the body ends; returns the file's length.
fn copy_body(rx: Receiver<std::io::Result<Vec<u8>>>, file: &mut File, part: &Path, pb: &ProgressBar, start: u64, stall: Duration) -> std::result::Result<u64, Copy> {
    let mut have = start;
    loop {
        let chunk = match rx.recv_timeout(stall) {
            Ok(Ok(c)) => c,
            Err(RecvTimeoutError::Disconnected) => return Ok(have),
            Ok(Err(e)) => return Err(Copy::Broken(format!("transfer broke off after {have} bytes ({e}); run the same command again to resume"))),
            Err(RecvTimeoutError::Timeout) => {
                return Err(Copy::Broken(format!(
                    "the server sent nothing for {:.1} s (stalled after {have} bytes); run the same command again to resume",
                    stall.as_secs_f64()
                )))
            }
        };
        file.write_all(&chunk).map_err(|e| Copy::Io(Error::io(part, e)))?;
        have += chunk.len() as u64;
        pb.set_position(have);
    }
}
