//! MoCo-v2's step: queries against momentum-encoder keys and the queue, with
//! shuffle-BN emulated by BN groups; MixCo's mixed queries against the same
//! keys and queue.

use crate::collapse::mean_cosine;
use crate::loss::{mix_images, mixco_loss, moco_loss};
use crate::optim::momentum_update;
use crate::step::{normalize, Losses, Objective};
use crate::trainer::Trainer;
use mixco_data::rng::Rng;
use tch::Tensor;

pub struct Moco;

impl Objective for Moco {
    fn query_input(&self, a: &Tensor, _b: &Tensor, lam: Option<&Tensor>) -> Tensor {
        match lam {
            Some(l) => Tensor::cat(&[a, &mix_images(a, l)], 0),
            None => a.shallow_clone(),
        }
    }

    fn key_input<'a>(&self, b: &'a Tensor) -> Option<&'a Tensor> {
        Some(b)
    }

    fn losses(&self, t: &Trainer, z: &Tensor, xk: &Tensor, lam: Option<&Tensor>, rng: &mut Rng) -> Losses {
        let b = t.cfg.batch_size as i64;
        let mode = t.bn_mode();
        let q = z.narrow(0, 0, b);
        let key = t.key.as_ref().expect("MoCo has a key encoder");
        let queue = t.queue.as_ref().expect("MoCo has a queue");
        // Shuffle the keys' order so that each BN group holds different samples than the queries'.
        let mut perm: Vec<i64> = (0..b).collect();
        rng.shuffle(&mut perm);
        let mut inv = vec![0i64; b as usize];
        for (i, &p) in perm.iter().enumerate() {
            inv[p as usize] = i as i64;
        }
        let k = tch::no_grad(|| {
            momentum_update(&key.store, &t.query.store, t.cfg.key_momentum);
            let shuffled = xk.index_select(0, &Tensor::from_slice(&perm).to_device(t.device));
            let zk = normalize(&key.forward(&shuffled, mode).1);
            zk.index_select(0, &Tensor::from_slice(&inv).to_device(t.device))
        });
        let con = moco_loss(&q, &k, &queue.keys, t.cfg.temperature());
        let mix = lam.map(|l| {
            let keys = Tensor::cat(&[&k, &queue.keys], 0);
            mixco_loss(&z.narrow(0, b, b / 2), &keys, l, t.cfg.mix_temperature())
        });
        // Read after the whole forward pass is queued: on CUDA the read waits for the device.
        let query_cosine = mean_cosine(&q);
        Losses { contrastive: con, mix, keys: Some(k), query_cosine }
    }
}

