use super::soft_cross_entropy;
use tch::{Kind, Tensor};

/// Mixes the first half of a batch with the second: row i of the result is
/// `λ_i · x_i + (1 - λ_i) · x_{i+N/2}`. `x`: `[N, ...]` with N even; `lam`: `[N/2]`.
pub fn mix_images(x: &Tensor, lam: &Tensor) -> Tensor {
    let half = x.size()[0] / 2;
    let mut shape = vec![half];
    shape.extend(std::iter::repeat_n(1, x.dim() - 1));
    let l = lam.view(shape.as_slice());
    &l * x.narrow(0, 0, half) + (1.0 - &l) * x.narrow(0, half, half)
}

/// Soft targets over `columns` keys for N/2 mixed queries: λ_i on key i and
/// 1 - λ_i on key i + N/2 (N = 2 · lam.len()); every row sums to 1.
pub fn mixco_targets(lam: &Tensor, columns: i64) -> Tensor {
    let half = lam.size()[0];
    mixco_targets_at(lam, &Tensor::arange(half, (Kind::Int64, lam.device())), half, columns)
}

/// [`mixco_targets`] for mixed queries whose pairs are `first[i]` and
/// `first[i] + half` among the keys (a rank's pairs in the global batch).
pub fn mixco_targets_at(lam: &Tensor, first: &Tensor, half: i64, columns: i64) -> Tensor {
    let n = lam.size()[0];
    let rows = Tensor::arange(n, (Kind::Int64, lam.device()));
    let t = Tensor::zeros([n, columns], (Kind::Float, lam.device()));
    let t = t.index_put(&[Some(&rows), Some(first)], lam, false);
    t.index_put(&[Some(&rows), Some(&(first + half))], &(1.0 - lam), false)
}

/// MixCo: logits of each mixed query against `keys` (`[M, D]`: the batch's N
/// keys first, then any extra negatives such as MoCo's queue), over `t`, and
/// the soft cross-entropy with [`mixco_targets`].
///
/// ```
/// use tch::Tensor;
/// use mixco_train::loss::mixco_loss;
/// // One mixed query equal to key 0, λ = 1: plain InfoNCE with logits [1/t, 0].
/// let q = Tensor::from_slice(&[1f32, 0.]).view([1, 2]);
/// let keys = Tensor::from_slice(&[1f32, 0., 0., 1.]).view([2, 2]);
/// let lam = Tensor::from_slice(&[1f32]);
/// let loss = f64::try_from(mixco_loss(&q, &keys, &lam, 1.0)).unwrap();
/// assert!((loss - (1.0 + (-1f64).exp()).ln()).abs() < 1e-6);
/// ```
pub fn mixco_loss(q_mix: &Tensor, keys: &Tensor, lam: &Tensor, t: f64) -> Tensor {
    let half = lam.size()[0];
    mixco_loss_at(q_mix, keys, lam, &Tensor::arange(half, (Kind::Int64, lam.device())), half, t)
}

/// [`mixco_loss`] with the targets of [`mixco_targets_at`].
pub fn mixco_loss_at(q_mix: &Tensor, keys: &Tensor, lam: &Tensor, first: &Tensor, half: i64, t: f64) -> Tensor {
    let logits = q_mix.matmul(&keys.transpose(0, 1)) / t;
    soft_cross_entropy(&logits, &mixco_targets_at(lam, first, half, keys.size()[0]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::t;

    fn value(x: Tensor) -> f64 {
        f64::try_from(x).unwrap()
    }

    #[test]
    fn targets_sum_to_one_and_sit_on_the_pair() {
        let lam = Tensor::from_slice(&[0.25f32, 1.0, 0.0]);
        let tg = mixco_targets(&lam, 8);
        let rows = Vec::<f32>::try_from(tg.sum_dim_intlist(1, false, None)).unwrap();
        assert_eq!(rows, vec![1.0; 3]);
        let flat = Vec::<f32>::try_from(tg.view(-1)).unwrap();
        assert_eq!(&flat[0..8], &[0.25, 0., 0., 0.75, 0., 0., 0., 0.]);
        assert_eq!(&flat[8..16], &[0., 1., 0., 0., 0., 0., 0., 0.]);
        assert_eq!(&flat[16..24], &[0., 0., 0., 0., 0., 1., 0., 0.]);
        // Rank 1 of 2 in a batch of 4: its one pair is positions 1 and 3.
        let at = mixco_targets_at(&Tensor::from_slice(&[0.25f32]), &Tensor::from_slice(&[1i64]), 2, 4);
        assert_eq!(Vec::<f32>::try_from(at.view(-1)).unwrap(), vec![0., 0.25, 0., 0.75]);
    }

    #[test]
    fn loss_matches_hand_computation_including_lambda_0_and_1() {
        // Two mixed queries (N = 4 keys), t = 0.5.
        let q = t(&[&[1., 0.], &[0.6, 0.8]]);
        let keys = t(&[&[1., 0.], &[0., 1.], &[-1., 0.], &[0.6, 0.8]]);
        let lse = |l: [f64; 4]| l.iter().map(|x| x.exp()).sum::<f64>().ln();
        // Row 1 logits: [1, 0, -1, .6]/.5 = [2, 0, -2, 1.2]; row 2: [.6, .8, -.6, 1]/.5 = [1.2, 1.6, -1.2, 2].
        let r1 = [2., 0., -2., 1.2];
        let r2 = [1.2, 1.6, -1.2, 2.];
        for (l1, l2) in [(0.3f64, 0.9f64), (0.0, 1.0), (1.0, 0.0)] {
            // Row 1 pairs keys 0 and 2; row 2 pairs keys 1 and 3.
            let ce1 = -(l1 * r1[0] + (1. - l1) * r1[2]) + lse(r1);
            let ce2 = -(l2 * r2[1] + (1. - l2) * r2[3]) + lse(r2);
            let lam = Tensor::from_slice(&[l1 as f32, l2 as f32]);
            let got = value(mixco_loss(&q, &keys, &lam, 0.5));
            assert!((got - (ce1 + ce2) / 2.).abs() < 1e-5, "λ=({l1},{l2}): {got}");
        }
    }

    #[test]
    fn mixing_is_per_pair() {
        let x = t(&[&[1., 1.], &[2., 2.], &[3., 3.], &[5., 5.]]);
        let lam = Tensor::from_slice(&[0.5f32, 0.0]);
        let m = Vec::<f32>::try_from(mix_images(&x, &lam).view(-1)).unwrap();
        assert_eq!(m, vec![2., 2., 5., 5.]);
    }

    #[test]
    fn large_logits_stay_finite() {
        let q = t(&[&[1., 0.]]);
        let keys = t(&[&[1., 0.], &[-1., 0.]]);
        let lam = Tensor::from_slice(&[0.5f32]);
        let got = value(mixco_loss(&q, &keys, &lam, 1e-4));
        assert!(got.is_finite() && (got - 0.5 * 2e4).abs() / 1e4 < 1e-3, "{got}");
    }
}
