//! The trainer end to end on the CPU: exact resume, what gradients touch,
//! checkpoints' contents and the failure paths.

use mixco_data::synthetic::{generate, SyntheticConfig};
use mixco_data::Splits;
use mixco_model::arch::TensorKind;
use mixco_model::Checkpoint;
use mixco_train::{Method, RunOptions, TrainConfig, TrainError, Trainer};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tch::Device;

fn data() -> Splits {
    generate(&SyntheticConfig { train: 64, test: 32, ..Default::default() })
}

fn tiny(method: Method, mixco: bool) -> TrainConfig {
    TrainConfig {
        method,
        mixco,
        arch: mixco_model::Depth::Resnet10,
        width: 4,
        head_dim: 8,
        epochs: 2,
        batch_size: 16,
        bn_splits: 2,
        queue_size: 32,
        knn_every: 1,
        knn_k: 5,
        mix_temperature: Some(0.2),
        ..Default::default()
    }
}

fn opts(dir: &std::path::Path, max_steps: Option<usize>) -> RunOptions {
    RunOptions { output: dir.into(), interrupt: Arc::new(AtomicBool::new(false)), max_steps, tensorboard: false }
}

#[test]
fn resumed_run_reaches_the_same_weights() {
    tch::set_num_threads(1);
    let splits = data();
    for (method, mixco) in [(Method::MocoV2, true), (Method::Simclr, true), (Method::MocoV2, false)] {
        let a = tempfile::tempdir().unwrap();
        let mut t = Trainer::new(tiny(method, mixco), &splits, Device::Cpu).unwrap();
        let s = t.run(&opts(a.path(), None), &mut ()).unwrap();
        assert_eq!((s.steps, s.interrupted), (8, false));
        let full = Checkpoint::load(&a.path().join("final.safetensors")).unwrap();

        let b = tempfile::tempdir().unwrap();
        let mut t = Trainer::new(tiny(method, mixco), &splits, Device::Cpu).unwrap();
        // Stop mid-epoch, as Ctrl-C would.
        let s = t.run(&opts(b.path(), Some(3)), &mut ()).unwrap();
        assert!(s.interrupted && s.steps == 3);
        drop(t);
        let mut t = Trainer::resume(&b.path().join("last.safetensors"), &splits, Device::Cpu).unwrap();
        assert_eq!(t.step, 3);
        t.run(&opts(b.path(), None), &mut ()).unwrap();
        let resumed = Checkpoint::load(&b.path().join("final.safetensors")).unwrap();

        assert_eq!(full.tensors.keys().collect::<Vec<_>>(), resumed.tensors.keys().collect::<Vec<_>>());
        for (name, x) in &full.tensors {
            assert_eq!(x, &resumed.tensors[name], "{method:?} mixco={mixco}: tensor {name} differs after resume");
        }
        assert_eq!(full.metadata["step"], "8");
    }
}

#[test]
fn gradients_reach_the_query_encoder_only() {
    let splits = data();
    let mut t = Trainer::new(tiny(Method::MocoV2, true), &splits, Device::Cpu).unwrap();
    let before_q = t.query.store.to_host("");
    let before_k = t.key.as_ref().unwrap().store.to_host("");
    t.train_step().unwrap();
    let key = t.key.as_ref().unwrap();
    let m = t.cfg.key_momentum as f32;
    for (e, ((_, kq), (_, kk))) in key.store.entries.iter().zip(before_q.iter().zip(&before_k)) {
        if e.kind != TensorKind::Param {
            continue;
        }
        assert!(!e.tensor.grad().defined(), "key tensor {} got a gradient", e.name);
        // key ← m·key + (1-m)·query, with the query as it was before its update.
        let now = Vec::<f32>::try_from(e.tensor.flatten(0, -1)).unwrap();
        let (q0, k0) = (kq.as_f32().unwrap(), kk.as_f32().unwrap());
        for i in 0..now.len() {
            let want = m * k0[i] + (1.0 - m) * q0[i];
            assert!((now[i] - want).abs() <= 1e-6 * want.abs().max(1.0), "{}[{i}]", e.name);
        }
    }
    let before: std::collections::HashMap<_, _> = before_q.into_iter().collect();
    let changed = t.query.store.params().filter(|e| {
        Vec::<f32>::try_from(e.tensor.flatten(0, -1)).unwrap() != before[&e.name].as_f32().unwrap()
    }).count();
    assert_eq!(changed, t.query.store.params().count(), "every query tensor is updated by SGD");
}

#[test]
fn checkpoint_holds_everything_downstream_needs() {
    let splits = data();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny(Method::MocoV2, true);
    cfg.epochs = 1;
    cfg.save_every = 1;
    let mut t = Trainer::new(cfg, &splits, Device::Cpu).unwrap();
    t.run(&opts(dir.path(), None), &mut ()).unwrap();
    for f in ["final.safetensors", "last.safetensors", "epoch-0001.safetensors", "log.jsonl", "curves.png"] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
    let path = dir.path().join("final.safetensors");
    let ck = Checkpoint::load(&path).unwrap();
    for k in ["arch", "width", "stem", "method", "mixco", "hparams", "epoch", "dataset", "dataset_sha256", "seed", "mixco_version", "mean", "std", "input_size", "queue_ptr"] {
        assert!(ck.metadata.contains_key(k), "metadata {k}");
    }
    assert_eq!(ck.metadata["dataset"], "synthetic");
    assert_eq!(ck.metadata["mixco"], "true");
    let cfg = ck.config(&path).unwrap();
    assert_eq!(cfg.arch.name(), "resnet10");
    // Query backbone under torchvision's bare names, plus head, key encoder, queue, optimizer.
    let names: Vec<String> = cfg.arch.backbone().tensors().into_iter().map(|t| t.name).collect();
    for n in &names {
        assert!(ck.tensors.contains_key(n) && ck.tensors.contains_key(&format!("momentum.{n}")), "{n}");
    }
    assert!(ck.tensors.contains_key("head.2.weight") && ck.tensors.contains_key("queue"));
    assert!(ck.tensors.contains_key("optim.layer1.0.conv1.weight"));
    let log = std::fs::read_to_string(dir.path().join("log.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "epoch 0 (random init) and epoch 1");
    assert!(lines[0]["loss"].is_null() && lines[0]["knn_top1"].as_f64().is_some());
    assert!(lines[1]["knn_top1"].as_f64().unwrap() >= 0.0 && lines[1]["loss_mix"].as_f64().unwrap() > 0.0);
    // The collapse monitor: a mean of cosines, logged for trained epochs only.
    assert!(lines[0].get("query_cosine").is_none());
    let c = lines[1]["query_cosine"].as_f64().unwrap();
    assert!((-1.0..=1.0).contains(&c), "query_cosine {c}");
}

#[test]
fn collapse_warning_names_the_cause() {
    let splits = data();
    let mut cfg = tiny(Method::MocoV2, true);
    cfg.mix_temperature = Some(0.05);
    let w = Trainer::new(cfg, &splits, Device::Cpu).unwrap().collapse_warning(1, 0.93);
    assert_eq!(w.mixco, Some((0.05, 1.0)));
    let w = w.to_string();
    assert!(w.contains("0.93 over epoch 1") && w.contains("mix temperature 0.05") && w.contains("β / T_mix = 20"), "{w}");
    let w = Trainer::new(tiny(Method::Simclr, false), &splits, Device::Cpu).unwrap().collapse_warning(1, 0.9);
    assert!(w.mixco.is_none() && !w.to_string().contains("mix temperature"), "{w}");
}

#[test]
fn collapsed_projections_raise_one_warning() {
    let splits = data();
    let dir = tempfile::tempdir().unwrap();
    let mut t = Trainer::new(tiny(Method::Simclr, false), &splits, Device::Cpu).unwrap();
    // Every image projects onto the head's bias: cosine 1, and NT-Xent's gradient vanishes, so it stays there.
    let _ = tch::no_grad(|| t.query.store.get("head.2.weight").unwrap().shallow_clone().zero_());
    let _ = tch::no_grad(|| t.query.store.get("head.2.bias").unwrap().shallow_clone().fill_(1.0));
    let s = t.run(&opts(dir.path(), None), &mut ()).unwrap();
    assert!((s.last.unwrap().query_cosine.unwrap() - 1.0).abs() < 1e-4);
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings); // two collapsed epochs, one warning
    assert!(s.warnings[0].to_string().contains("1.00 over epoch 1"), "{}", s.warnings[0]);

    // The same run untouched spreads its projections and says nothing.
    let dir = tempfile::tempdir().unwrap();
    let s = Trainer::new(tiny(Method::Simclr, false), &splits, Device::Cpu).unwrap().run(&opts(dir.path(), None), &mut ()).unwrap();
    let c = s.last.unwrap().query_cosine.unwrap();
    assert!(c < 0.9 && s.warnings.is_empty(), "cos {c}: {:?}", s.warnings);
}

#[test]
fn nan_loss_stops_and_keeps_the_last_good_checkpoint() {
    let splits = data();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny(Method::Simclr, false);
    cfg.epochs = 3;
    let mut t = Trainer::new(cfg, &splits, Device::Cpu).unwrap();
    t.run(&opts(dir.path(), Some(4)), &mut ()).unwrap(); // one epoch (4 steps) done and saved
    let good = std::fs::read(dir.path().join("last.safetensors")).unwrap();
    // Poison a weight: the next loss is NaN.
    let w = t.query.store.get("head.2.weight").unwrap().shallow_clone();
    let _ = tch::no_grad(|| w.shallow_clone().fill_(f64::NAN));
    let err = t.run(&opts(dir.path(), None), &mut ()).unwrap_err();
    assert!(matches!(err, TrainError::NonFinite { step: 4, .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("loss became NaN at step 4") && msg.contains("last.safetensors"), "{msg}");
    assert_eq!(std::fs::read(dir.path().join("last.safetensors")).unwrap(), good, "the good checkpoint is untouched");
}

#[test]
fn bad_checkpoints_and_settings_are_refused() {
    let splits = data();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny(Method::MocoV2, false);
    cfg.epochs = 1;
    let mut t = Trainer::new(cfg, &splits, Device::Cpu).unwrap();
    t.run(&opts(dir.path(), Some(1)), &mut ()).unwrap();
    let path = dir.path().join("last.safetensors");
    let ck = Checkpoint::load(&path).unwrap();
    let bad = dir.path().join("bad.safetensors");
    let resume_err = |ck: &Checkpoint| {
        ck.save(&bad).unwrap();
        Trainer::resume(&bad, &splits, Device::Cpu).err().expect("must fail").to_string()
    };

    let mut c = ck.clone();
    c.tensors.remove("momentum.layer3.0.conv2.weight");
    assert!(resume_err(&c).ends_with("tensor `momentum.layer3.0.conv2.weight` is missing"));
    let mut c = ck.clone();
    let h = c.tensors.get_mut("layer1.0.bn1.weight").unwrap();
    if let mixco_model::checkpoint::TensorData::F32(v) = &mut h.data {
        v[0] = f32::NAN;
    }
    assert!(resume_err(&c).contains("tensor `layer1.0.bn1.weight` holds a non-finite value"));
    // A checkpoint of another architecture.
    let mut c = ck.clone();
    let mut hp: serde_json::Value = serde_json::from_str(&c.metadata["hparams"]).unwrap();
    hp["width"] = 8.into();
    c.metadata.insert("hparams".into(), hp.to_string());
    c.metadata.insert("width".into(), "8".into());
    c.metadata.insert("head_hidden".into(), "64".into());
    assert!(resume_err(&c).contains("has shape"), "{}", resume_err(&c));
    // Other data.
    let other = generate(&SyntheticConfig { seed: 5, train: 64, test: 32, ..Default::default() });
    let e = Trainer::resume(&path, &other, Device::Cpu).err().unwrap().to_string();
    assert!(e.contains("the data loaded now (synthetic) differs"), "{e}");

    let mut cfg = tiny(Method::MocoV2, true);
    cfg.batch_size = 15;
    let e = Trainer::new(cfg, &splits, Device::Cpu).err().unwrap().to_string();
    assert!(e.contains("batch-size 15: MixCo mixes the two halves of the batch, so it must be even"), "{e}");
}

#[test]
fn short_run_on_synthetic_lowers_the_loss_and_beats_the_random_encoder() {
    // SimCLR: its loss has no queue filling up, so it falls from the start.
    let splits = generate(&SyntheticConfig { train: 3000, test: 1000, ..Default::default() });
    let cfg = TrainConfig {
        method: Method::Simclr,
        arch: mixco_model::Depth::Resnet10,
        width: 8,
        epochs: 5,
        batch_size: 128,
        knn_k: 20,
        mixco: true,
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut t = Trainer::new(cfg, &splits, Device::Cpu).unwrap();
    t.run(&opts(dir.path(), None), &mut ()).unwrap();
    let log = mixco_model::run::read_log(&dir.path().join("log.jsonl")).unwrap();
    let loss = |i: usize| log[i].loss_contrastive.unwrap();
    assert!(loss(5) < loss(1) - 0.05, "contrastive loss {} -> {}", loss(1), loss(5));
    // Chance is 10%; the random encoder is above it, and training must beat that.
    let (random, trained) = (log[0].probe_top1.unwrap(), log[5].probe_top1.unwrap());
    assert!(random > 0.12, "random-encoder probe {random}");
    assert!(trained > random + 0.015, "linear probe {random} -> {trained}");
}

#[test]
fn mix_weight_ramps_from_zero_over_the_warmup_epochs() {
    let splits = data();
    // 64 images, batch 16: 4 steps per epoch; a 2-epoch ramp reaches β at step 7.
    let cfg = TrainConfig { mix_weight: 0.5, mix_warmup_epochs: 2, ..tiny(Method::MocoV2, true) };
    let mut t = Trainer::new(cfg, &splits, Device::Cpu).unwrap();
    let mut seen = Vec::new();
    for _ in 0..9 {
        seen.push(t.mix_weight());
        t.train_step().unwrap();
    }
    let want = [0.0625, 0.125, 0.1875, 0.25, 0.3125, 0.375, 0.4375, 0.5, 0.5];
    for (got, want) in seen.iter().zip(want) {
        assert!((got - want).abs() < 1e-12, "{seen:?}");
    }
    let t = Trainer::new(tiny(Method::MocoV2, true), &splits, Device::Cpu).unwrap();
    assert_eq!(t.mix_weight(), 1.0, "no ramp by default");
}
