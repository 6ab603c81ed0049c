//! `mixco bench train`: images/s of the bare encoder passes (the ceiling) and
//! of full training steps, on the same model, batch and device, in one run;
//! across ranks (`Dist`), of this rank's share of the global batch, with the
//! time spent in collectives.

use crate::{TrainConfig, Trainer, TrainError};
use mixco_data::synthetic::{generate, SyntheticConfig};
use serde::Serialize;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

#[derive(Debug, Serialize)]
pub struct BenchRow {
    pub what: String,
    pub median_ms: f64,
    /// Of the global batch.
    pub images_per_s: f64,
    /// Mean time per step inside collectives (waiting for the other ranks
    /// included); None for one process.
    pub collective_ms: Option<f64>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

fn time(device: Device, warmup: usize, iters: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..warmup {
        f();
    }
    sync(device);
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        f();
        sync(device);
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    median(times)
}

/// Times, for `base` (method and MixCo taken from each row): the bare passes
/// on pre-augmented tensors, then full steps (augmentation, mixing, momentum
/// update, queue, loss, optimizer).
pub fn train_bench(base: &TrainConfig, device: Device, warmup: usize, iters: usize, mut dist: crate::dist::Dist) -> Result<Vec<BenchRow>, TrainError> {
    let b = base.batch_size;
    let world = dist.world;
    let splits = generate(&SyntheticConfig { train: b * (warmup + iters + 1), test: 10, size: base.input_size.unwrap_or(32), ..Default::default() });
    let mut rows = Vec::new();
    for mixco in [false, true] {
        let cfg = TrainConfig { mixco, epochs: 1, knn_every: 0, ..base.clone() };
        let mut t = Trainer::new(cfg, &splits, device)?;
        t.join(dist)?;
        let name = format!("{}{}", base.method, if mixco { " + MixCo" } else { "" });
        // The same passes a step makes, on tensors augmented once beforehand.
        let local = b / world;
        t.order_epoch();
        let positions = t.dist.positions(b);
        let (v1, v2) = (t.view(&positions, 0), t.view(&positions, 1));
        let lam = mixco.then(|| Tensor::full([(local / 2) as i64], 0.5, (Kind::Float, device)));
        let mode = t.bn_mode();
        let objective = crate::methods::objective(base.method);
        let passes = || {
            // The step's own input assembly (mixes included), without augmentation.
            let q_in = objective.query_input(&v1, Some(&v2), lam.as_ref());
            let k_in = objective.key_input(&v2);
            let z = t.query.forward(&q_in, mode).1;
            if let (Some(k), Some(key)) = (k_in, &t.key) {
                let _ = tch::no_grad(|| key.forward(k, mode).1);
            }
            z.sum(Kind::Float).backward();
        };
        let ms = time(device, warmup, iters, passes);
        crate::optim::Sgd::zero_grad(&t.query.store);
        rows.push(BenchRow { what: format!("{name}: forward/backward only"), median_ms: ms, images_per_s: b as f64 / ms * 1e3, collective_ms: None });
        let mut err = None;
        let before = t.dist.collective_time();
        let ms = time(device, warmup, iters, || {
            if let Err(e) = t.train_step() {
                err = Some(e);
            }
        });
        if let Some(e) = err {
            return Err(e);
        }
        let collective_ms = (world > 1).then(|| (t.dist.collective_time() - before).as_secs_f64() * 1e3 / (warmup + iters) as f64);
        rows.push(BenchRow { what: format!("{name}: full step"), median_ms: ms, images_per_s: b as f64 / ms * 1e3, collective_ms });
        dist = t.leave();
    }
    Ok(rows)
}
