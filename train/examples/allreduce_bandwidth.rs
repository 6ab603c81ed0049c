//! Gloo's all-reduce time on this machine for ResNet-18's and ResNet-50's
//! gradient sizes (MoCo-v2 heads), 2 ranks as 2 threads on 127.0.0.1, and the
//! all-gather of a 256-image CIFAR key batch (docs/DISTRIBUTED.md).
//!   cargo run --release -p mixco-train --example allreduce_bandwidth

use mixco_train::dist::{Dist, Launch};
use std::time::{Duration, Instant};
use tch::{Kind, Tensor};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    tch::set_num_threads(1);
    let port = mixco_train::dist::free_port().unwrap();
    let ranks: Vec<_> = (0..2)
        .map(|rank| {
            std::thread::spawn(move || {
                let launch = Launch { rank, world: 2, local_rank: rank, addr: "127.0.0.1".into(), port, agent_store: false, attempt: 0 };
                let d = Dist::join(&launch, Duration::from_secs(60)).unwrap();
                let mut lines = Vec::new();
                for (what, floats) in [("ResNet-18 + head gradients", 11_497_152i64), ("ResNet-50 + head gradients", 27_966_656)] {
                    let t = Tensor::ones([floats], (Kind::Float, tch::Device::Cpu));
                    let ms = median((0..7).map(|_| {
                        let t0 = Instant::now();
                        d.all_reduce_sum(&t).unwrap();
                        t0.elapsed().as_secs_f64() * 1e3
                    }).collect());
                    let mb = floats as f64 * 4.0 / 1e6;
                    lines.push(format!("all-reduce {what}: {mb:.1} MB in {ms:.1} ms ({:.2} GB/s of the tensor)", mb / ms));
                }
                let images = Tensor::ones([128, 3, 32, 32], (Kind::Float, tch::Device::Cpu));
                let ms = median((0..7).map(|_| {
                    let t0 = Instant::now();
                    let _ = d.all_gather(&images).unwrap();
                    t0.elapsed().as_secs_f64() * 1e3
                }).collect());
                lines.push(format!("all-gather of 2 x 128 CIFAR key images (3.1 MB in all): {ms:.1} ms"));
                lines
            })
        })
        .collect();
    let lines: Vec<Vec<String>> = ranks.into_iter().map(|h| h.join().unwrap()).collect();
    for l in &lines[0] {
        println!("{l}");
    }
}
