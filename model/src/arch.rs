//! One description of each encoder, read by the trainer (to build tch
//! modules) and by the exporter (to emit ONNX). Tensor names follow
//! torchvision's ResNet (`conv1.weight`, `layer1.0.bn1.running_mean`,
//! `layer2.0.downsample.0.weight`, ...) so a backbone loads into torchvision.

use std::fmt;

crate::names::named_enum! {
    pub enum Stem ("cifar or imagenet") {
        /// 3x3 convolution, stride 1, no max-pool: for 32 and 64 px inputs.
        Cifar = "cifar",
        /// 7x7 convolution, stride 2, then 3x3 max-pool stride 2: torchvision's.
        Imagenet = "imagenet",
    }
}

crate::names::named_enum! {
    /// The ResNet, by depth.
    pub enum Depth ("resnet10, resnet18, resnet34 or resnet50") {
        Resnet10 = "resnet10" | "resnet-10" | "r10",
        Resnet18 = "resnet18" | "resnet-18" | "r18",
        Resnet34 = "resnet34" | "resnet-34" | "r34",
        Resnet50 = "resnet50" | "resnet-50" | "r50",
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockKind {
    Basic,
    /// 1x1 -> 3x3 (strided) -> 1x1 with expansion 4 (torchvision's v1.5).
    Bottleneck,
}

/// What the user picks: depth, base width and stem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArchSpec {
    pub depth: Depth,
    /// Channels of the first stage (torchvision: 64); stages use w, 2w, 4w, 8w.
    pub width: usize,
    pub stem: Stem,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvSpec {
    pub name: String,
    pub in_ch: usize,
    pub out_ch: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl ConvSpec {
    pub fn weight_shape(&self) -> Vec<usize> {
        vec![self.out_ch, self.in_ch, self.kernel, self.kernel]
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BnSpec {
    pub name: String,
    pub channels: usize,
}

/// A convolution followed by batch norm (ReLU is up to the block).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvBn {
    pub conv: ConvSpec,
    pub bn: BnSpec,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockSpec {
    pub name: String,
    pub kind: BlockKind,
    /// Main path: 2 (basic) or 3 (bottleneck) conv-bn pairs; ReLU after each
    /// but the last, which is added to the shortcut before the final ReLU.
    pub convs: Vec<ConvBn>,
    pub downsample: Option<ConvBn>,
}

/// The backbone up to the globally pooled feature vector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backbone {
    pub spec: ArchSpec,
    pub stem: ConvBn,
    pub max_pool: bool,
    pub blocks: Vec<BlockSpec>,
    pub feature_dim: usize,
}

/// Dtype of a stored tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorKind {
    /// Learnt (gets gradients).
    Param,
    /// Batch-norm running statistic (float).
    Buffer,
    /// `num_batches_tracked` (int64 scalar).
    Counter,
}

/// A named tensor of the architecture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub kind: TensorKind,
}

/// A base width the architecture does not take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("width {0} out of range 1..=1024")]
pub struct WidthOutOfRange(pub usize);

pub const BN_EPS: f64 = 1e-5;
pub const BN_MOMENTUM: f64 = 0.1;

impl ArchSpec {
    pub fn name(&self) -> String {
        self.depth.to_string()
    }

    fn layout(&self) -> (BlockKind, [usize; 4]) {
        match self.depth {
            Depth::Resnet10 => (BlockKind::Basic, [1, 1, 1, 1]),
            Depth::Resnet18 => (BlockKind::Basic, [2, 2, 2, 2]),
            Depth::Resnet34 => (BlockKind::Basic, [3, 4, 6, 3]),
            Depth::Resnet50 => (BlockKind::Bottleneck, [3, 4, 6, 3]),
        }
    }

    pub fn validate(&self) -> Result<(), WidthOutOfRange> {
        if self.width == 0 || self.width > 1024 {
            return Err(WidthOutOfRange(self.width));
        }
        Ok(())
    }

    /// The full description. Panics on an invalid spec; call `validate` first
    /// on user input.
    pub fn backbone(&self) -> Backbone {
        self.validate().expect("invalid architecture");
        let conv = |name: String, in_ch, out_ch, kernel, stride, padding| ConvSpec { name, in_ch, out_ch, kernel, stride, padding };
        let conv_bn = |prefix: &str, conv_name: &str, bn_name: &str, in_ch, out_ch, k, s, p| ConvBn {
            conv: conv(format!("{prefix}{conv_name}"), in_ch, out_ch, k, s, p),
            bn: BnSpec { name: format!("{prefix}{bn_name}"), channels: out_ch },
        };
        let w = self.width;
        let stem = match self.stem {
            Stem::Cifar => conv_bn("", "conv1", "bn1", 3, w, 3, 1, 1),
            Stem::Imagenet => conv_bn("", "conv1", "bn1", 3, w, 7, 2, 3),
        };
        let (kind, counts) = self.layout();
        let expansion = if kind == BlockKind::Bottleneck { 4 } else { 1 };
        let mut in_ch = w;
        let mut blocks = Vec::new();
        for (stage, &n) in counts.iter().enumerate() {
            let planes = w << stage;
            for b in 0..n {
                let stride = if stage > 0 && b == 0 { 2 } else { 1 };
                let p = format!("layer{}.{b}.", stage + 1);
                let out_ch = planes * expansion;
                let convs = match kind {
                    BlockKind::Basic => vec![
                        conv_bn(&p, "conv1", "bn1", in_ch, planes, 3, stride, 1),
                        conv_bn(&p, "conv2", "bn2", planes, planes, 3, 1, 1),
                    ],
                    BlockKind::Bottleneck => vec![
                        conv_bn(&p, "conv1", "bn1", in_ch, planes, 1, 1, 0),
                        conv_bn(&p, "conv2", "bn2", planes, planes, 3, stride, 1),
                        conv_bn(&p, "conv3", "bn3", planes, out_ch, 1, 1, 0),
                    ],
                };
                let downsample = (stride != 1 || in_ch != out_ch)
                    .then(|| conv_bn(&p, "downsample.0", "downsample.1", in_ch, out_ch, 1, stride, 0));
                blocks.push(BlockSpec { name: p.trim_end_matches('.').to_string(), kind, convs, downsample });
                in_ch = out_ch;
            }
        }
        Backbone { spec: *self, stem, max_pool: self.stem == Stem::Imagenet, blocks, feature_dim: in_ch }
    }
}

impl fmt::Display for ArchSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (width {}, {:?} stem)", self.depth, self.width, self.stem)
    }
}

impl Backbone {
    /// Every conv-bn pair in forward order.
    pub fn conv_bns(&self) -> impl Iterator<Item = &ConvBn> {
        std::iter::once(&self.stem)
            .chain(self.blocks.iter().flat_map(|b| b.convs.iter().chain(b.downsample.iter())))
    }

    /// All tensors, named and ordered as torchvision's `state_dict()` (less `fc`).
    pub fn tensors(&self) -> Vec<TensorSpec> {
        let mut out = Vec::new();
        let mut push_conv_bn = |cb: &ConvBn| {
            out.push(TensorSpec { name: format!("{}.weight", cb.conv.name), shape: cb.conv.weight_shape(), kind: TensorKind::Param });
            let c = cb.bn.channels;
            for (suffix, kind) in [("weight", TensorKind::Param), ("bias", TensorKind::Param), ("running_mean", TensorKind::Buffer), ("running_var", TensorKind::Buffer)] {
                out.push(TensorSpec { name: format!("{}.{suffix}", cb.bn.name), shape: vec![c], kind });
            }
            out.push(TensorSpec { name: format!("{}.num_batches_tracked", cb.bn.name), shape: vec![], kind: TensorKind::Counter });
        };
        push_conv_bn(&self.stem);
        for b in &self.blocks {
            for cb in &b.convs {
                push_conv_bn(cb);
            }
            if let Some(d) = &b.downsample {
                push_conv_bn(d);
            }
        }
        out
    }
}

/// The projection head: Linear(feat, hidden) -> ReLU -> Linear(hidden, dim),
/// stored under `head.0.*` and `head.2.*` (an `nn.Sequential`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadSpec {
    pub in_dim: usize,
    pub hidden: usize,
    pub out_dim: usize,
}

impl HeadSpec {
    pub fn tensors(&self, prefix: &str) -> Vec<TensorSpec> {
        let t = |n: &str, shape: Vec<usize>| TensorSpec { name: format!("{prefix}{n}"), shape, kind: TensorKind::Param };
        vec![
            t("0.weight", vec![self.hidden, self.in_dim]),
            t("0.bias", vec![self.hidden]),
            t("2.weight", vec![self.out_dim, self.hidden]),
            t("2.bias", vec![self.out_dim]),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resnet18_names_equal_torchvision() {
        // torchvision.models.resnet18().state_dict().keys(), less fc.*
        let want = include_str!("../tests/fixtures/torchvision_resnet18_keys.txt");
        let want: Vec<&str> = want.lines().filter(|l| !l.starts_with("fc.")).collect();
        let arch = ArchSpec { depth: Depth::Resnet18, width: 64, stem: Stem::Imagenet }.backbone();
        let got: Vec<String> = arch.tensors().into_iter().map(|t| t.name).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn shapes_and_feature_dims() {
        let r18 = ArchSpec { depth: Depth::Resnet18, width: 64, stem: Stem::Imagenet }.backbone();
        let t = r18.tensors();
        assert_eq!(t[0].shape, vec![64, 3, 7, 7]);
        let ds = t.iter().find(|t| t.name == "layer4.0.downsample.0.weight").unwrap();
        assert_eq!(ds.shape, vec![512, 256, 1, 1]);
        assert_eq!(r18.feature_dim, 512);
        // torchvision resnet18 has 11,176,512 parameters without fc.
        let params: usize = t.iter().filter(|t| t.kind == TensorKind::Param).map(|t| t.shape.iter().product::<usize>()).sum();
        assert_eq!(params, 11_176_512);

        let r50 = ArchSpec { depth: Depth::Resnet50, width: 64, stem: Stem::Imagenet }.backbone();
        assert_eq!(r50.feature_dim, 2048);
        let params: usize = r50.tensors().iter().filter(|t| t.kind == TensorKind::Param).map(|t| t.shape.iter().product::<usize>()).sum();
        // torchvision resnet50: 25,557,032 in all, fc = 2048*1000 + 1000.
        assert_eq!(params, 25_557_032 - 2_049_000);
        assert_eq!(r50.blocks[0].downsample.as_ref().unwrap().conv.weight_shape(), vec![256, 64, 1, 1]);
        // v1.5: the stride sits on the 3x3 convolution.
        assert_eq!(r50.blocks[3].convs[1].conv.stride, 2);

        let r10 = ArchSpec { depth: Depth::Resnet10, width: 16, stem: Stem::Cifar }.backbone();
        assert_eq!((r10.blocks.len(), r10.feature_dim, r10.stem.conv.kernel, r10.max_pool), (4, 128, 3, false));
        let r34 = ArchSpec { depth: Depth::Resnet34, width: 64, stem: Stem::Imagenet }.backbone();
        // torchvision resnet34: 21,797,672 in all; fc = 512*1000 + 1000.
        let params: usize = r34.tensors().iter().filter(|t| t.kind == TensorKind::Param).map(|t| t.shape.iter().product::<usize>()).sum();
        assert_eq!(params, 21_797_672 - 513_000);
    }

    #[test]
    fn widths_are_validated() {
        assert!(ArchSpec { depth: Depth::Resnet18, width: 0, stem: Stem::Cifar }.validate().is_err());
        assert!(ArchSpec { depth: Depth::Resnet18, width: 64, stem: Stem::Cifar }.validate().is_ok());
    }
}
