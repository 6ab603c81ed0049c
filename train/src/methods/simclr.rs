//! SimCLR's step: NT-Xent between the two views of the whole batch; MixCo's
//! mixes of each view contrasted against the other view. Across ranks the
//! projections are gathered with their gradient, so each rank's loss has all
//! 2N views as negatives (not a per-rank loss).

use crate::collapse::mean_cosine;
use crate::dist::interleave;
use crate::loss::{mix_images, mixco_loss_at, nt_xent_rows};
use super::{Losses, Objective, StepView};
use crate::error::TrainError;
use mixco_data::rng::Rng;
use tch::Tensor;

pub struct Simclr;

impl Objective for Simclr {
    fn second_query_view(&self) -> bool {
        true
    }

    fn query_input(&self, a: &Tensor, b: Option<&Tensor>, lam: Option<&Tensor>) -> Tensor {
        let b = b.expect("SimCLR's queries hold both views");
        match lam {
            Some(l) => Tensor::cat(&[a, b, &mix_images(a, l), &mix_images(b, l)], 0),
            None => Tensor::cat(&[a, b], 0),
        }
    }

    fn key_input<'a>(&self, _b: &'a Tensor) -> Option<&'a Tensor> {
        None
    }

    fn losses(&self, t: &StepView, z: &Tensor, lam: Option<&Tensor>, _rng: &mut Rng) -> Result<Losses, TrainError> {
        let (n, world) = (t.cfg.batch_size as i64, t.dist.world as i64);
        let b = n / world;
        let half = b / 2;
        let tm = t.cfg.mix_temperature();
        let gathered = t.dist.gather_with_grad(z)?;
        // Every rank's rows [z1; z2; mixes], in rank order.
        let all = gathered.as_ref().map(|g| g.leaf.shallow_clone()).unwrap_or_else(|| z.shallow_clone());
        let rows = all.view([world, z.size()[0], -1]);
        let view = |at: i64| interleave(&rows.narrow(1, at, b).reshape([n, -1]), world);
        let (z1, z2) = (view(0), view(b));
        let positions = Tensor::from_slice(t.positions).to_device(t.device);
        let con = nt_xent_rows(&z1, &z2, &positions, t.cfg.temperature());
        // Each view's mixes are contrasted against the other view.
        let mine = rows.select(0, t.dist.rank as i64);
        let first = positions.narrow(0, 0, half);
        let mix = lam.map(|l| {
            (mixco_loss_at(&mine.narrow(0, 2 * b, half), &z2, l, &first, n / 2, tm) + mixco_loss_at(&mine.narrow(0, 2 * b + half, half), &z1, l, &first, n / 2, tm)) / 2.0
        });
        Ok(Losses { contrastive: con, mix, keys: None, query_cosine: mean_cosine(&z.narrow(0, 0, b)), gathered })
    }
}
