use tch::{Device, Kind, Tensor};

/// Test accuracy of a linear classifier trained on frozen features: softmax
/// regression on standardised features (train-split statistics), full-batch
/// gradient descent with L2 (1e-4), 300 steps. A quick, deterministic monitor
/// for the trainer; `mixco eval` runs the thorough probe.
pub fn quick_probe(train: &Tensor, train_y: &Tensor, test: &Tensor, test_y: &Tensor, classes: i64) -> f64 {
    let train = train.to_kind(Kind::Float);
    let mean = train.mean_dim(0, true, None);
    let std = train.std_dim(0, true, true) + 1e-6;
    let a = (&train - &mean) / &std;
    let b = (test.to_kind(Kind::Float) - &mean) / &std;
    let device: Device = a.device();
    let w = Tensor::zeros([a.size()[1], classes], (Kind::Float, device)).set_requires_grad(true);
    let bias = Tensor::zeros([classes], (Kind::Float, device)).set_requires_grad(true);
    for _ in 0..300 {
        let loss = (a.matmul(&w) + &bias).cross_entropy_for_logits(train_y) + w.square().sum(Kind::Float) * 1e-4;
        let grads = Tensor::run_backward(&[loss], &[&w, &bias], false, false);
        tch::no_grad(|| {
            let _ = w.shallow_clone().g_sub_(&(&grads[0] * 0.5));
            let _ = bias.shallow_clone().g_sub_(&(&grads[1] * 0.5));
        });
    }
    tch::no_grad(|| {
        let pred = (b.matmul(&w) + &bias).argmax(1, false);
        f64::try_from(pred.eq_tensor(test_y).to_kind(Kind::Float).mean(Kind::Float)).unwrap()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separable_and_random_labels() {
        tch::manual_seed(0);
        // Three classes at distinct means: near 100%.
        let y = Tensor::arange(600, (Kind::Int64, Device::Cpu)).remainder(3);
        let centers = Tensor::from_slice(&[3f32, 0., 0., 0., 3., 0., 0., 0., 3.]).view([3, 3]);
        let x = centers.index_select(0, &y) + Tensor::randn([600, 3], (Kind::Float, Device::Cpu)) * 0.5;
        let acc = quick_probe(&x.narrow(0, 0, 400), &y.narrow(0, 0, 400), &x.narrow(0, 400, 200), &y.narrow(0, 400, 200), 3);
        assert!(acc > 0.97, "{acc}");
        // Random labels: near chance (1/3).
        let r = Tensor::randint(3, [600], (Kind::Int64, Device::Cpu));
        let acc = quick_probe(&x.narrow(0, 0, 400), &r.narrow(0, 0, 400), &x.narrow(0, 400, 200), &r.narrow(0, 400, 200), 3);
        assert!((0.2..0.47).contains(&acc), "{acc}");
    }
}
