//! The training loop: one optimisation step of MoCo-v2 or SimCLR (with or
//! without MixCo), checkpoints that resume exactly, the kNN monitor, logs.

use crate::augment::{AugConfig, Augment};
use crate::collapse::{mean_cosine, COLLAPSE_COSINE};
use crate::config::{Method, TrainConfig};
use crate::encoder::Encoder;
use crate::knn::knn_accuracy;
use crate::loss::{mix_images, mixco_loss, moco_loss, nt_xent_loss};
use crate::nn::store::{from_host, to_host};
use crate::nn::BnMode;
use crate::optim::{cosine_lr, momentum_update, Sgd};
use crate::queue::Queue;
use mixco_data::synthetic::Rng;
use mixco_data::Splits;
use mixco_model::arch::{TensorKind, TensorSpec};
use mixco_model::{ArchSpec, Checkpoint, CheckpointError, HeadSpec, ModelConfig};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Data(#[from] mixco_data::Error),
    #[error("loss became {value} at step {step} (epoch {epoch}); training stopped{}", last_good.as_ref().map(|p| format!(". The last good checkpoint is {}", p.display())).unwrap_or_else(|| ". No checkpoint had been written yet".into()))]
    NonFinite { value: f64, step: usize, epoch: usize, last_good: Option<PathBuf> },
    #[error("{}: {holder} is training into this folder now (its lock file is .mixco.lock); wait for it, stop it, or choose another output folder", dir.display())]
    Busy { dir: PathBuf, holder: String },
}

/// Losses of one step.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct StepStats {
    pub loss: f64,
    pub contrastive: f64,
    pub mix: f64,
    /// Mean cosine similarity between the projections of different images (`collapse::mean_cosine`).
    pub query_cosine: f64,
}

/// One line of `log.jsonl`.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct EpochLog {
    /// Epochs completed; 0 is the random initialisation (kNN only).
    pub epoch: usize,
    pub step: usize,
    pub lr: f64,
    pub loss: Option<f64>,
    pub loss_contrastive: Option<f64>,
    pub loss_mix: Option<f64>,
    pub knn_top1: Option<f64>,
    /// Epoch mean of the batches' `collapse::mean_cosine` (absent at epoch 0 and in older logs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_cosine: Option<f64>,
    /// Quick linear probe (at the random initialisation and at the end).
    #[serde(default)]
    pub probe_top1: Option<f64>,
    pub images_per_s: f64,
    pub seconds: f64,
    /// What changed in the run before this epoch (a resume that extended it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

pub struct RunOptions {
    pub output: PathBuf,
    /// Progress bars (for a terminal).
    pub progress: bool,
    /// One line per epoch on stderr.
    pub log_epochs: bool,
    /// Set (e.g. by Ctrl-C) to stop after the current step, saving a checkpoint.
    pub interrupt: std::sync::Arc<AtomicBool>,
    /// Stop after this many steps of this call (as if interrupted).
    pub max_steps: Option<usize>,
}

#[derive(Debug)]
pub struct RunSummary {
    pub steps: usize,
    pub interrupted: bool,
    pub checkpoint: PathBuf,
    pub last: Option<EpochLog>,
    /// Warnings printed while training (at most one collapse warning per call).
    pub warnings: Vec<String>,
}

pub struct Trainer {
    pub cfg: TrainConfig,
    pub model: ModelConfig,
    pub device: Device,
    pub query: Encoder,
    pub key: Option<Encoder>,
    pub queue: Option<Queue>,
    pub opt: Sgd,
    aug: Augment,
    train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    classes: i64,
    pub step: usize,
    pub steps_per_epoch: usize,
    dataset: String,
    dataset_sha256: String,
    /// Files of a deliberately cut dataset ("FILE: N of the official M
    /// records"), recorded in every checkpoint; empty for the official data.
    pub dataset_cut: Vec<String>,
    /// Written into the next epoch's log line, then cleared.
    note: Option<String>,
    perm: Option<(usize, Vec<i64>)>,
}

fn mix_seed(a: u64, b: u64) -> u64 {
    let mut r = Rng::new(a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    r.next_u64()
}

fn normalize(z: &Tensor) -> Tensor {
    z / z.norm_scalaropt_dim(2, [1], true).clamp_min(1e-12)
}

fn to_tensor_u8(set: &mixco_data::ImageSet, device: Device) -> (Tensor, Tensor) {
    let x = Tensor::from_slice(&set.pixels).view([set.len() as i64, 3, set.height as i64, set.width as i64]).to_device(device);
    let y: Vec<i64> = set.labels.iter().map(|&l| l as i64).collect();
    (x, Tensor::from_slice(&y).to_device(device))
}

impl Trainer {
    /// A fresh run on `splits` (the training split is cut to `train_limit`).
    pub fn new(cfg: TrainConfig, splits: &Splits, device: Device) -> Result<Trainer, TrainError> {
        cfg.validate().map_err(TrainError::Config)?;
        let mut train = splits.train.clone();
        if let Some(n) = cfg.train_limit {
            train.truncate(n);
        }
        if train.len() < cfg.batch_size {
            return Err(TrainError::Config(format!(
                "batch-size {} is larger than the {} training images of {}",
                cfg.batch_size,
                train.len(),
                splits.name
            )));
        }
        if train.height != train.width {
            return Err(TrainError::Config(format!("{}: images are {}x{}; square images are needed", splits.name, train.height, train.width)));
        }
        let arch = ArchSpec { depth: ArchSpec::parse_depth(&cfg.arch).unwrap(), width: cfg.width, stem: cfg.stem };
        arch.validate().map_err(TrainError::Config)?;
        let feat = arch.backbone().feature_dim;
        let (mean, std) = train.channel_stats();
        let input_size = cfg.input_size.unwrap_or(train.height);
        let model = ModelConfig {
            arch,
            head: HeadSpec { in_dim: feat, hidden: cfg.head_hidden.unwrap_or(feat), out_dim: cfg.head_dim },
            method: cfg.method.name().into(),
            mixco: cfg.mixco,
            input_size,
            mean,
            std,
        };
        tch::manual_seed(cfg.seed as i64);
        let encoder = || {
            let mut e = Encoder::new(&model, device);
            e.backbone.channels_last = cfg.channels_last;
            e.backbone.bf16 = cfg.effective_bf16(device);
            e
        };
        let query = encoder();
        let (key, queue) = match cfg.method {
            Method::MocoV2 => {
                let key = encoder();
                key.store.copy_from(&query.store);
                (Some(key), Some(Queue::new(cfg.queue_size, cfg.head_dim, device)))
            }
            Method::Simclr => (None, None),
        };
        let opt = Sgd::new(&query.store, cfg.momentum, cfg.weight_decay);
        let aug_cfg = match cfg.method {
            Method::MocoV2 => AugConfig::moco_v2(),
            Method::Simclr => AugConfig::simclr(),
        };
        let aug = Augment::new(aug_cfg, input_size, mean, std, device);
        let (train_x, train_y) = to_tensor_u8(&train, device);
        let (test_x, test_y) = to_tensor_u8(&splits.test, device);
        let steps_per_epoch = train.len() / cfg.batch_size;
        Ok(Trainer {
            model,
            device,
            query,
            key,
            queue,
            opt,
            aug,
            train_x,
            train_y,
            test_x,
            test_y,
            classes: splits.train.num_classes() as i64,
            step: 0,
            steps_per_epoch,
            dataset: splits.name.clone(),
            dataset_sha256: train.fingerprint(),
            dataset_cut: Vec::new(),
            note: None,
            perm: None,
            cfg,
        })
    }

    /// The augmentation pipeline of this run.
    pub fn augment(&self) -> &Augment {
        &self.aug
    }

    pub fn total_steps(&self) -> usize {
        self.cfg.epochs * self.steps_per_epoch
    }

    pub fn epoch(&self) -> usize {
        self.step / self.steps_per_epoch
    }

    /// Sets the run's length (a resumed run extended, or cut short where it
    /// has not yet gone past): the learning-rate schedule follows the new
    /// length from this step on; the checkpoints record it, and the next
    /// epoch's log line says so (`note`).
    pub fn set_epochs(&mut self, epochs: usize) -> Result<(), TrainError> {
        let reached = self.step.div_ceil(self.steps_per_epoch);
        if epochs < reached.max(1) {
            return Err(TrainError::Config(format!("epochs {epochs}: the run has already trained {reached} epoch(s)")));
        }
        self.note = Some(format!("epochs {} -> {epochs} at step {} (resumed)", self.cfg.epochs, self.step));
        self.cfg.epochs = epochs;
        Ok(())
    }

    pub fn lr(&self) -> f64 {
        cosine_lr(self.cfg.lr, self.step, self.total_steps(), self.cfg.warmup_epochs * self.steps_per_epoch)
    }

    /// The images of the current step: the epoch's permutation depends only on (seed, epoch).
    fn batch(&mut self) -> Tensor {
        let epoch = self.epoch();
        if self.perm.as_ref().map(|p| p.0) != Some(epoch) {
            let n = self.train_x.size()[0] as usize;
            let mut rng = Rng::new(mix_seed(self.cfg.seed ^ 0x5EED_0F_E90C, epoch as u64));
            let mut p: Vec<i64> = (0..n as i64).collect();
            for i in (1..n).rev() {
                p.swap(i, rng.below(i as u64 + 1) as usize);
            }
            self.perm = Some((epoch, p));
        }
        let b = self.cfg.batch_size;
        let i = self.step % self.steps_per_epoch;
        let idx = &self.perm.as_ref().unwrap().1[i * b..(i + 1) * b];
        self.train_x.index_select(0, &Tensor::from_slice(idx).to_device(self.device))
    }

    /// β at the current step: ramped from 0 during `mix_warmup_epochs`.
    pub fn mix_weight(&self) -> f64 {
        let ramp = self.cfg.mix_warmup_epochs * self.steps_per_epoch;
        if ramp == 0 {
            return self.cfg.mix_weight;
        }
        self.cfg.mix_weight * ((self.step + 1) as f64 / ramp as f64).min(1.0)
    }

    /// One optimisation step.
    pub fn train_step(&mut self) -> Result<StepStats, TrainError> {
        let mut rng = Rng::new(mix_seed(self.cfg.seed, self.step as u64));
        let x = self.batch();
        let lr = self.lr();
        let b = self.cfg.batch_size as i64;
        let half = b / 2;
        let mode = BnMode::Train { splits: self.cfg.effective_bn_splits() as i64 };
        let (t, tm, beta) = (self.cfg.temperature(), self.cfg.mix_temperature(), self.mix_weight());
        let lam = self.cfg.mixco.then(|| {
            let v: Vec<f32> = (0..half).map(|_| rng.uniform()).collect();
            Tensor::from_slice(&v).to_device(self.device)
        });
        // Contrastive loss, MixCo loss, (MoCo) the keys to enqueue, the collapse monitor.
        let (con, mix, keys, qc) = match self.cfg.method {
            Method::MocoV2 => {
                let xq = self.aug.apply(&x, &mut rng);
                let xk = self.aug.apply(&x, &mut rng);
                let input = match &lam {
                    Some(l) => Tensor::cat(&[&xq, &mix_images(&xq, l)], 0),
                    None => xq,
                };
                let z = normalize(&self.query.forward(&input, mode).1);
                let q = z.narrow(0, 0, b);
                let key = self.key.as_ref().unwrap();
                let queue = self.queue.as_ref().unwrap();
                // Shuffle the keys' order so that each BN group holds different samples than the queries'.
                let mut perm: Vec<i64> = (0..b).collect();
                for i in (1..b as usize).rev() {
                    perm.swap(i, rng.below(i as u64 + 1) as usize);
                }
                let mut inv = vec![0i64; b as usize];
                for (i, &p) in perm.iter().enumerate() {
                    inv[p as usize] = i as i64;
                }
                let k = tch::no_grad(|| {
                    momentum_update(&key.store, &self.query.store, self.cfg.key_momentum);
                    let shuffled = xk.index_select(0, &Tensor::from_slice(&perm).to_device(self.device));
                    let zk = normalize(&key.forward(&shuffled, mode).1);
                    zk.index_select(0, &Tensor::from_slice(&inv).to_device(self.device))
                });
                let con = moco_loss(&q, &k, &queue.keys, t);
                let mix = lam.as_ref().map(|l| {
                    let keys = Tensor::cat(&[&k, &queue.keys], 0);
                    mixco_loss(&z.narrow(0, b, half), &keys, l, tm)
                });
                // Read after the whole forward pass is queued: on CUDA the read waits for the device.
                (con, mix, Some(k), mean_cosine(&q))
            }
            Method::Simclr => {
                let x1 = self.aug.apply(&x, &mut rng);
                let x2 = self.aug.apply(&x, &mut rng);
                let input = match &lam {
                    Some(l) => Tensor::cat(&[&x1, &x2, &mix_images(&x1, l), &mix_images(&x2, l)], 0),
                    None => Tensor::cat(&[&x1, &x2], 0),
                };
                let z = normalize(&self.query.forward(&input, mode).1);
                let (z1, z2) = (z.narrow(0, 0, b), z.narrow(0, b, b));
                let con = nt_xent_loss(&z1, &z2, t);
                // Each view's mixes are contrasted against the other view.
                let mix = lam.as_ref().map(|l| {
                    (mixco_loss(&z.narrow(0, 2 * b, half), &z2, l, tm) + mixco_loss(&z.narrow(0, 2 * b + half, half), &z1, l, tm)) / 2.0
                });
                (con, mix, None, mean_cosine(&z1))
            }
        };
        let total = match &mix {
            Some(m) => &con + m * beta,
            None => con.shallow_clone(),
        };
        let stats = self.finish(&total, &con, mix.as_ref(), qc)?;
        self.opt.step(&self.query.store, lr);
        if let (Some(k), Some(queue)) = (keys, self.queue.as_mut()) {
            queue.push(&k);
        }
        self.step += 1;
        Ok(stats)
    }

    /// Backward pass after checking the loss is finite.
    fn finish(&mut self, total: &Tensor, con: &Tensor, mix: Option<&Tensor>, query_cosine: f64) -> Result<StepStats, TrainError> {
        let stats = StepStats {
            loss: f64::try_from(total).unwrap(),
            contrastive: f64::try_from(con).unwrap(),
            mix: mix.map(|m| f64::try_from(m).unwrap()).unwrap_or(0.0),
            query_cosine,
        };
        if !stats.loss.is_finite() {
            Sgd::zero_grad(&self.query.store);
            return Err(TrainError::NonFinite { value: stats.loss, step: self.step, epoch: self.epoch() + 1, last_good: None });
        }
        total.backward();
        Ok(stats)
    }

    /// What to say when the epoch's mean query cosine passed `COLLAPSE_COSINE`.
    pub fn collapse_warning(&self, epoch: usize, cos: f64) -> String {
        let hint = if self.cfg.mixco && self.cfg.mix_temperature() < 0.1 {
            format!(
                "the MixCo term at mix temperature {} (its gradient scaled by β / T_mix = {:.0}) is the known cause with small encoders; \
                 try --mix-temperature 0.2, or --mix-warmup-epochs 2",
                self.cfg.mix_temperature(),
                self.cfg.mix_weight / self.cfg.mix_temperature()
            )
        } else {
            "a lower --lr or a higher --temperature may help".to_string()
        };
        format!(
            "warning: the projections are collapsing: different images have mean cosine similarity {cos:.2} over epoch {epoch} \
             (above {COLLAPSE_COSINE}; training normally brings it below within the first epoch); {hint} (docs/RESULTS.md)"
        )
    }

    /// L2-normalised backbone features of `x` (uint8), in evaluation mode.
    pub fn features(&self, x: &Tensor) -> Tensor {
        tch::no_grad(|| {
            let n = x.size()[0];
            let mut parts = Vec::new();
            let mut s = 0;
            while s < n {
                let len = 512.min(n - s);
                let f = self.query.backbone.forward(&self.aug.plain(&x.narrow(0, s, len)), BnMode::Eval);
                parts.push(normalize(&f));
                s += len;
            }
            Tensor::cat(&parts, 0)
        })
    }

    /// Test-split accuracy of the query backbone: kNN top-1 and, with
    /// `probe`, the quick linear probe (both on the same features).
    pub fn monitor(&self, probe: bool) -> (f64, Option<f64>) {
        let n = self.train_x.size()[0];
        let m = self.cfg.knn_train_limit.map(|l| (l as i64).min(n)).unwrap_or(n);
        let train = self.features(&self.train_x.narrow(0, 0, m));
        let test = self.features(&self.test_x);
        let train_y = self.train_y.narrow(0, 0, m);
        let knn = knn_accuracy(&train, &train_y, &test, &self.test_y, self.classes, self.cfg.knn_k as i64, self.cfg.knn_temperature);
        let probe = probe.then(|| crate::probe::linear_probe(&train, &train_y, &test, &self.test_y, self.classes));
        (knn, probe)
    }

    /// The whole state, ready to save.
    pub fn checkpoint(&self) -> Checkpoint {
        let mut ck = Checkpoint::default();
        self.model.to_metadata(&mut ck.metadata);
        let meta = &mut ck.metadata;
        meta.insert("hparams".into(), serde_json::to_string(&self.cfg).unwrap());
        meta.insert("step".into(), self.step.to_string());
        meta.insert("epoch".into(), format!("{:.4}", self.step as f64 / self.steps_per_epoch as f64));
        meta.insert("steps_per_epoch".into(), self.steps_per_epoch.to_string());
        meta.insert("dataset".into(), self.dataset.clone());
        meta.insert("dataset_sha256".into(), self.dataset_sha256.clone());
        if !self.dataset_cut.is_empty() {
            meta.insert("dataset_cut".into(), self.dataset_cut.join("; "));
        }
        meta.insert("seed".into(), self.cfg.seed.to_string());
        meta.insert("mixco_version".into(), env!("CARGO_PKG_VERSION").into());
        ck.tensors.extend(self.query.store.to_host(""));
        if let Some(k) = &self.key {
            ck.tensors.extend(k.store.to_host("momentum."));
        }
        if let Some(q) = &self.queue {
            meta.insert("queue_ptr".into(), q.ptr.to_string());
            ck.tensors.insert("queue".into(), to_host(&q.keys));
        }
        for (e, buf) in self.query.store.params().zip(&self.opt.buffers) {
            ck.tensors.insert(format!("optim.{}", e.name), to_host(buf));
        }
        ck
    }

    /// Rebuilds a run from its checkpoint; `splits` must be the same data.
    pub fn resume(path: &Path, splits: &Splits, device: Device) -> Result<Trainer, TrainError> {
        let ck = Checkpoint::load(path)?;
        let model = ck.config(path)?;
        let bad = |p: String| TrainError::Checkpoint(CheckpointError::Invalid { path: path.into(), problem: p });
        let hparams = ck.metadata.get("hparams").ok_or_else(|| bad("metadata field `hparams` is missing: not a training checkpoint".into()))?;
        let cfg: TrainConfig = serde_json::from_str(hparams).map_err(|e| bad(format!("metadata field `hparams`: {e}")))?;
        let mut t = Trainer::new(cfg, splits, device)?;
        let want = ck.metadata.get("dataset_sha256").cloned().unwrap_or_default();
        if want != t.dataset_sha256 {
            return Err(bad(format!(
                "was trained on {} (training split SHA-256 {want}); the data loaded now ({}) differs: {}",
                ck.metadata.get("dataset").map(String::as_str).unwrap_or("?"),
                splits.name,
                t.dataset_sha256
            )));
        }
        if model.arch != t.model.arch || model.head != t.model.head {
            return Err(bad("architecture in metadata does not match its hyper-parameters".into()));
        }
        ck.check_tensors(path, &model.tensors(""))?;
        t.query.store.load(&ck, "");
        if let Some(k) = &t.key {
            ck.check_tensors(path, &model.tensors("momentum."))?;
            k.store.load(&ck, "momentum.");
        }
        if let Some(q) = &mut t.queue {
            let spec = TensorSpec { name: "queue".into(), shape: vec![t.cfg.queue_size, t.cfg.head_dim], kind: TensorKind::Buffer };
            ck.check_tensors(path, &[spec])?;
            tch::no_grad(|| q.keys.copy_(&from_host(&ck.tensors["queue"], device)));
            q.ptr = ck.metadata.get("queue_ptr").and_then(|p| p.parse().ok()).filter(|&p| p < q.len()).ok_or_else(|| bad("metadata field `queue_ptr` is missing or out of range".into()))?;
        }
        let specs: Vec<TensorSpec> = t.query.store.params().map(|e| TensorSpec {
            name: format!("optim.{}", e.name),
            shape: e.tensor.size().iter().map(|&d| d as usize).collect(),
            kind: TensorKind::Buffer,
        }).collect();
        ck.check_tensors(path, &specs)?;
        tch::no_grad(|| {
            for (s, buf) in specs.iter().zip(t.opt.buffers.iter_mut()) {
                buf.copy_(&from_host(&ck.tensors[&s.name], device));
            }
        });
        t.step = ck.metadata.get("step").and_then(|s| s.parse().ok()).ok_or_else(|| bad("metadata field `step` is missing".into()))?;
        if t.step > t.total_steps() {
            return Err(bad(format!("step {} is past the end of the run ({} steps)", t.step, t.total_steps())));
        }
        Ok(t)
    }

    /// Trains to the end (or until interrupted), writing checkpoints, the log and the plot.
    pub fn run(&mut self, opts: &RunOptions) -> Result<RunSummary, TrainError> {
        let out = &opts.output;
        std::fs::create_dir_all(out).map_err(|e| mixco_data::Error::io(out, e))?;
        let last_path = out.join(LAST_FILE);
        let log_path = out.join(LOG_FILE);
        let total = self.total_steps();
        let started = self.step;
        let b = self.cfg.batch_size;
        let mut last_log = None;
        let mut last_good = last_path.exists().then(|| last_path.clone());
        let mut warnings: Vec<String> = Vec::new();
        if self.step == 0 && self.cfg.knn_every > 0 {
            let (knn, probe) = self.monitor(true);
            let log = EpochLog { epoch: 0, step: 0, lr: self.lr(), loss: None, loss_contrastive: None, loss_mix: None, knn_top1: Some(knn), query_cosine: None, probe_top1: probe, images_per_s: 0.0, seconds: 0.0, note: None };
            append_line(&log_path, &serde_json::to_string(&log).unwrap())?;
            if opts.log_epochs {
                eprintln!("epoch 0 (random initialisation): kNN {:.2}%, linear probe {:.2}%", 100.0 * knn, 100.0 * probe.unwrap());
            }
        }
        while self.step < total {
            let epoch = self.epoch();
            let pb = progress_bar(opts.progress, self.steps_per_epoch * b, format!("epoch {}/{}", epoch + 1, self.cfg.epochs));
            pb.set_position(((self.step % self.steps_per_epoch) * b) as u64);
            let (mut sum, mut n) = (StepStats::default(), 0usize);
            let t0 = Instant::now();
            let lr = self.lr();
            while self.step < total && self.epoch() == epoch {
                let stop = opts.interrupt.load(Ordering::SeqCst) || opts.max_steps.is_some_and(|m| self.step - started >= m);
                if stop {
                    pb.abandon();
                    self.checkpoint().save(&last_path)?;
                    return Ok(RunSummary { steps: self.step - started, interrupted: true, checkpoint: last_path, last: last_log, warnings });
                }
                let s = match self.train_step() {
                    Ok(s) => s,
                    Err(TrainError::NonFinite { value, step, epoch, .. }) => {
                        pb.abandon();
                        return Err(TrainError::NonFinite { value, step, epoch, last_good });
                    }
                    Err(e) => return Err(e),
                };
                sum.loss += s.loss;
                sum.contrastive += s.contrastive;
                sum.mix += s.mix;
                sum.query_cosine += s.query_cosine;
                n += 1;
                pb.inc(b as u64);
                pb.set_message(format!("epoch {}/{} loss {:.3}", epoch + 1, self.cfg.epochs, s.loss));
            }
            pb.finish_and_clear();
            let seconds = t0.elapsed().as_secs_f64();
            let done = self.epoch();
            let (knn, probe) = match self.cfg.knn_every > 0 && (done.is_multiple_of(self.cfg.knn_every) || self.step == total) {
                true => {
                    let (k, p) = self.monitor(self.step == total);
                    (Some(k), p)
                }
                false => (None, None),
            };
            let n = n.max(1) as f64;
            let log = EpochLog {
                epoch: done,
                step: self.step,
                lr,
                loss: Some(sum.loss / n),
                loss_contrastive: Some(sum.contrastive / n),
                loss_mix: self.cfg.mixco.then_some(sum.mix / n),
                knn_top1: knn,
                query_cosine: Some(sum.query_cosine / n),
                probe_top1: probe,
                images_per_s: n * b as f64 / seconds,
                seconds,
                note: self.note.take(),
            };
            // The checkpoint first, then the line that describes it: a run
            // killed in between resumes from the checkpoint and the log
            // lacks that line (it is not logged twice).
            let ck = self.checkpoint();
            ck.save(&last_path)?;
            last_good = Some(last_path.clone());
            if self.cfg.save_every > 0 && done.is_multiple_of(self.cfg.save_every) {
                ck.save(&out.join(epoch_file(done)))?;
            }
            append_line(&log_path, &serde_json::to_string(&log).unwrap())?;
            if opts.log_epochs {
                eprintln!(
                    "epoch {done}/{}: loss {:.4} (contrastive {:.4}{})  cos {:.2}{}  {:.0} img/s",
                    self.cfg.epochs,
                    sum.loss / n,
                    sum.contrastive / n,
                    log.loss_mix.map(|m| format!(", mix {m:.4}")).unwrap_or_default(),
                    sum.query_cosine / n,
                    knn.map(|k| format!("  kNN {:.2}%", 100.0 * k)).unwrap_or_default()
                        + &probe.map(|p| format!("  linear probe {:.2}%", 100.0 * p)).unwrap_or_default(),
                    log.images_per_s
                );
            }
            if sum.query_cosine / n > COLLAPSE_COSINE && warnings.is_empty() {
                let w = self.collapse_warning(done, sum.query_cosine / n);
                eprintln!("{w}");
                warnings.push(w);
            }
            last_log = Some(log);
        }
        let final_path = out.join(FINAL_FILE);
        self.checkpoint().save(&final_path)?;
        crate::plot::write_curves(&log_path, &out.join(CURVES_FILE))?;
        Ok(RunSummary { steps: self.step - started, interrupted: false, checkpoint: final_path, last: last_log, warnings })
    }
}

/// The files `Trainer::run` writes into its output folder.
pub const LOG_FILE: &str = "log.jsonl";
pub const LAST_FILE: &str = "last.safetensors";
pub const FINAL_FILE: &str = "final.safetensors";
pub const CURVES_FILE: &str = "curves.svg";

fn epoch_file(epoch: usize) -> String {
    format!("epoch-{epoch:04}.safetensors")
}

/// Whether `name` is one of the files a run writes (those above, or an `epoch-NNNN` checkpoint).
pub fn is_run_file(name: &str) -> bool {
    matches!(name, LOG_FILE | LAST_FILE | FINAL_FILE | CURVES_FILE) || (name.starts_with("epoch-") && name.ends_with(".safetensors"))
}

/// The lines of a run's `log.jsonl` (a resumed run appends to it).
pub fn read_log(path: &Path) -> Result<Vec<EpochLog>, TrainError> {
    let text = mixco_data::fsutil::read_text(path)?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| mixco_data::Error::format(path, format!("line {}: {e}", i + 1)).into()))
        .collect()
}

fn append_line(path: &Path, line: &str) -> Result<(), TrainError> {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| mixco_data::Error::io(path, e))?;
    writeln!(f, "{line}").map_err(|e| mixco_data::Error::io(path, e))?;
    Ok(())
}

fn progress_bar(visible: bool, len: usize, msg: String) -> indicatif::ProgressBar {
    if !visible {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new(len as u64);
    pb.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:25}] {pos}/{len} img {per_sec} eta {eta}")
            .unwrap()
            .progress_chars("=> "),
    );
    pb.set_message(msg);
    pb
}

/// Parameters of `store` that received a gradient (for tests).
pub fn params_with_grad(store: &crate::nn::Store) -> usize {
    store.params().filter(|e| {
        let g = e.tensor.grad();
        g.defined() && f64::try_from(g.abs().sum(Kind::Float)).unwrap() > 0.0
    }).count()
}
