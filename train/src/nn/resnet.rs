use super::{BatchNorm2d, BnMode, Conv2d, Store};
use mixco_model::arch::{Backbone, ConvBn};
use tch::Tensor;

struct ConvBnLayer {
    conv: Conv2d,
    bn: BatchNorm2d,
}

impl ConvBnLayer {
    fn new(store: &mut Store, spec: &ConvBn) -> ConvBnLayer {
        ConvBnLayer { conv: Conv2d::new(store, &spec.conv), bn: BatchNorm2d::new(store, &spec.bn) }
    }
    fn forward(&self, x: &Tensor, mode: BnMode) -> Tensor {
        self.bn.forward(&self.conv.forward(x), mode)
    }
}

struct Block {
    convs: Vec<ConvBnLayer>,
    downsample: Option<ConvBnLayer>,
}

/// A ResNet backbone built from its [`Backbone`] description; `forward`
/// returns the globally average-pooled features `[N, feature_dim]`.
pub struct ResNet {
    /// Run on NHWC-strided activations (same values, other memory order).
    pub channels_last: bool,
    stem: ConvBnLayer,
    max_pool: bool,
    blocks: Vec<Block>,
}

impl ResNet {
    pub fn new(store: &mut Store, arch: &Backbone) -> ResNet {
        let stem = ConvBnLayer::new(store, &arch.stem);
        let blocks = arch
            .blocks
            .iter()
            .map(|b| Block {
                convs: b.convs.iter().map(|c| ConvBnLayer::new(store, c)).collect(),
                downsample: b.downsample.as_ref().map(|d| ConvBnLayer::new(store, d)),
            })
            .collect();
        ResNet { channels_last: true, stem, max_pool: arch.max_pool, blocks }
    }

    pub fn forward(&self, x: &Tensor, mode: BnMode) -> Tensor {
        // Channels-last activations take oneDNN's faster convolution paths
        // (1.3-1.4x per training step on CPU, docs/BENCHMARKS.md).
        let x = if self.channels_last { x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2]) } else { x.shallow_clone() };
        let mut x = self.stem.forward(&x, mode).relu();
        if self.max_pool {
            x = x.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        }
        for b in &self.blocks {
            let shortcut = match &b.downsample {
                Some(d) => d.forward(&x, mode),
                None => x.shallow_clone(),
            };
            let last = b.convs.len() - 1;
            let mut y = x;
            for (i, c) in b.convs.iter().enumerate() {
                y = c.forward(&y, mode);
                if i < last {
                    y = y.relu();
                }
            }
            x = (y + shortcut).relu();
        }
        x.adaptive_avg_pool2d([1, 1]).flatten(1, -1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixco_model::arch::{ArchSpec, Stem};
    use tch::{Device, Kind, Tensor};

    fn max_abs(t: &Tensor) -> f64 {
        f64::try_from(t.abs().max()).unwrap()
    }

    /// Outputs, parameter gradients and running statistics of one
    /// forward/backward pass of a fresh ResNet-10 (seeded) in either layout.
    fn pass(channels_last: bool, mode: BnMode) -> (Tensor, Vec<(String, Tensor, Option<Tensor>)>) {
        let arch = ArchSpec { depth: 10, width: 8, stem: Stem::Cifar }.backbone();
        tch::manual_seed(3);
        let mut store = Store::new(Device::Cpu);
        let mut m = ResNet::new(&mut store, &arch);
        m.channels_last = channels_last;
        tch::manual_seed(5);
        let x = Tensor::randn([16, 3, 32, 32], (Kind::Float, Device::Cpu));
        // A random projection as the loss: a plain sum cancels in BN's backward pass.
        let r = Tensor::randn([16, 64], (Kind::Float, Device::Cpu));
        let y = m.forward(&x, mode);
        if mode != BnMode::Eval {
            (&y * &r).sum(None).backward();
        }
        let entries = store
            .entries
            .iter()
            .map(|e| {
                let g = (e.kind == mixco_model::arch::TensorKind::Param && mode != BnMode::Eval).then(|| e.tensor.grad());
                (e.name.clone(), e.tensor.copy(), g)
            })
            .collect();
        (y, entries)
    }

    /// NHWC activations (with the split-BN copies they need) compute the same
    /// outputs, gradients and running statistics as NCHW.
    #[test]
    fn channels_last_matches_nchw() {
        for mode in [BnMode::Train { splits: 4 }, BnMode::Train { splits: 1 }, BnMode::Eval] {
            let (ya, ea) = pass(false, mode);
            let (yb, eb) = pass(true, mode);
            assert!(max_abs(&(&ya - &yb)) < 1e-5 * max_abs(&ya).max(1.0), "{mode:?}: outputs differ");
            for ((name, ta, ga), (_, tb, gb)) in ea.iter().zip(&eb) {
                let d = max_abs(&(ta - tb));
                assert!(d < 1e-5, "{mode:?} {name}: differs by {d}");
                if let (Some(ga), Some(gb)) = (ga, gb) {
                    let (d, scale) = (max_abs(&(ga - gb)), max_abs(ga).max(1.0));
                    assert!(d < 1e-4 * scale, "{mode:?} {name}: gradient differs by {d} (largest {scale})");
                }
            }
        }
    }
}
