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
    /// Convolutions and activations in bfloat16 (parameters, batch-norm
    /// statistics and the pooled output stay float32): mixed precision.
    pub bf16: bool,
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
        ResNet { channels_last: true, bf16: false, stem, max_pool: arch.max_pool, blocks }
    }

    pub fn forward(&self, x: &Tensor, mode: BnMode) -> Tensor {
        // Channels-last activations take oneDNN's faster convolution paths
        // (1.3-1.4x per training step on CPU, docs/BENCHMARKS.md).
        let x = if self.bf16 { x.to_kind(tch::Kind::BFloat16) } else { x.shallow_clone() };
        let x = if self.channels_last { x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2]) } else { x };
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
        x.adaptive_avg_pool2d([1, 1]).flatten(1, -1).to_kind(tch::Kind::Float)
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

    type Pass = (Tensor, Vec<(String, Tensor, Option<Tensor>)>);

    /// Outputs, parameter gradients and running statistics of one
    /// forward/backward pass of a ResNet-10 holding `init`'s weights. (Tests
    /// run in parallel and share libtorch's generator: seeding is not enough.)
    fn pass_with(init: &Store, x: &Tensor, r: &Tensor, channels_last: bool, bf16: bool, mode: BnMode) -> Pass {
        let arch = ArchSpec { depth: mixco_model::Depth::Resnet10, width: 8, stem: Stem::Cifar }.backbone();
        let mut store = Store::new(Device::Cpu);
        let mut m = ResNet::new(&mut store, &arch);
        store.copy_from(init);
        m.channels_last = channels_last;
        m.bf16 = bf16;
        let y = m.forward(x, mode);
        if mode != BnMode::Eval {
            (&y * r).sum(None).backward();
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

    /// Initial weights, an input batch and a random projection as the loss
    /// (a plain sum cancels in BN's backward pass).
    fn setup() -> (Store, Tensor, Tensor) {
        let arch = ArchSpec { depth: mixco_model::Depth::Resnet10, width: 8, stem: Stem::Cifar }.backbone();
        let mut store = Store::new(Device::Cpu);
        let _ = ResNet::new(&mut store, &arch);
        let x = Tensor::randn([16, 3, 32, 32], (Kind::Float, Device::Cpu));
        let r = Tensor::randn([16, 64], (Kind::Float, Device::Cpu));
        (store, x, r)
    }

    /// NHWC activations (with the split-BN copies they need) compute the same
    /// outputs, gradients and running statistics as NCHW (to float32 rounding,
    /// which batch norm's backward pass amplifies to ~1e-4 of the largest).
    #[test]
    fn channels_last_matches_nchw() {
        let (init, x, r) = setup();
        for mode in [BnMode::Train { splits: 4 }, BnMode::Train { splits: 1 }, BnMode::Eval] {
            let (ya, ea) = pass_with(&init, &x, &r, false, false, mode);
            let (yb, eb) = pass_with(&init, &x, &r, true, false, mode);
            assert!(max_abs(&(&ya - &yb)) < 1e-5 * max_abs(&ya).max(1.0), "{mode:?}: outputs differ");
            for ((name, ta, _), (_, tb, _)) in ea.iter().zip(&eb) {
                let d = max_abs(&(ta - tb));
                assert!(d < 1e-5, "{mode:?} {name}: differs by {d}");
            }
            if mode != BnMode::Eval {
                let cos = gradient_cosine(&ea, &eb);
                // Usually 1 - 1e-6; a few random nets in a hundred reach 1 - 1e-4
                // (0.99987 seen in CI); a layout mistake gives far less.
                assert!(cos > 0.999, "{mode:?}: gradients' cosine {cos}");
            }
        }
    }

    /// Cosine between all parameter gradients of two passes, as one vector:
    /// per-tensor comparisons are at the mercy of batch norm's backward pass,
    /// which amplifies float32 rounding a thousandfold for some random nets.
    fn gradient_cosine(a: &[(String, Tensor, Option<Tensor>)], b: &[(String, Tensor, Option<Tensor>)]) -> f64 {
        let flat = |e: &[(String, Tensor, Option<Tensor>)]| Tensor::cat(&e.iter().filter_map(|(_, _, g)| g.as_ref().map(|g| g.flatten(0, -1))).collect::<Vec<_>>(), 0);
        let (ga, gb) = (flat(a), flat(b));
        assert_eq!(gb.kind(), Kind::Float, "float32 gradients");
        let (ga, gb) = (ga.to_kind(Kind::Double), gb.to_kind(Kind::Double));
        f64::try_from((&ga * &gb).sum(None) / (ga.norm() * gb.norm())).unwrap()
    }

    /// Mixed precision keeps parameters, statistics and outputs in float32
    /// and stays within bfloat16's rounding of the float32 pass: outputs
    /// within a few percent, gradients pointing the same way.
    #[test]
    fn bf16_tracks_float32() {
        let (init, x, r) = setup();
        for mode in [BnMode::Train { splits: 4 }, BnMode::Train { splits: 1 }] {
            let (ya, ea) = pass_with(&init, &x, &r, true, false, mode);
            let (yb, eb) = pass_with(&init, &x, &r, true, true, mode);
            assert_eq!(yb.kind(), Kind::Float);
            let rel = max_abs(&(&ya - &yb)) / max_abs(&ya);
            assert!(rel < 0.05, "{mode:?}: outputs differ by {rel} (relative)");
            for ((name, ta, _), (_, tb, _)) in ea.iter().zip(&eb) {
                assert_eq!(ta.kind(), tb.kind(), "{name} keeps its dtype");
            }
            let cos = gradient_cosine(&ea, &eb);
            assert!(cos > 0.95, "{mode:?}: gradients' cosine {cos}");
        }
    }
}
