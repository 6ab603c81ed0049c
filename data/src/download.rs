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
    /// Checked against what the server announces, shown by the progress
    /// bar, and never exceeded: the transfer stops there.
    pub expected_size: Option<u64>,
    pub progress: bool,
    /// Give up when no byte arrives for this long (`MIXCO_STALL_TIMEOUT`
    /// seconds, default 60).
    pub stall_timeout: Duration,
    /// Give up when fewer than `min_rate` bytes a second arrive over a whole
    /// `rate_window` (`MIXCO_MIN_RATE`, default 1024; `MIXCO_RATE_WINDOW`
    /// seconds, default 30): a server dripping bytes is not waited on forever.
    pub min_rate: f64,
    pub rate_window: Duration,
    /// The most bytes taken when neither the caller nor the server states a
    /// size (`MIXCO_MAX_DOWNLOAD`, default 8 GiB).
    pub max_size: u64,
}

impl Default for DownloadOptions {
    fn default() -> DownloadOptions {
        let env = |k: &str| std::env::var(k).ok().and_then(|s| s.parse::<f64>().ok()).filter(|s| *s > 0.0);
        DownloadOptions {
            expected_size: None,
            progress: true,
            stall_timeout: Duration::from_secs_f64(env("MIXCO_STALL_TIMEOUT").unwrap_or(60.0)),
            min_rate: env("MIXCO_MIN_RATE").unwrap_or(1024.0),
            rate_window: Duration::from_secs_f64(env("MIXCO_RATE_WINDOW").unwrap_or(30.0)),
            max_size: env("MIXCO_MAX_DOWNLOAD").map_or(8 << 30, |v| v as u64),
        }
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
    let announced = length.map(|l| l + start);
    if let (Some(a), Some(e)) = (announced, opts.expected_size) {
        if a != e {
            let _ = fs::remove_file(&part);
            return Err(fail(format!("the server announces {a} bytes, but {e} are expected; nothing was kept")));
        }
    }
    let total = announced.or(opts.expected_size);
    // Never more than declared: an endless body is cut there.
    let limit = Limit { bytes: total.unwrap_or(opts.max_size), declared: total.is_some() };
    let mut file = OpenOptions::new().create(true).write(true).append(start > 0).truncate(start == 0).open(&part).map_err(|e| Error::io(&part, e))?;
    let pb = bar(opts.progress, total, dest, start);
    let have = match copy_body(chunks(resp), &mut file, &part, &pb, start, opts, limit) {
        Ok(have) => have,
        Err(e) => {
            pb.abandon();
            return Err(match e {
                Copy::Io(e) => e,
                Copy::Broken(problem) => fail(problem),
                Copy::TooLong(problem) => {
                    let _ = fs::remove_file(&part);
                    fail(problem)
                }
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
    /// The transfer broke off, stalled or crawled (resumable).
    Broken(String),
    /// More bytes than declared: the file is not the one expected.
    TooLong(String),
}

/// The most bytes a body may have, and whether a size was declared (else the cap).
#[derive(Clone, Copy)]
struct Limit {
    bytes: u64,
    declared: bool,
}

/// Appends the chunks to `file` until the body ends; returns the file's
/// length. Stops at the limit, after `stall_timeout` without a byte, and
/// when a whole `rate_window` brings fewer than `min_rate` bytes a second.
fn copy_body(rx: Receiver<std::io::Result<Vec<u8>>>, file: &mut File, part: &Path, pb: &ProgressBar, start: u64, opts: &DownloadOptions, limit: Limit) -> std::result::Result<u64, Copy> {
    let (stall, window) = (opts.stall_timeout, opts.rate_window);
    let mut have = start;
    let (mut window_start, mut window_bytes) = (std::time::Instant::now(), 0u64);
    let mut last_byte = std::time::Instant::now();
    loop {
        let wait = stall.saturating_sub(last_byte.elapsed()).min(window.saturating_sub(window_start.elapsed())).max(Duration::from_millis(10));
        let chunk = match rx.recv_timeout(wait) {
            Ok(Ok(c)) => Some(c),
            Err(RecvTimeoutError::Disconnected) => return Ok(have),
            Ok(Err(e)) => return Err(Copy::Broken(format!("transfer broke off after {have} bytes ({e}); run the same command again to resume"))),
            Err(RecvTimeoutError::Timeout) => None,
        };
        if let Some(chunk) = chunk {
            if have + chunk.len() as u64 > limit.bytes {
                let what = if limit.declared { "declared" } else { "allowed without a declared size (MIXCO_MAX_DOWNLOAD)" };
                return Err(Copy::TooLong(format!("the server sent more than the {} bytes {what}; nothing was kept", limit.bytes)));
            }
            file.write_all(&chunk).map_err(|e| Copy::Io(Error::io(part, e)))?;
            have += chunk.len() as u64;
            window_bytes += chunk.len() as u64;
            last_byte = std::time::Instant::now();
            pb.set_position(have);
        }
        if last_byte.elapsed() >= stall {
            return Err(Copy::Broken(format!(
                "the server sent nothing for {:.1} s (stalled after {have} bytes); run the same command again to resume",
                stall.as_secs_f64()
            )));
        }
        if window_start.elapsed() >= window {
            if (window_bytes as f64) < opts.min_rate * window.as_secs_f64() {
                return Err(Copy::Broken(format!(
                    "the server sent only {window_bytes} bytes in {:.1} s (under {:.0} bytes/s, after {have} bytes); run the same command again to resume",
                    window.as_secs_f64(),
                    opts.min_rate
                )));
            }
            (window_start, window_bytes) = (std::time::Instant::now(), 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixco_testkit::http::{Behaviour, Server};

    fn opts(expected: Option<u64>) -> DownloadOptions {
        DownloadOptions { expected_size: expected, progress: false, ..Default::default() }
    }

    /// Issue 29, group 5: a manifest stating 312,972 bytes once got 7.7 GB
    /// from an endless server; the transfer now stops at the declared size.
    #[test]
    fn an_endless_body_stops_at_the_declared_size_or_the_cap() {
        let server = Server::start(vec![("/endless", Behaviour::Endless { max: 1 << 24 })]);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f.bin");
        let e = download(&server.url("/endless"), &dest, &opts(Some(312_972))).unwrap_err().to_string();
        assert!(e.contains("the server sent more than the 312972 bytes declared; nothing was kept"), "{e}");
        // Without any declared size, the cap.
        let capped = DownloadOptions { max_size: 100_000, ..opts(None) };
        let e = download(&server.url("/endless"), &dest, &capped).unwrap_err().to_string();
        assert!(e.contains("more than the 100000 bytes allowed without a declared size"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing kept");
    }

    #[test]
    fn a_length_that_contradicts_the_expected_size_is_refused_up_front() {
        let server = Server::start(vec![("/f", Behaviour::Serve(vec![7u8; 5000]))]);
        let dir = tempfile::tempdir().unwrap();
        let e = download(&server.url("/f"), &dir.path().join("f"), &opts(Some(4000))).unwrap_err().to_string();
        assert!(e.contains("the server announces 5000 bytes, but 4000 are expected"), "{e}");
        download(&server.url("/f"), &dir.path().join("f"), &opts(Some(5000))).unwrap();
    }

    /// A server dripping a byte every 50 ms is given up on at the minimum rate.
    #[test]
    fn a_dripping_server_is_given_up_on() {
        let server = Server::start(vec![("/drip", Behaviour::Drip { len: 200, every: Duration::from_millis(50) })]);
        let dir = tempfile::tempdir().unwrap();
        let slow = DownloadOptions { min_rate: 100.0, rate_window: Duration::from_millis(500), ..opts(None) };
        let t = std::time::Instant::now();
        let e = download(&server.url("/drip"), &dir.path().join("d"), &slow).unwrap_err().to_string();
        assert!(e.contains("bytes in 0.5 s (under 100 bytes/s") && e.contains("run the same command again to resume"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
