//! Data-parallel training on c10d (Gloo, 2 ranks as 2 threads on 127.0.0.1):
//! the ranks stay bit-identical after every step, and they take the steps a
//! single process takes with the global batch whose batch norm is computed in
//! the same groups (the global-batch semantics), for MoCo-v2 + MixCo and
//! SimCLR + MixCo.

use mixco_data::synthetic::{generate, SyntheticConfig};
use mixco_data::Splits;
use mixco_train::dist::{Dist, Launch};
use mixco_train::{Method, TrainConfig, Trainer};
use std::time::Duration;
use tch::{Device, Tensor};

fn data() -> Splits {
    generate(&SyntheticConfig { train: 64, test: 32, ..Default::default() })
}

fn tiny(method: Method) -> TrainConfig {
    TrainConfig {
        method,
        mixco: true,
        arch: mixco_model::Depth::Resnet10,
        width: 4,
        head_dim: 8,
        epochs: 1,
        batch_size: 16,
        bn_splits: 4,
        simclr_bn_splits: 2,
        queue_size: 32,
        knn_every: 0,
        mix_temperature: Some(0.2),
        ..Default::default()
    }
}

const STEPS: usize = 3;

/// Every float tensor of the state (the checkpoint's: weights, buffers,
/// queue, optimiser), in a fixed order, on the host.
fn state(t: &Trainer) -> Vec<(String, Tensor)> {
    t.checkpoint().tensors.into_iter().filter_map(|(name, h)| h.as_f32().map(|d| (name, Tensor::from_slice(d)))).collect()
}

/// A checksum of each step's state, bit-exact: the sum of each tensor's bits.
fn checksum(t: &Trainer) -> Vec<i64> {
    state(t).iter().map(|(_, v)| {
        let bits = Vec::<f32>::try_from(v).unwrap().iter().fold(0i64, |s, x| s.wrapping_mul(31).wrapping_add(x.to_bits() as i64));
        bits
    }).collect()
}

/// Two ranks train STEPS steps; returns rank 0's trainer state and each rank's checksums per step.
fn two_ranks(cfg: &TrainConfig) -> (Vec<(String, Tensor)>, Vec<Vec<Vec<i64>>>) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let ranks: Vec<_> = (0..2)
        .map(|rank| {
            // Made here, one after the other: libtorch's random generator is
            // the process's (ranks are processes outside this test).
            let mut t = Trainer::new(cfg.clone(), &data(), Device::Cpu).unwrap();
            std::thread::spawn(move || {
                let launch = Launch { rank, world: 2, local_rank: rank, addr: "127.0.0.1".into(), port, agent_store: false };
                t.join(Dist::join(&launch, Duration::from_secs(60)).unwrap()).unwrap();
                let sums: Vec<Vec<i64>> = (0..STEPS).map(|_| {
                    t.train_step().unwrap();
                    checksum(&t)
                }).collect();
                (state(&t), sums)
            })
        })
        .collect();
    let mut out: Vec<_> = ranks.into_iter().map(|h| h.join().unwrap()).collect();
    let sums = out.iter().map(|o| o.1.clone()).collect();
    (out.remove(0).0, sums)
}

fn one_process(cfg: &TrainConfig) -> Vec<(String, Tensor)> {
    let mut t = Trainer::new(cfg.clone(), &data(), Device::Cpu).unwrap();
    for _ in 0..STEPS {
        t.train_step().unwrap();
    }
    state(&t)
}

/// The largest difference between the two states relative to the tensor's scale.
fn assert_close(a: &[(String, Tensor)], b: &[(String, Tensor)], what: &str) {
    assert_eq!(a.iter().map(|x| &x.0).collect::<Vec<_>>(), b.iter().map(|x| &x.0).collect::<Vec<_>>());
    let mut worst = (0.0, String::new());
    for ((name, x), (_, y)) in a.iter().zip(b) {
        let scale = f64::try_from(x.abs().max()).unwrap().max(1e-3);
        let d = f64::try_from((x - y).abs().max()).unwrap() / scale;
        if d > worst.0 {
            worst = (d, name.clone());
        }
    }
    assert!(worst.0 < 1e-3, "{what}: {} differs by {:.2e} of its scale", worst.1, worst.0);
    eprintln!("{what}: largest relative difference {:.2e} ({})", worst.0, worst.1);
}

/// One test at a time: each draws initial weights from the process's generator.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn equivalent(method: Method) {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    tch::set_num_threads(1);
    let cfg = tiny(method);
    let (dist, sums) = two_ranks(&cfg);
    for step in 0..STEPS {
        assert_eq!(sums[0][step], sums[1][step], "{method}: the ranks' states differ after step {}", step + 1);
    }
    let single = one_process(&cfg);
    assert_close(&dist, &single, &format!("{method} + MixCo, 2 ranks vs 1 process"));
    // The test can fail: another BN grouping is another computation.
    let other = one_process(&TrainConfig { bn_splits: 2, simclr_bn_splits: 1, ..cfg });
    let d: f64 = dist.iter().zip(&other).filter(|(a, _)| a.0.contains("running_mean")).map(|(a, b)| f64::try_from((&a.1 - &b.1).abs().max()).unwrap()).fold(0.0, f64::max);
    assert!(d > 1e-4, "{method}: other BN groups give other statistics ({d})");
}

#[test]
fn moco_mixco_on_two_ranks_is_the_global_batch_on_one() {
    equivalent(Method::MocoV2);
}

#[test]
fn simclr_mixco_on_two_ranks_is_the_global_batch_on_one() {
    equivalent(Method::Simclr);
}
