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
    let n = z1.size()[0];
    let z = Tensor::cat(&[z1, z2], 0);
    let eye = Tensor::eye(2 * n, (Kind::Bool, z.device()));
    let sim = (z.matmul(&z.transpose(0, 1)) / t).masked_fill(&eye, f64::NEG_INFINITY);
    let idx = Tensor::arange(2 * n, (Kind::Int64, z.device()));
    let targets = (idx + n).remainder(2 * n);
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
    }
}
