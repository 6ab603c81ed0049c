use tch::{Kind, Tensor};

/// MoCo's InfoNCE: for each query, the logits are its similarity to its own
/// key (the positive, class 0) and to every key in the queue, over `t`.
///
/// `q`, `k`: `[N, D]`; `queue`: `[K, D]` (rows are keys).
///
/// ```
/// use tch::Tensor;
/// let q = Tensor::from_slice(&[1f32, 0.]).view([1, 2]);
/// let queue = Tensor::from_slice(&[0f32, 1.]).view([1, 2]);
/// // logits [1/t, 0]: loss = ln(1 + e^(-1/t)).
/// let loss = f64::try_from(mixco_train::loss::moco_loss(&q, &q, &queue, 0.5)).unwrap();
/// assert!((loss - (1.0 + (-2f64).exp()).ln()).abs() < 1e-6);
/// ```
pub fn moco_loss(q: &Tensor, k: &Tensor, queue: &Tensor, t: f64) -> Tensor {
    let pos = (q * k).sum_dim_intlist(1, true, None);
    let neg = q.matmul(&queue.transpose(0, 1));
    let logits = Tensor::cat(&[pos, neg], 1) / t;
    let n = q.size()[0];
    let labels = Tensor::zeros([n], (Kind::Int64, q.device()));
    logits.cross_entropy_for_logits(&labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::t;

    #[test]
    fn matches_hand_computation() {
        // q1 = (1, 0), k1 = (0.6, 0.8); q2 = (0, 1), k2 = (0, 1); queue rows (1, 0), (-1, 0).
        let q = t(&[&[1., 0.], &[0., 1.]]);
        let k = t(&[&[0.6, 0.8], &[0., 1.]]);
        let queue = t(&[&[1., 0.], &[-1., 0.]]);
        let temp = 0.2;
        // Row 1 logits: [0.6, 1, -1] / 0.2 = [3, 5, -5]; row 2: [1, 0, 0] / 0.2 = [5, 0, 0].
        let ce = |l: [f64; 3]| -l[0] + l.iter().map(|x| x.exp()).sum::<f64>().ln();
        let want = (ce([3., 5., -5.]) + ce([5., 0., 0.])) / 2.0;
        let got = f64::try_from(moco_loss(&q, &k, &queue, temp)).unwrap();
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }
}
