//! The trainer's state and one optimisation step (the method's part behind
//! `methods::Objective`); the checkpoint mapping is in `state`, the loop that
//! runs epochs, logs and saves in `train_loop`.

use crate::augment::{image_streams, AugConfig, Augment};
use crate::dist::Dist;
use crate::collapse::CollapseWarning;
use crate::config::{ConfigError, Method, TrainConfig};
use crate::encoder::Encoder;
use crate::nn::BnMode;
use crate::optim::{cosine_lr, Sgd};
use crate::queue::Queue;
use crate::methods::{normalize, objective, Losses, StepView};
pub use crate::error::TrainError;
use mixco_data::rng::{mix_seed, Rng};
use mixco_data::Splits;
use mixco_eval::features::Features;
use mixco_model::arch::TensorKind;
use mixco_model::{ArchSpec, HeadSpec, ModelConfig};
use serde::Serialize;
use tch::{Device, Kind, Tensor};

/// Losses of one step.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct StepStats {
    pub loss: f64,
    pub contrastive: f64,
    pub mix: f64,
    /// Mean cosine similarity between the projections of different images (`collapse::mean_cosine`).
    pub query_cosine: f64,
}

pub struct Trainer {
    pub cfg: TrainConfig,
    pub model: ModelConfig,
    pub device: Device,
    pub query: Encoder,
    pub key: Option<Encoder>,
    pub queue: Option<Queue>,
    pub opt: Sgd,
    pub(crate) aug: Augment,
    pub(crate) train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    classes: i64,
    pub step: usize,
    pub steps_per_epoch: usize,
    pub(crate) dataset: String,
    pub(crate) dataset_sha256: String,
    /// Files of a deliberately cut dataset ("FILE: N of the official M
    /// records"), recorded in every checkpoint; empty for the official data.
    pub dataset_cut: Vec<String>,
    /// Written into the next epoch's log line, then cleared.
    pub(crate) note: Option<String>,
    perm: Option<(usize, Vec<i64>)>,
    /// The ranks this trainer is one of (`join`); a group of one by default.
    pub dist: Dist,
}

/// MixCo's λ of the pairs whose first images are at `first` in the step's
/// global batch (seeded by pair, so the same on whichever rank mixes it).
fn lambdas(step_seed: u64, first: &[i64], device: Device) -> Tensor {
    let v: Vec<f32> = first.iter().map(|&i| Rng::new(mix_seed(step_seed ^ 0x1A3B_DA00, i as u64)).uniform()).collect();
    Tensor::from_slice(&v).to_device(device)
}

fn to_tensor_u8(set: &mixco_data::ImageSet, device: Device) -> (Tensor, Tensor) {
    let x = Tensor::from_slice(&set.pixels).view([set.len() as i64, 3, set.height as i64, set.width as i64]).to_device(device);
    let y: Vec<i64> = set.labels.iter().map(|&l| l as i64).collect();
    (x, Tensor::from_slice(&y).to_device(device))
}

impl Trainer {
    /// A fresh run on `splits` (the training split is cut to `train_limit`).
    pub fn new(cfg: TrainConfig, splits: &Splits, device: Device) -> Result<Trainer, TrainError> {
        cfg.validate()?;
        let mut train = splits.train.clone();
        if let Some(n) = cfg.train_limit {
            train.truncate(n);
        }
        if train.len() < cfg.batch_size {
            return Err(TrainError::Config(ConfigError::new("batch-size", format!(
                "batch-size {} is larger than the {} training images of {}",
                cfg.batch_size,
                train.len(),
                splits.name
            ))));
        }
        // The kNN monitor needs test images (an empty split once panicked in torch.cat).
        if cfg.knn_every > 0 && splits.test.is_empty() {
            return Err(TrainError::Config(ConfigError::new(
                "knn-every",
                format!("knn-every {}: the test split of {} is empty, and the kNN monitor needs test images (0 turns it off)", cfg.knn_every, splits.name),
            )));
        }
        if train.height != train.width {
            let problem = format!("{}: images are {}x{}; square images are needed", splits.name, train.height, train.width);
            return Err(TrainError::Data(mixco_data::Error::Invalid(problem)));
        }
        let arch = ArchSpec { depth: cfg.arch, width: cfg.width, stem: cfg.stem };
        let feat = arch.backbone().feature_dim;
        let (mean, std) = train.channel_stats();
        let input_size = cfg.input_size.unwrap_or(train.height);
        let model = ModelConfig {
            arch,
            head: HeadSpec { in_dim: feat, hidden: cfg.head_hidden.unwrap_or(feat), out_dim: cfg.head_dim },
            method: cfg.method.to_string(),
            mixco: cfg.mixco,
            input_size,
            mean,
            std,
        };
        // libtorch's generator is the process's: seeding it and drawing the
        // initial weights and queue hold this lock, so that trainers made at
        // the same time on other threads do not draw from between them.
        static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let init = INIT.lock().unwrap_or_else(|e| e.into_inner());
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
        drop(init);
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
            dist: Dist::single(),
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
            return Err(ConfigError::new("epochs", format!("epochs {epochs}: the run has already trained {reached} epoch(s)")).into());
        }
        let extended = TrainConfig { epochs, ..self.cfg.clone() };
        extended.validate()?;
        self.note = Some(format!("epochs {} -> {epochs} at step {} (resumed)", self.cfg.epochs, self.step));
        self.cfg.epochs = epochs;
        Ok(())
    }

    pub fn lr(&self) -> f64 {
        cosine_lr(self.cfg.lr, self.step, self.total_steps(), self.cfg.warmup_epochs * self.steps_per_epoch)
    }

    /// Makes this trainer one of `dist`'s ranks (every rank calls it, after
    /// `new` or `resume`): checks that the ranks can share the batch, then
    /// gives every rank rank 0's state (weights, buffers, queue, optimiser).
    pub fn join(&mut self, dist: Dist) -> Result<(), TrainError> {
        self.cfg.validate_world(dist.world)?;
        let mut state: Vec<&Tensor> = self.stores().flat_map(|s| s.entries.iter().map(|e| &e.tensor)).collect();
        state.extend(self.queue.as_ref().map(|q| &q.keys));
        state.extend(self.opt.buffers.iter());
        for t in state {
            dist.broadcast(t, 0)?;
        }
        self.dist = dist;
        Ok(())
    }

    /// The encoders' tensors: the query encoder's, then the key encoder's.
    fn stores(&self) -> impl Iterator<Item = &crate::nn::Store> {
        std::iter::once(&self.query.store).chain(self.key.as_ref().map(|k| &k.store))
    }

    /// Takes this trainer out of its group (which another trainer may join).
    pub fn leave(&mut self) -> Dist {
        std::mem::replace(&mut self.dist, Dist::single())
    }

    /// Whether this process writes the run's files and reports (rank 0).
    pub fn is_leader(&self) -> bool {
        self.dist.rank == 0
    }

    /// The epoch's order of the training images: it depends only on (seed, epoch).
    pub(crate) fn order_epoch(&mut self) {
        let epoch = self.epoch();
        if self.perm.as_ref().map(|p| p.0) != Some(epoch) {
            let n = self.train_x.size()[0] as usize;
            let mut rng = Rng::new(mix_seed(self.cfg.seed ^ 0x5EED_0F_E90C, epoch as u64));
            let mut p: Vec<i64> = (0..n as i64).collect();
            rng.shuffle(&mut p);
            self.perm = Some((epoch, p));
        }
    }

    /// The seed of the current step's random numbers.
    pub(crate) fn step_seed(&self) -> u64 {
        mix_seed(self.cfg.seed, self.step as u64)
    }

    /// Augmented view `view` (0 or 1) of the images at `positions` of the
    /// current step's global batch. Each image's parameters come from its own
    /// stream and the jitter order from the view's, so a view of an image is
    /// the same whichever rank makes it, with whichever others.
    pub(crate) fn view(&self, positions: &[i64], view: u64) -> Tensor {
        let (b, i) = (self.cfg.batch_size, self.step % self.steps_per_epoch);
        let batch = &self.perm.as_ref().expect("order_epoch ran").1[i * b..(i + 1) * b];
        let idx: Vec<i64> = positions.iter().map(|&p| batch[p as usize]).collect();
        let x = self.train_x.index_select(0, &Tensor::from_slice(&idx).to_device(self.device));
        let seed = self.step_seed();
        self.aug.apply(&x, &mut image_streams(seed, positions, view), &mut Rng::new(mix_seed(seed ^ 0x0DE2_0F_71E2, view)))
    }

    /// β at the current step: ramped from 0 during `mix_warmup_epochs`.
    pub fn mix_weight(&self) -> f64 {
        let ramp = self.cfg.mix_warmup_epochs * self.steps_per_epoch;
        if ramp == 0 {
            return self.cfg.mix_weight;
        }
        self.cfg.mix_weight * ((self.step + 1) as f64 / ramp as f64).min(1.0)
    }

    /// BN in training mode, in this rank's share of the configured groups
    /// (MoCo's shuffle-BN).
    pub(crate) fn bn_mode(&self) -> BnMode {
        BnMode::Train { splits: (self.cfg.effective_bn_splits() / self.dist.world) as i64 }
    }

    /// One optimisation step (this rank's share of it).
    pub fn train_step(&mut self) -> Result<StepStats, TrainError> {
        self.order_epoch();
        let seed = self.step_seed();
        // The step's shared stream, the same on every rank: MoCo's key shuffle.
        let mut rng = Rng::new(seed);
        let positions = self.dist.positions(self.cfg.batch_size);
        let lr = self.lr();
        let beta = self.mix_weight();
        let lam = self.cfg.mixco.then(|| lambdas(seed, &positions[..positions.len() / 2], self.device));
        let objective = objective(self.cfg.method);
        let a = self.view(&positions, 0);
        let b = objective.second_query_view().then(|| self.view(&positions, 1));
        let input = objective.query_input(&a, b.as_ref(), lam.as_ref());
        let z = normalize(&self.query.forward(&input, self.bn_mode()).1);
        let views = |p: &[i64], v: u64| self.view(p, v);
        let step = StepView {
            cfg: &self.cfg,
            device: self.device,
            query: &self.query,
            key: self.key.as_ref(),
            queue: self.queue.as_ref(),
            dist: &self.dist,
            bn_mode: self.bn_mode(),
            positions: &positions,
            views: &views,
        };
        let losses = objective.losses(&step, &z, lam.as_ref(), &mut rng)?;
        let total = match &losses.mix {
            Some(m) => &losses.contrastive + m * beta,
            None => losses.contrastive.shallow_clone(),
        };
        let stats = self.finish(&total, &losses)?;
        self.opt.step(&self.query.store, lr);
        if let (Some(k), Some(queue)) = (losses.keys, self.queue.as_mut()) {
            queue.push(&k);
        }
        self.step += 1;
        Ok(stats)
    }

    /// Backward pass after checking the loss is finite, then the ranks'
    /// gradients and batch-norm statistics averaged.
    fn finish(&mut self, total: &Tensor, losses: &Losses) -> Result<StepStats, TrainError> {
        let value = |t: Option<&Tensor>| t.map(|t| f64::try_from(t).unwrap()).unwrap_or(0.0);
        // Each rank's losses are means over equal shares: their mean is the global batch's.
        let v = [value(Some(total)), value(Some(&losses.contrastive)), value(losses.mix.as_ref()), losses.query_cosine];
        let v = Tensor::from_slice(&v);
        self.dist.all_reduce_sum(&v)?;
        let v = Vec::<f64>::try_from(v / self.dist.world as f64).expect("four losses");
        let stats = StepStats { loss: v[0], contrastive: v[1], mix: v[2], query_cosine: v[3] };
        if !stats.loss.is_finite() {
            Sgd::zero_grad(&self.query.store);
            return Err(TrainError::NonFinite { value: stats.loss, step: self.step, epoch: self.epoch() + 1, last_good: None });
        }
        match &losses.gathered {
            Some(g) => g.backward(total, &self.dist)?,
            None => total.backward(),
        }
        self.average_across_ranks()?;
        Ok(stats)
    }

    /// Gradients and the BN running statistics (query and key encoder) as
    /// their means over the ranks, so that every rank takes the same step and
    /// holds the statistics one device would (the mean over all BN groups).
    fn average_across_ranks(&self) -> Result<(), TrainError> {
        if self.dist.is_single() {
            return Ok(());
        }
        let mut ts: Vec<Tensor> = self.query.store.params().map(|e| e.tensor.grad()).filter(Tensor::defined).collect();
        ts.extend(self.stores().flat_map(|s| s.entries.iter().filter(|e| e.kind == TensorKind::Buffer).map(|e| e.tensor.shallow_clone())));
        Ok(self.dist.average(&ts)?)
    }

    /// The warning for an epoch whose mean query cosine passed `COLLAPSE_COSINE`.
    pub fn collapse_warning(&self, epoch: usize, cosine: f64) -> CollapseWarning {
        let mixco = (self.cfg.mixco && self.cfg.mix_temperature() < 0.1).then(|| (self.cfg.mix_temperature(), self.cfg.mix_weight));
        CollapseWarning { epoch, cosine, mixco }
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
        let (host, host_y) = (host_features(&train), host_labels(&train_y));
        let (host_test, host_test_y) = (host_features(&test), host_labels(&self.test_y));
        let k = [self.cfg.knn_k];
        let knn = mixco_eval::knn::knn_accuracy(&host, &host_y, &host_test, &host_test_y, self.classes as usize, &k, self.cfg.knn_temperature as f32)[0];
        let probe = probe.then(|| crate::quick_probe::quick_probe(&train, &train_y, &test, &self.test_y, self.classes));
        (knn, probe)
    }

}

/// Features on the host, for the one kNN (`mixco_eval::knn`) that the
/// monitor shares with `mixco eval`.
fn host_features(f: &Tensor) -> Features {
    let (n, dim) = (f.size()[0] as usize, f.size()[1] as usize);
    let data = Vec::<f32>::try_from(f.to_kind(Kind::Float).to_device(Device::Cpu).reshape([-1])).expect("float features");
    Features { data, n, dim }
}

fn host_labels(y: &Tensor) -> Vec<u32> {
    Vec::<i64>::try_from(y.to_device(Device::Cpu)).expect("int64 labels").into_iter().map(|l| l as u32).collect()
}

/// Parameters of `store` that received a gradient (for tests).
pub fn params_with_grad(store: &crate::nn::Store) -> usize {
    store.params().filter(|e| {
        let g = e.tensor.grad();
        g.defined() && f64::try_from(g.abs().sum(Kind::Float)).unwrap() > 0.0
    }).count()
}
