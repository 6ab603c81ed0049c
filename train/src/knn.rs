use tch::{Kind, Tensor};

/// Weighted kNN accuracy (the InstDisc/MoCo monitor): each test feature votes
/// with its k most cosine-similar training features, weight exp(sim / t).
/// Features must be L2-normalised; labels are int64.
pub fn knn_accuracy(train: &Tensor, train_y: &Tensor, test: &Tensor, test_y: &Tensor, classes: i64, k: i64, t: f64) -> f64 {
    let k = k.min(train.size()[0]);
    let m = test.size()[0];
    let mut correct = 0i64;
    let chunk = 512;
    let mut start = 0;
    while start < m {
        let len = chunk.min(m - start);
        let q = test.narrow(0, start, len);
        let sim = q.matmul(&train.transpose(0, 1));
        let (w, idx) = sim.topk(k, 1, true, true);
        let labels = train_y.index_select(0, &idx.view(-1)).view([len, k]);
        let votes = Tensor::zeros([len, classes], (Kind::Float, train.device()))
            .scatter_add(1, &labels, &(w / t).exp());
        let pred = votes.argmax(1, false);
        correct += i64::try_from(pred.eq_tensor(&test_y.narrow(0, start, len)).sum(Kind::Int64)).unwrap();
        start += len;
    }
    correct as f64 / m.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_made_points() {
        // Class 0 around +x, class 1 around +y.
        let train = Tensor::from_slice(&[1f32, 0., 0.96, 0.28, 0., 1., 0.28, 0.96]).view([4, 2]);
        let train_y = Tensor::from_slice(&[0i64, 0, 1, 1]);
        let test = Tensor::from_slice(&[0.8f32, 0.6, 0.6, 0.8, 0.96, -0.28]).view([3, 2]);
        let test_y = Tensor::from_slice(&[0i64, 1, 1]);
        // k = 1: (0.8, .6) nearest (0.96, .28) -> 0 ✓; (.6, .8) -> (.28, .96) -> 1 ✓; (.96, -.28) -> (1, 0) -> 0 ✗.
        let acc = knn_accuracy(&train, &train_y, &test, &test_y, 2, 1, 0.1);
        assert!((acc - 2.0 / 3.0).abs() < 1e-9);
        // k = 4 with a tiny temperature: the closest still dominates.
        let acc = knn_accuracy(&train, &train_y, &test, &test_y, 2, 4, 0.01);
        assert!((acc - 2.0 / 3.0).abs() < 1e-9);
    }
}
