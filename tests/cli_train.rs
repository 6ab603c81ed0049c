//! End-to-end runs of `mixco train` and `mixco bench train`.
#![cfg(feature = "train")]

use std::process::{Command, Output};

fn mixco(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mixco")).args(args).env_remove("MIXCO_DATA").output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

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
    for f in ["final.safetensors", "last.safetensors", "log.jsonl", "curves.svg"] {
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
