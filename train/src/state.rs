//! The trainer's whole state <-> a checkpoint: query and key encoders, the
//! queue, optimiser buffers and the settings, so that a run resumes exactly.

use crate::config::TrainConfig;
use crate::nn::store::{from_host, to_host};
use crate::trainer::{TrainError, Trainer};
use mixco_data::Splits;
use mixco_model::arch::{TensorKind, TensorSpec};
use mixco_model::{Checkpoint, CheckpointError};
use std::path::Path;
use tch::Device;

impl Trainer {
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
}
