//! SGD with momentum and weight decay (PyTorch's semantics), its state
//! exposed for checkpoints, and the learning-rate schedule.

use crate::nn::Store;
use tch::Tensor;

pub struct Sgd {
    pub momentum: f64,
    pub weight_decay: f64,
    /// One momentum buffer per trainable tensor of the store, in order.
    pub buffers: Vec<Tensor>,
}

impl Sgd {
    pub fn new(store: &Store, momentum: f64, weight_decay: f64) -> Sgd {
        let buffers = store.params().map(|e| e.tensor.zeros_like()).collect();
        Sgd { momentum, weight_decay, buffers }
    }

    /// `g += wd·p; buf = μ·buf + g; p -= lr·buf`, then clears the gradients.
    /// (PyTorch starts buf at g on the first step, which is the same as
    /// starting from zero.)
    pub fn step(&mut self, store: &Store, lr: f64) {
        tch::no_grad(|| {
            for (e, buf) in store.params().zip(self.buffers.iter_mut()) {
                let mut p = e.tensor.shallow_clone();
                let mut g = p.grad();
                if !g.defined() {
                    continue;
                }
                let d = &g + &p * self.weight_decay;
                let _ = buf.g_mul_scalar_(self.momentum).g_add_(&d);
                let _ = p.g_sub_(&(&*buf * lr));
                let _ = g.zero_();
            }
        });
    }

    pub fn zero_grad(store: &Store) {
        for e in store.params() {
            let mut g = e.tensor.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
    }
}

/// Cosine decay from `base` to 0 over `total` steps, after a linear warm-up
/// of `warmup` steps.
pub fn cosine_lr(base: f64, step: usize, total: usize, warmup: usize) -> f64 {
    if step < warmup {
        return base * (step + 1) as f64 / warmup as f64;
    }
    let t = (step - warmup) as f64 / (total - warmup).max(1) as f64;
    base * 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos())
}

/// Key encoder ← m · key + (1 - m) · query, for the learnt tensors only: as
/// in MoCo's code, the key encoder keeps its own BN running statistics.
pub fn momentum_update(key: &Store, query: &Store, m: f64) {
    tch::no_grad(|| {
        for (k, q) in key.params().zip(query.params()) {
            let _ = k.tensor.shallow_clone().g_mul_scalar_(m).g_add_(&(&q.tensor * (1.0 - m)));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixco_model::arch::{TensorKind, TensorSpec};
    use crate::nn::store::Init;
    use tch::Device;

    fn one_param(v: f32) -> Store {
        let mut s = Store::new(Device::Cpu);
        let t = s.add(&TensorSpec { name: "w".into(), shape: vec![1], kind: TensorKind::Param }, Init::Zeros);
        let _ = tch::no_grad(|| t.shallow_clone().fill_(v as f64));
        s
    }

    fn value(s: &Store) -> f64 {
        f64::try_from(s.get("w").unwrap()).unwrap()
    }

    #[test]
    fn sgd_momentum_and_decay_by_hand() {
        let s = one_param(1.0);
        let mut opt = Sgd::new(&s, 0.9, 0.1);
        // loss = 3w: g = 3.
        for _ in 0..2 {
            (s.get("w").unwrap() * 3.0).sum(tch::Kind::Float).backward();
            opt.step(&s, 0.5);
        }
        // step 1: d = 3 + 0.1·1 = 3.1; buf = 3.1; w = 1 - 1.55 = -0.55
        // step 2: d = 3 + 0.1·(-0.55) = 2.945; buf = 0.9·3.1 + 2.945 = 5.735; w = -0.55 - 2.8675 = -3.4175
        assert!((value(&s) + 3.4175).abs() < 1e-6, "{}", value(&s));
    }

    #[test]
    fn momentum_update_arithmetic() {
        let k = one_param(1.0);
        let q = one_param(3.0);
        momentum_update(&k, &q, 0.99);
        assert!((value(&k) - (0.99 + 0.03)).abs() < 1e-6);
        assert_eq!(value(&q), 3.0);
    }

    #[test]
    fn schedule() {
        assert!((cosine_lr(0.1, 0, 100, 0) - 0.1).abs() < 1e-12);
        assert!((cosine_lr(0.1, 50, 100, 0) - 0.05).abs() < 1e-12);
        assert!(cosine_lr(0.1, 100, 100, 0).abs() < 1e-12);
        assert!((cosine_lr(0.1, 4, 100, 10) - 0.05).abs() < 1e-12);
    }
}
