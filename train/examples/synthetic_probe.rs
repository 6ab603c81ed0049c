//! How much pre-training helps on the embedded synthetic set: kNN (k = 20)
//! per epoch and the quick linear probe, random encoder against trained.
//!
//!     cargo run --release -p mixco-train --example synthetic_probe -- \
//!         METHOD MIXCO EPOCHS TRAIN WIDTH LR [MIX_T]
//!
//! e.g. `moco-v2 1 6 5000 16 0.06 0.2`.

use mixco_data::synthetic::{generate, SyntheticConfig};
use mixco_train::{RunOptions, TrainConfig, Trainer};
use std::sync::{atomic::AtomicBool, Arc};
use tch::Device;

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: &str| a.get(i).cloned().unwrap_or_else(|| d.to_string());
    let train: usize = arg(3, "5000").parse().unwrap();
    let splits = generate(&SyntheticConfig { train, test: 1000, ..Default::default() });
    let cfg = TrainConfig {
        method: arg(0, "moco-v2").parse().unwrap(),
        mixco: arg(1, "1") == "1",
        epochs: arg(2, "6").parse().unwrap(),
        arch: mixco_model::Depth::Resnet10,
        width: arg(4, "16").parse().unwrap(),
        lr: arg(5, "0.06").parse().unwrap(),
        mix_temperature: a.get(6).map(|t| t.parse().unwrap()),
        batch_size: 128,
        queue_size: 1024,
        knn_k: 20,
        ..Default::default()
    };
    let dir = std::env::temp_dir().join(format!("synthetic_probe_{}", std::process::id()));
    let mut t = Trainer::new(cfg, &splits, Device::Cpu).unwrap();
    let opts = RunOptions { output: dir.clone(), interrupt: Arc::new(AtomicBool::new(false)), max_steps: None, tensorboard: false };
    t.run(&opts, &mut ()).unwrap();
    let log = std::fs::read_to_string(dir.join("log.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let knn: Vec<String> = rows.iter().map(|r| format!("{:.1}", 100.0 * r["knn_top1"].as_f64().unwrap())).collect();
    let probe = |r: &serde_json::Value| 100.0 * r["probe_top1"].as_f64().unwrap();
    println!(
        "{a:?}: kNN by epoch {}; linear probe {:.1} -> {:.1}",
        knn.join(" "),
        probe(&rows[0]),
        probe(rows.last().unwrap())
    );
    let _ = std::fs::remove_dir_all(dir);
}
