//! SimCLR's step: NT-Xent between the two views of the batch; MixCo's mixes
//! of each view contrasted against the other view.

use crate::collapse::mean_cosine;
use crate::loss::{mix_images, mixco_loss, nt_xent_loss};
use crate::step::{Losses, Objective};
use crate::trainer::Trainer;
use mixco_data::rng::Rng;
use tch::Tensor;

pub struct Simclr;

impl Objective for Simclr {
    fn query_input(&self, a: &Tensor, b: &Tensor, lam: Option<&Tensor>) -> Tensor {
        match lam {
            Some(l) => Tensor::cat(&[a, b, &mix_images(a, l), &mix_images(b, l)], 0),
            None => Tensor::cat(&[a, b], 0),
        }
    }

    fn key_input<'a>(&self, _b: &'a Tensor) -> Option<&'a Tensor> {
        None
    }

    fn losses(&self, t: &Trainer, z: &Tensor, _b: &Tensor, lam: Option<&Tensor>, _rng: &mut Rng) -> Losses {
        let b = t.cfg.batch_size as i64;
        let half = b / 2;
        let tm = t.cfg.mix_temperature();
        let (z1, z2) = (z.narrow(0, 0, b), z.narrow(0, b, b));
        let con = nt_xent_loss(&z1, &z2, t.cfg.temperature());
        // Each view's mixes are contrasted against the other view.
        let mix = lam.map(|l| (mixco_loss(&z.narrow(0, 2 * b, half), &z2, l, tm) + mixco_loss(&z.narrow(0, 2 * b + half, half), &z1, l, tm)) / 2.0);
        Losses { contrastive: con, mix, keys: None, query_cosine: mean_cosine(&z1) }
    }
}
