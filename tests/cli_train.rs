//! End-to-end runs of `mixco train` and `mixco bench train`.
#![cfg(feature = "train")]

mod util;
use util::{mixco, text};

const TINY: &[&str] = &[
    "train", "--dataset", "synthetic", "--synthetic-train", "64", "--synthetic-test", "32", "--arch", "resnet10",
    "--width", "4", "--bn-splits", "2", "--queue-size", "32", "--knn-k", "5", "--threads", "1",
];

#[test]
fn train_then_resume_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = mixco(&[TINY, &["--batch-size", "16", "--mixco", "--epochs", "1", "--output", out.to_str().unwrap()]].concat());
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("random initialisation") && t.contains("after 1 epochs") && t.contains("final.safetensors"), "{t}");
    for f in ["final.safetensors", "last.safetensors", "log.jsonl", "curves.png"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    // A new run into the same folder is refused (its log would mix with this one's), unless asked.
    let log = std::fs::read_to_string(out.join("log.jsonl")).unwrap();
    let again = [TINY, &["--batch-size", "16", "--epochs", "1", "--output", out.to_str().unwrap()]].concat();
    let o = mixco(&again);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("already holds a run") && text(&o).contains("--overwrite"), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(out.join("log.jsonl")).unwrap(), log, "the earlier run is untouched");
    // A refused configuration deletes nothing, even with --overwrite.
    let o = mixco(&[&again[..], &["--overwrite", "--lr", "0"]].concat());
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(out.join("log.jsonl")).unwrap(), log, "the earlier run is untouched");
    let o = mixco(&[&again[..], &["--overwrite"]].concat());
    assert!(o.status.success(), "{}", text(&o));
    let log2 = std::fs::read_to_string(out.join("log.jsonl")).unwrap();
    assert_eq!(log2.lines().count(), 2, "a fresh log: random init and epoch 1\n{log2}");
    assert!(log2.lines().all(|l| l.contains("\"loss_mix\":null")), "the MixCo run's log was replaced\n{log2}");
    // A finished run resumed does nothing more and still succeeds.
    let o = mixco(&["train", "--dataset", "synthetic", "--synthetic-train", "64", "--synthetic-test", "32", "--threads", "1",
        "--resume", out.join("last.safetensors").to_str().unwrap(), "--output", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    // The same checkpoint against other data is refused.
    let o = mixco(&["train", "--dataset", "synthetic", "--synthetic-train", "64", "--synthetic-seed", "3", "--threads", "1",
        "--resume", out.join("last.safetensors").to_str().unwrap(), "--output", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("differs"), "{}", text(&o));
}

#[test]
fn bad_settings_and_files_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = mixco(&[TINY, &["--mixco", "--batch-size", "15", "--output", out.to_str().unwrap()]].concat());
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("must be even"), "{}", text(&o));
    assert!(!out.exists(), "nothing written for a refused run");

    let o = mixco(&[TINY, &["--batch-size", "16", "--device", "cuda:0", "--output", out.to_str().unwrap()]].concat());
    if !text(&o).contains("random initialisation") {
        assert_eq!(o.status.code(), Some(1));
        assert!(text(&o).contains("device `cuda:0`"), "{}", text(&o));
    }

    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"not a checkpoint").unwrap();
    let o = mixco(&["train", "--resume", junk.to_str().unwrap(), "--synthetic-train", "64"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("junk.safetensors: not a safetensors file"), "{}", text(&o));
    assert!(!text(&o).contains("panicked"));

    let cfg = dir.path().join("run.toml");
    std::fs::write(&cfg, "epochs = 2\nbatch_sise = 8\n").unwrap();
    let o = mixco(&["train", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("run.toml") && text(&o).contains("batch_sise"), "{}", text(&o));

    // Issue 29, group 16: each once panicked, aborted or overflowed; now a
    // named error before any work (and nothing written).
    let huge = u64::MAX.to_string();
    let nan = dir.path().join("nan.toml");
    std::fs::write(&nan, "knn_temperature = nan\n").unwrap();
    let head = dir.path().join("head.toml");
    std::fs::write(&head, "head_dim = 0\n").unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--synthetic-test", "0"], "--knn-every 1: the test split of synthetic is empty"),
        (vec!["--knn-train-limit", "0"], "--knn-train-limit 0: must be at least 1"),
        (vec!["--input-size", "0"], "--input-size 0: must be 1 to 1024 px"),
        (vec!["--queue-size", "100000000000"], "--queue-size 100000000000: must be 1 to 1048576"),
        (vec!["--epochs", &huge], "--epochs 18446744073709551615: at most 100000"),
        (vec!["--warmup-epochs", &huge], "--warmup-epochs 18446744073709551615: at most 100000"),
        (vec!["--mixco", "--mix-warmup-epochs", &huge], "--mix-warmup-epochs 18446744073709551615: at most 100000"),
        (vec!["--config", nan.to_str().unwrap()], "--knn-temperature NaN: must be positive"),
        (vec!["--config", head.to_str().unwrap()], "--head-dim 0: must be 1 to"),
    ];
    // TINY with a flag's value replaced where it has the flag.
    let with = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = TINY.iter().map(|s| s.to_string()).collect();
        let mut rest = Vec::new();
        let mut it = extra.iter();
        while let Some(&flag) = it.next() {
            let value = if flag.starts_with("--") && flag != "--mixco" { it.next().copied() } else { None };
            match (args.iter().position(|a| a == flag), value) {
                (Some(i), Some(v)) => args[i + 1] = v.to_string(),
                _ => rest.extend(std::iter::once(flag).chain(value).map(String::from)),
            }
        }
        args.extend(rest);
        args
    };
    for (extra, want) in cases {
        let args = with(&[&["--batch-size", "16", "--output", out.to_str().unwrap()][..], &extra].concat());
        let o = mixco(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(o.status.code(), Some(1), "{extra:?}: {}", text(&o));
        assert!(text(&o).contains(want) && !text(&o).contains("panicked"), "{extra:?}: {}", text(&o));
        assert!(!out.exists(), "{extra:?}: nothing written for a refused run");
    }
    // --threads 0 means the default, as in `mixco eval`.
    let args = with(&["--batch-size", "16", "--threads", "0", "--epochs", "1", "--knn-every", "0", "--output", out.to_str().unwrap()]);
    let o = mixco(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn bench_train_reports_ceiling_and_full_steps() {
    let o = mixco(&["bench", "train", "--arch", "resnet10", "--width", "4", "--batch-size", "16", "--device", "cpu", "--warmup", "0", "--iters", "1", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = rows.as_array().unwrap().iter().map(|r| r["what"].as_str().unwrap()).collect();
    assert_eq!(names, [
        "moco-v2: forward/backward only",
        "moco-v2: full step",
        "moco-v2 + MixCo: forward/backward only",
        "moco-v2 + MixCo: full step",
    ]);
    assert!(rows[1]["images_per_s"].as_f64().unwrap() > 0.0);
}

/// Starts `mixco ARGS` and returns it once a line of its stderr contains
/// `marker`, with the stderr lines read so far and a reader of the rest.
fn start_until(args: &[&str], marker: &str) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = util::command()
        .args(args)
        .env_remove("MIXCO_DATA")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let line = rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())).expect("the marker line in time");
        if line.contains(marker) {
            return (child, rx);
        }
    }
}

fn interrupt(child: &std::process::Child) {
    signal(child, libc::SIGINT);
}

fn signal(child: &std::process::Child, signal: i32) {
    // SAFETY: a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, signal) };
}

fn log_steps(dir: &std::path::Path) -> Vec<u64> {
    let log = std::fs::read_to_string(dir.join("log.jsonl")).unwrap();
    log.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["step"].as_u64().unwrap()).collect()
}

/// Issue 18, cases 3 and 7 (and 6's log): a second writer into a run's
/// folder is refused naming the first; Ctrl-C prints a resume command that
/// works as printed, with the synthetic data's flags; the resumed log has
/// each step once.
#[test]
fn one_writer_per_folder_and_the_printed_resume_command_works() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // TINY with 256 training images (its 64 replaced) and another seed.
    let tiny: Vec<&str> = TINY.iter().map(|&a| if a == "64" { "256" } else { a }).collect();
    let long = [&tiny[..], &["--synthetic-seed", "5", "--batch-size", "16", "--epochs", "30", "--output", out.to_str().unwrap()]].concat();
    let (mut child, rx) = start_until(&long, "epoch 1/30");
    let o = mixco(&[&TINY[..], &["--batch-size", "16", "--epochs", "1", "--output", out.to_str().unwrap(), "--overwrite"]].concat());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains(&format!("process {} is training into this folder", child.id())), "{}", text(&o));
    interrupt(&child);
    assert_eq!(child.wait().unwrap().code(), Some(130));
    let printed: Vec<String> = rx.try_iter().collect();
    let cmd = printed.iter().find_map(|l| l.split_once("resume with: ").map(|(_, c)| c.to_string())).expect("a resume command");
    assert!(cmd.contains("--synthetic-train 256 --synthetic-test 32 --synthetic-seed 5"), "{cmd}");
    // A line logged past the checkpoint (as after a kill during a save) and
    // a killed writer's temporary file: repaired when the run resumes.
    let steps = log_steps(&out);
    let mut log = std::fs::read_to_string(out.join("log.jsonl")).unwrap();
    log += &log.lines().last().unwrap().replace(&format!("\"step\":{}", steps.last().unwrap()), "\"step\":100000");
    log.push('\n');
    std::fs::write(out.join("log.jsonl"), log).unwrap();
    std::fs::write(out.join(".last.safetensors.tmp-4000000-0"), b"").unwrap();
    let words: Vec<&str> = cmd.split_whitespace().collect();
    assert_eq!(&words[..2], ["mixco", "train"]);
    let o = mixco(&[&words[1..], &["--threads", "1"][..]].concat());
    assert!(o.status.success(), "{cmd}\n{}", text(&o));
    assert!(text(&o).contains("dropped 1 line") && text(&o).contains("removed"), "{}", text(&o));
    assert!(!out.join(".last.safetensors.tmp-4000000-0").exists());
    let steps = log_steps(&out);
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "every step logged once: {steps:?}");
    assert_eq!(steps.len(), 31, "random init and 30 epochs: {steps:?}");
}

/// Issue 29, group 6: SIGTERM on a single process saves the partial epoch
/// and prints the resume command, as Ctrl-C does (it once just died).
#[test]
fn sigterm_saves_a_resumable_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let tiny: Vec<&str> = TINY.iter().map(|&a| if a == "64" { "256" } else { a }).collect();
    let long = [&tiny[..], &["--batch-size", "16", "--epochs", "30", "--output", out.to_str().unwrap()]].concat();
    let (mut child, rx) = start_until(&long, "epoch 1/30");
    signal(&child, libc::SIGTERM);
    assert_eq!(child.wait().unwrap().code(), Some(130));
    let printed: Vec<String> = rx.try_iter().collect();
    assert!(printed.iter().any(|l| l.contains("resume with: ")), "{printed:?}");
    let ck = mixco_model::Checkpoint::load(&out.join("last.safetensors")).unwrap();
    assert!(ck.metadata["step"].parse::<usize>().unwrap() >= 16);
}

/// Issue 18, cases 4 and 5: resuming into another run's folder is refused
/// (its files untouched); resuming into a new folder works and carries the
/// log over.
#[test]
fn resumes_into_other_folders() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
    for (out, seed) in [(&a, "1"), (&b, "2")] {
        let o = mixco(&[&TINY[..], &["--batch-size", "16", "--epochs", "1", "--seed", seed, "--output", out.to_str().unwrap()]].concat());
        assert!(o.status.success(), "{}", text(&o));
    }
    let b_log = std::fs::read_to_string(b.join("log.jsonl")).unwrap();
    let b_final = std::fs::read(b.join("final.safetensors")).unwrap();
    let resume = |to: &std::path::Path| {
        mixco(&["train", "--dataset", "synthetic", "--synthetic-train", "64", "--synthetic-test", "32", "--threads", "1",
            "--resume", a.join("last.safetensors").to_str().unwrap(), "--output", to.to_str().unwrap()])
    };
    let o = resume(&b);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("already holds a run"), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(b.join("log.jsonl")).unwrap(), b_log);
    assert_eq!(std::fs::read(b.join("final.safetensors")).unwrap(), b_final);
    let o = resume(&c);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(c.join("log.jsonl")).unwrap(), std::fs::read_to_string(a.join("log.jsonl")).unwrap());
    assert!(c.join("final.safetensors").is_file() && c.join("curves.png").is_file());
    // Case 8: settings given with --resume are refused by name, not
    // ignored; --epochs extends the run.
    let resume_a = |extra: &[&str]| {
        mixco(&[&["train", "--dataset", "synthetic", "--synthetic-train", "64", "--synthetic-test", "32", "--threads", "1",
            "--resume", a.join("last.safetensors").to_str().unwrap(), "--output", a.to_str().unwrap()][..], extra].concat())
    };
    let o = resume_a(&["--lr", "0.5", "--arch", "resnet18", "--epochs", "2"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("keeps the settings in its checkpoint; drop --arch, --lr"), "{}", text(&o));
    let o = resume_a(&["--epochs", "2"]);
    assert!(o.status.success() && text(&o).contains("now has 2 epochs (was 1)"), "{}", text(&o));
    assert_eq!(log_steps(&a), [0, 4, 8], "the extended run's second epoch");
    let log = std::fs::read_to_string(a.join("log.jsonl")).unwrap();
    assert!(log.lines().last().unwrap().contains("\"note\":\"epochs 1 -> 2 at step 4 (resumed)\""), "{log}");
    assert_eq!(log.matches("\"note\"").count(), 1, "{log}");
}

/// Issue 18, case 10: CIFAR files cut at a record boundary read as a valid,
/// smaller set; training on them is refused unless --cut-data, which the
/// checkpoint then records.
#[test]
fn cut_cifar_files_are_refused_unless_asked_and_then_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    mixco_testkit::write_cifar10(&root.join("cifar-10-batches-bin"), 16, 16);
    let out = dir.path().join("run");
    let args = ["train", "--dataset", "cifar10", "--root", root.to_str().unwrap(), "--arch", "resnet10", "--width", "4", "--bn-splits", "2",
        "--queue-size", "32", "--batch-size", "16", "--epochs", "1", "--knn-every", "0", "--threads", "1", "--output", out.to_str().unwrap()];
    let o = mixco(&args);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("data_batch_1.bin: 16 of the official 10000 records") && text(&o).contains("--cut-data"), "{}", text(&o));
    assert!(!out.exists(), "nothing written");
    let o = mixco(&[&args[..], &["--cut-data"]].concat());
    assert!(o.status.success(), "{}", text(&o));
    let ck = mixco_model::Checkpoint::load(&out.join("final.safetensors")).unwrap();
    assert!(ck.metadata["dataset_cut"].starts_with("data_batch_1.bin: 16 of the official 10000 records; data_batch_2.bin"), "{:?}", ck.metadata);
}

/// `--nproc-per-node 2` (issue 20): rank 0 writes the folder; a checkpoint
/// written by 2 ranks resumes in 1 process and in 2 and reaches the weights
/// of the uninterrupted run.
#[test]
fn two_ranks_resume_in_one_process_and_in_two() {
    let dir = tempfile::tempdir().unwrap();
    let run = |out: &std::path::Path, extra: &[&str]| {
        let o = mixco(&[&TINY[..], &["--batch-size", "16", "--mixco", "--epochs", "2", "--save-every", "1", "--output", out.to_str().unwrap()], extra].concat());
        assert!(o.status.success(), "{}", text(&o));
        o
    };
    let full = dir.path().join("full");
    let o = run(&full, &["--nproc-per-node", "2"]);
    let t = text(&o);
    assert!(t.contains("x 2 ranks (8 images each per step)") && t.contains("after 2 epochs"), "{t}");
    assert!(!t.contains("[rank 1]"), "rank 1 prints nothing but errors:\n{t}");
    assert_eq!(log_steps(&full), [0, 4, 8]);
    let middle = full.join("epoch-0001.safetensors");
    for (name, ranks) in [("one", "1"), ("two", "2")] {
        let out = dir.path().join(name);
        let o = mixco(&["train", "--dataset", "synthetic", "--synthetic-train", "64", "--synthetic-test", "32", "--threads", "1",
            "--resume", middle.to_str().unwrap(), "--output", out.to_str().unwrap(), "--nproc-per-node", ranks]);
        assert!(o.status.success(), "{}", text(&o));
        let (d, tensor) = util::checkpoint_difference(&full.join("final.safetensors"), &out.join("final.safetensors"));
        // Float noise only (train/tests/distributed.rs: ~1e-3 at most; a semantic difference is 1e-1 or more).
        assert!(d < 5e-3, "resumed on {ranks} rank(s): {tensor} differs by {d:.2e} of its norm");
        // On as many ranks as before, the same computation: the same bits.
        assert!(ranks == "1" || d == 0.0, "resumed on 2 ranks: {tensor} differs by {d:.2e}");
        eprintln!("resumed on {ranks} rank(s): largest relative difference {d:.2e} ({tensor})");
        assert_eq!(log_steps(&out), [0, 4, 8]);
    }
    // The batch must split into equal (and, with MixCo, even) shares.
    let o = mixco(&[&TINY[..], &["--batch-size", "12", "--mixco", "--nproc-per-node", "4", "--output", dir.path().join("bad").to_str().unwrap()]].concat());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("--batch-size 12: each of the 4 ranks mixes the two halves of its 3 images"), "{}", text(&o));
}

/// Ctrl-C on the launcher stops every rank after the same step, with one
/// checkpoint from rank 0 and a resume command that keeps the ranks.
#[test]
fn ctrl_c_stops_every_rank_with_a_resumable_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let tiny: Vec<&str> = TINY.iter().map(|&a| if a == "64" { "256" } else { a }).collect();
    let long = [&tiny[..], &["--batch-size", "16", "--epochs", "30", "--nproc-per-node", "2", "--output", out.to_str().unwrap()]].concat();
    let (mut child, rx) = start_until(&long, "epoch 1/30");
    // Issue 29, group 6: SIGTERM (timeout, kill, systemd, docker stop) does
    // what Ctrl-C does; the launcher once exited 143 while its ranks trained on.
    signal(&child, libc::SIGTERM);
    assert_eq!(child.wait().unwrap().code(), Some(130));
    let printed: Vec<String> = rx.try_iter().collect();
    let cmd = printed.iter().find_map(|l| l.split_once("resume with: ").map(|(_, c)| c.to_string())).expect("a resume command");
    assert!(cmd.contains("--nproc-per-node 2"), "{cmd}");
    let ck = mixco_model::Checkpoint::load(&out.join("last.safetensors")).unwrap();
    let step: usize = ck.metadata["step"].parse().unwrap();
    assert!(step >= 16, "stopped after epoch 1's 16 steps: {step}");
}

/// A rank that dies, or stops answering, ends the other with an error naming
/// it within the collective timeout; the ranks started by hand as torchrun would.
#[test]
fn a_killed_or_stopped_rank_ends_the_other_within_the_timeout() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let tiny: Vec<&str> = TINY.iter().map(|&a| if a == "64" { "512" } else { a }).collect();
    for (signal, timeout) in [(libc::SIGKILL, "20"), (libc::SIGSTOP, "5")] {
        let port = mixco_train::dist::free_port().unwrap().to_string();
        let out = dir.path().join(format!("run-{signal}"));
        let args = [&tiny[..], &["--batch-size", "16", "--epochs", "30", "--dist-timeout", timeout, "--output", out.to_str().unwrap()]].concat();
        let rank = |r: &str| {
            util::command().args(&args).env("RANK", r).env("WORLD_SIZE", "2").env("LOCAL_RANK", r).env("MASTER_ADDR", "127.0.0.1").env("MASTER_PORT", &port)
                .stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap()
        };
        let (mut r0, mut r1) = (rank("0"), rank("1"));
        let lines = std::io::BufReader::new(r0.stderr.take().unwrap()).lines().map_while(Result::ok);
        let mut lines = lines.skip_while(|l| !l.contains("epoch 1/30"));
        assert!(lines.next().is_some(), "rank 0 trained an epoch");
        // SAFETY: a signal to our own child process.
        unsafe { libc::kill(r1.id() as i32, signal) };
        let t0 = std::time::Instant::now();
        let status = r0.wait().unwrap();
        let waited = t0.elapsed();
        let _ = r1.kill();
        r1.wait().unwrap();
        let rest: Vec<String> = lines.collect();
        assert_eq!(status.code(), Some(1), "signal {signal}: rank 0 ended with {status:?} after {waited:?}: {rest:?}");
        assert!(waited < std::time::Duration::from_secs(60), "signal {signal}: ended within the timeout: {waited:?}");
        assert!(rest.iter().any(|l| l.contains("rank 0 of 2:") && l.contains("failed")), "{rest:?}");
    }
}

/// Issue 29, group 7: a rank whose MASTER_PORT is served by another program
/// (one that accepts connections and says nothing, or answers as HTTP) waited
/// 240 s with no output despite --dist-timeout 10; it now fails within the
/// timeout, naming the port and what answered.
#[test]
fn a_rendezvous_port_of_another_program_is_named_within_the_timeout() {
    use std::io::{Read, Write};
    for answer in [&b""[..], &b"HTTP/1.1 400 Bad Request\r\n"[..]] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            // A few connections at most, each held open for 30 s: the test ends by itself.
            for stream in listener.incoming().take(8) {
                let Ok(mut s) = stream else { return };
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(std::time::Duration::from_millis(200)));
                    let _ = s.read(&mut [0u8; 256]);
                    let _ = s.write_all(answer);
                    std::thread::sleep(std::time::Duration::from_secs(30));
                });
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let start = std::time::Instant::now();
        let o = util::command()
            .args([&TINY[..], &["--batch-size", "16", "--dist-timeout", "3", "--output", out.to_str().unwrap()]].concat())
            .env("RANK", "1")
            .env("WORLD_SIZE", "2")
            .env("LOCAL_RANK", "1")
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", port.to_string())
            .output()
            .unwrap();
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "{t}");
        assert!(start.elapsed() < std::time::Duration::from_secs(25), "took {:?}", start.elapsed());
        let said = if answer.is_empty() { "it sent nothing".to_string() } else { "HTTP/1.1 400".to_string() };
        assert!(t.contains(&format!("127.0.0.1:{port}")) && t.contains("not answer as a c10d store") && t.contains(&said), "{t}");
    }
}

/// TensorBoard's own reader (scripts/tb_read.py in the project venv) over a
/// run folder: {"scalars": {tag: [[step, value]]}, "text": {...}}; None (and
/// a message) where the venv has no tensorboard.
fn tensorboard_read(run: &std::path::Path) -> Option<serde_json::Value> {
    util::venv_script("tb_read.py", &[run.as_os_str()], "tensorboard").map(|out| serde_json::from_slice(&out).unwrap())
}

/// Issue 32: every run writes TensorBoard event files (rank 0) that
/// TensorBoard's own reader shows with every tag and step, the epoch values
/// equal to log.jsonl's; a run resumed from an earlier checkpoint shows no
/// step twice; --tensorboard false writes none.
#[test]
fn tensorboard_shows_every_step_once_with_the_logs_values() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = mixco(&[TINY, &["--batch-size", "16", "--mixco", "--epochs", "3", "--save-every", "1", "--output", out.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{}", text(&o));
    // Resumed in place from epoch 1: epochs 2 and 3 are trained (and logged) again.
    let ck = out.join("epoch-0001.safetensors");
    let o = mixco(&["train", "--resume", ck.to_str().unwrap(), "--dataset", "synthetic", "--synthetic-train", "64", "--synthetic-test", "32", "--threads", "1", "--output", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let files = std::fs::read_dir(&out).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("events.out.tfevents.")).count();
    assert_eq!(files, 2, "one event file per start");
    let Some(tb) = tensorboard_read(&out) else { return };
    let steps = |tag: &str| -> Vec<(u64, f64)> {
        tb["scalars"][tag].as_array().unwrap_or_else(|| panic!("no tag {tag}: {tb}")).iter().map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap())).collect()
    };
    let total = 3 * 64 / 16;
    for tag in ["train/loss", "train/loss_contrastive", "train/loss_mix", "train/lr", "train/mix_weight", "train/images_per_s"] {
        let s: Vec<u64> = steps(tag).iter().map(|p| p.0).collect();
        assert_eq!(s, (1..=total as u64).collect::<Vec<_>>(), "{tag}: every step once");
    }
    let log: Vec<serde_json::Value> = std::fs::read_to_string(out.join("log.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * (1.0 + b.abs());
    for (tag, field) in [("epoch/loss", "loss"), ("epoch/knn_top1", "knn_top1"), ("epoch/query_cosine", "query_cosine"), ("epoch/probe_top1", "probe_top1")] {
        let want: Vec<(u64, f64)> = log.iter().filter_map(|l| l[field].as_f64().map(|v| (l["step"].as_u64().unwrap(), v))).collect();
        let got = steps(tag);
        assert_eq!(got.len(), want.len(), "{tag}: {got:?} vs {want:?}");
        assert!(got.iter().zip(&want).all(|(g, w)| g.0 == w.0 && close(g.1, w.1)), "{tag}: {got:?} vs log.jsonl {want:?}");
    }
    // The per-step losses average to each epoch's logged loss.
    let per_step = steps("train/loss");
    for l in log.iter().filter(|l| l["epoch"].as_u64().unwrap() > 0) {
        let end = l["step"].as_u64().unwrap();
        let epoch: Vec<f64> = per_step.iter().filter(|p| p.0 > end - 4 && p.0 <= end).map(|p| p.1).collect();
        let mean = epoch.iter().sum::<f64>() / epoch.len() as f64;
        assert!((mean - l["loss"].as_f64().unwrap()).abs() < 1e-5, "epoch ending at {end}: {mean} vs {}", l["loss"]);
    }
    assert!(tb["text"]["settings"][0][1].as_str().unwrap().contains("mixco = true"), "{}", tb["text"]);
    // Off: no event file.
    let quiet = dir.path().join("quiet");
    let o = mixco(&[TINY, &["--batch-size", "16", "--epochs", "1", "--tensorboard", "false", "--output", quiet.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{}", text(&o));
    assert!(std::fs::read_dir(&quiet).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with("events.out")));
}

/// Issue 29, group 16 ("classes with fewer than 10 images with the kNN
/// monitor on"): a folder set whose blue channel is constant had std 0, NaN
/// features and a panic in the monitor's kNN; its std is now at least 1/255.
#[test]
fn a_folder_set_with_a_constant_channel_and_small_classes_trains() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for (class, n) in [("a", 20), ("b", 5), ("c", 3)] {
        std::fs::create_dir_all(data.join(class)).unwrap();
        for i in 0..n {
            // Blue is 7 in every image (png_rgb's seed).
            std::fs::write(data.join(class).join(format!("{i}.png")), mixco_testkit::png_rgb(16 + i, 16, 7)).unwrap();
        }
    }
    let out = dir.path().join("run");
    let dataset = format!("folder:{}", data.display());
    let o = mixco(&["train", "--dataset", &dataset, "--image-size", "16", "--arch", "resnet10", "--width", "4", "--batch-size", "4", "--bn-splits", "2",
        "--queue-size", "8", "--knn-k", "5", "--epochs", "1", "--threads", "1", "--output", out.to_str().unwrap()]);
    assert!(o.status.success() && !text(&o).contains("panicked"), "{}", text(&o));
}
