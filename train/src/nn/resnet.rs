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
        ResNet { stem, max_pool: arch.max_pool, blocks }
    }

    pub fn forward(&self, x: &Tensor, mode: BnMode) -> Tensor {
        let mut x = self.stem.forward(x, mode).relu();
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
