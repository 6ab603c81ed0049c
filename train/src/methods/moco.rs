//! MoCo-v2's step: queries against momentum-encoder keys and the queue, with
//! shuffle-BN (BN groups on one device, across ranks as in MoCo's code, but
//! without sending images); MixCo's mixed queries against the whole batch's
//! keys and the queue.

use crate::collapse::mean_cosine;
use crate::loss::{mix_images, mixco_loss_at, moco_loss};
use crate::optim::momentum_update;
use super::{normalize, Losses, Objective, StepView};
use crate::error::TrainError;
use mixco_data::rng::Rng;
use tch::Tensor;

pub struct Moco;

impl Objective for Moco {
    fn second_query_view(&self) -> bool {
        false
    }

    fn query_input(&self, a: &Tensor, _b: Option<&Tensor>, lam: Option<&Tensor>) -> Tensor {
        match lam {
            Some(l) => Tensor::cat(&[a, &mix_images(a, l)], 0),
            None => a.shallow_clone(),
        }
    }

    fn key_input<'a>(&self, b: &'a Tensor) -> Option<&'a Tensor> {
        Some(b)
    }

    fn losses(&self, t: &StepView, z: &Tensor, lam: Option<&Tensor>, rng: &mut Rng) -> Result<Losses, TrainError> {
        let n = t.cfg.batch_size as i64;
        let b = n / t.dist.world as i64;
        let q = z.narrow(0, 0, b);
        let queue = t.queue.expect("MoCo has a queue");
        let keys = tch::no_grad(|| batch_keys(t, rng))?;
        let positions = Tensor::from_slice(t.positions).to_device(t.device);
        let k = if t.dist.is_single() { keys.shallow_clone() } else { keys.index_select(0, &positions) };
        let con = moco_loss(&q, &k, &queue.keys, t.cfg.temperature());
        let mix = lam.map(|l| {
            let columns = Tensor::cat(&[&keys, &queue.keys], 0);
            mixco_loss_at(&z.narrow(0, b, b / 2), &columns, l, &positions.narrow(0, 0, b / 2), n / 2, t.cfg.mix_temperature())
        });
        // Read after the whole forward pass is queued: on CUDA the read waits for the device.
        let query_cosine = mean_cosine(&q);
        Ok(Losses { contrastive: con, mix, keys: Some(keys), query_cosine, gathered: None })
    }
}

/// The keys of the whole batch, in batch order, after the momentum update.
/// Shuffle-BN: the key views are put in an order drawn from the step's
/// shared stream (the same permutation on every rank), so that each BN group
/// (one device's, or one rank's share) holds other images than its queries';
/// each rank makes the key views of its share of the shuffled batch (a view
/// is the same on any rank, so no image is sent), encodes them, and the keys
/// are gathered and unshuffled.
fn batch_keys(t: &StepView, rng: &mut Rng) -> Result<Tensor, TrainError> {
    let n = t.cfg.batch_size as i64;
    let key = t.key.expect("MoCo has a key encoder");
    let mut perm: Vec<i64> = (0..n).collect();
    rng.shuffle(&mut perm);
    let mut inv = vec![0i64; n as usize];
    for (i, &p) in perm.iter().enumerate() {
        inv[p as usize] = i as i64;
    }
    momentum_update(&key.store, &t.query.store, t.cfg.key_momentum);
    let mine: Vec<i64> = t.positions.iter().map(|&q| perm[q as usize]).collect();
    let zk = t.dist.gather_batch(&normalize(&key.forward(&(t.views)(&mine, 1), t.bn_mode).1))?;
    Ok(zk.index_select(0, &Tensor::from_slice(&inv).to_device(t.device)))
}
