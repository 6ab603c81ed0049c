use tch::{Kind, Tensor};

/// SimCLR's NT-Xent: over the 2N views `[z1; z2]`, view i's positive is its
/// other view, its negatives the remaining 2N - 2; self-similarity is masked.
///
/// ```
/// use tch::Tensor;
/// // z1 = z2 = [(1,0), (0,1)], t = 1: every view's logits are 1 (its positive)
/// // and 0, 0, so the loss is ln(e + 2) - 1.
/// let z = Tensor::from_slice(&[1f32, 0., 0., 1.]).view([2, 2]);
/// let loss = f64::try_from(mixco_train::loss::nt_xent_loss(&z, &z, 1.0)).unwrap();
/// assert!((loss - ((1f64.exp() + 2.0).ln() - 1.0)).abs() < 1e-6);
/// ```
pub fn nt_xent_loss(z1: &Tensor, z2: &Tensor, t: f64) -> Tensor {
    nt_xent_rows(z1, z2, &Tensor::arange(z1.size()[0], (Kind::Int64, z1.device())), t)
}

/// [`nt_xent_loss`]'s mean over the anchors at `rows` of both views only (a
/// rank's share of the global batch): the sum of the ranks' shares over the
/// number of ranks is the whole batch's loss.
pub fn nt_xent_rows(z1: &Tensor, z2: &Tensor, rows: &Tensor, t: f64) -> Tensor {
    let n = z1.size()[0];
    let z = Tensor::cat(&[z1, z2], 0);
    let anchors = Tensor::cat(&[rows, &(rows + n)], 0);
    let sim = z.index_select(0, &anchors).matmul(&z.transpose(0, 1)) / t;
    // Each anchor's similarity to itself is masked.
    let own = Tensor::zeros_like(&sim).scatter_value(1, &anchors.unsqueeze(1), 1.0).to_kind(Kind::Bool);
    let sim = sim.masked_fill(&own, f64::NEG_INFINITY);
    let targets = (anchors + n).remainder(2 * n);
    sim.cross_entropy_for_logits(&targets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::t;

    #[test]
    fn matches_hand_computation() {
        // z1 = [(1,0), (0,1)], z2 = [(0.6,0.8), (0,1)], t = 0.5.
        let z1 = t(&[&[1., 0.], &[0., 1.]]);
        let z2 = t(&[&[0.6, 0.8], &[0., 1.]]);
        // Similarities between a=(1,0), b=(0,1), c=(0.6,0.8), d=(0,1):
        // ab 0, ac .6, ad 0, bc .8, bd 1, cd .8. Positives: a-c, b-d, c-a, d-b.
        let ce = |pos: f64, others: [f64; 2]| {
            let l = [pos / 0.5, others[0] / 0.5, others[1] / 0.5];
            -l[0] + l.iter().map(|x| x.exp()).sum::<f64>().ln()
        };
        let want = (ce(0.6, [0., 0.]) + ce(1., [0., 0.8]) + ce(0.6, [0.8, 0.8]) + ce(1., [0., 0.8])) / 4.0;
        let got = f64::try_from(nt_xent_loss(&z1, &z2, 0.5)).unwrap();
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        // Two shares (rows 0 and 1) average to the whole.
        let share = |r: i64| f64::try_from(nt_xent_rows(&z1, &z2, &Tensor::from_slice(&[r]), 0.5)).unwrap();
        assert!(((share(0) + share(1)) / 2.0 - want).abs() < 1e-5);
    }
}
