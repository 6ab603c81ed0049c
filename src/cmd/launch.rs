//! `mixco train --nproc-per-node N`: runs N ranks of this binary on this
//! machine with torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK,
//! MASTER_ADDR, MASTER_PORT). Rank 0 keeps the terminal (its progress bar and
//! lines); the others' output is prefixed with their rank. Ctrl-C (and
//! SIGTERM, SIGHUP) is passed
//! to every rank (each saves nothing itself: rank 0 writes the checkpoint
//! once they agree to stop). When a rank fails, the others are given a few
//! seconds to fail on their own and are then stopped: none can go on alone.

use anyhow::{Context, Result};
use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the other ranks may take to end after one failed.
const GRACE: Duration = Duration::from_secs(10);

/// This process's place in a launch (None: a single process); with no launch
/// around it and `nproc` > 1, runs `nproc` ranks of itself instead and exits
/// with their code.
pub fn rank_or_spawn(nproc: u16, threads: Option<i32>) -> Result<Option<mixco_train::dist::Launch>> {
    let launch = mixco_train::dist::Launch::from_env()?;
    if launch.is_none() && nproc > 1 {
        std::process::exit(spawn(nproc as usize, threads)?);
    }
    Ok(launch)
}

/// Runs `n` ranks; returns the exit code: the first failure's, else rank 0's.
fn spawn(n: usize, threads: Option<i32>) -> Result<i32> {
    let exe = std::env::current_exe().context("cannot find this binary to start its ranks")?;
    // The same arguments: a rank ignores --nproc-per-node (it has RANK), but
    // rank 0 repeats it in the resume command it prints.
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if threads.is_none() {
        // The cores shared between the ranks.
        let cores = std::thread::available_parallelism().map(|c| c.get()).unwrap_or(1);
        args.extend(["--threads".into(), (cores / n).max(1).to_string().into()]);
    }
    let port = mixco_train::dist::free_port().context("no free TCP port on 127.0.0.1 for the ranks' rendezvous")?;
    eprintln!("starting {n} ranks on 127.0.0.1:{port}");
    let mut children = Vec::new();
    for rank in 0..n {
        let mut cmd = Command::new(&exe);
        cmd.args(&args)
            .env("RANK", rank.to_string())
            .env("LOCAL_RANK", rank.to_string())
            .env("WORLD_SIZE", n.to_string())
            .env("LOCAL_WORLD_SIZE", n.to_string())
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", port.to_string())
            .env_remove("TORCHELASTIC_USE_AGENT_STORE")
            .env_remove("TORCHELASTIC_RESTART_COUNT");
        // Own process group: a terminal's Ctrl-C reaches the launcher only, which passes it on once.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        if rank > 0 {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        let mut child = cmd.spawn().with_context(|| format!("cannot start rank {rank} ({})", exe.display()))?;
        if rank > 0 {
            prefix(rank, child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>), false);
            prefix(rank, child.stderr.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>), true);
        }
        children.push(child);
    }
    forward_ctrl_c(children.iter().map(|c| c.id()).collect())?;
    wait_all(children)
}

/// Copies a rank's output, line by line, prefixed with `[rank N]`.
fn prefix(rank: usize, from: Option<Box<dyn std::io::Read + Send>>, stderr: bool) {
    let Some(from) = from else { return };
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(from).lines().map_while(Result::ok) {
            let line = format!("[rank {rank}] {line}\n");
            let _ = if stderr { std::io::stderr().write_all(line.as_bytes()) } else { std::io::stdout().write_all(line.as_bytes()) };
        }
    });
}

/// Each Ctrl-C (or SIGTERM, SIGHUP) on the launcher is sent to every rank as
/// Ctrl-C (a second one makes them quit at once).
fn forward_ctrl_c(pids: Vec<u32>) -> Result<()> {
    let presses = Arc::new(AtomicUsize::new(0));
    ctrlc::set_handler(move || {
        presses.fetch_add(1, Ordering::SeqCst);
        for &pid in &pids {
            // SAFETY: signalling our own children.
            unsafe { libc::kill(pid as i32, libc::SIGINT) };
        }
    })
    .context("cannot install the Ctrl-C handler")
}

/// How a rank ended, in words, and its exit code.
fn ended(status: std::process::ExitStatus) -> (String, i32) {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => (format!("exited with code {c}"), c),
        (None, Some(s)) => (format!("was killed by signal {s}"), 128 + s),
        _ => ("ended".into(), 1),
    }
}

fn wait_all(mut children: Vec<Child>) -> Result<i32> {
    let mut codes: Vec<Option<i32>> = vec![None; children.len()];
    let mut failed: Option<(usize, i32, Instant)> = None;
    while codes.iter().any(Option::is_none) {
        for rank in 0..children.len() {
            if codes[rank].is_some() {
                continue;
            }
            if let Some(status) = children[rank].try_wait().with_context(|| format!("rank {rank}"))? {
                let (how, code) = ended(status);
                codes[rank] = Some(code);
                if code != 0 && code != 130 && failed.is_none() {
                    let running = codes.iter().filter(|c| c.is_none()).count();
                    let rest = if running > 0 { format!("; the other ranks cannot go on without it (stopped in {} s if still running)", GRACE.as_secs()) } else { String::new() };
                    eprintln!("rank {rank} {how}{rest}");
                    failed = Some((rank, code, Instant::now()));
                }
            }
        }
        if let Some((_, _, at)) = failed.filter(|f| f.2.elapsed() > GRACE) {
            for (rank, child) in children.iter_mut().enumerate() {
                if codes[rank].is_none() {
                    eprintln!("stopping rank {rank} ({} s after the failure)", at.elapsed().as_secs());
                    let _ = child.kill();
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(match failed {
        Some((_, code, _)) => code,
        None => codes[0].unwrap_or(1),
    })
}
