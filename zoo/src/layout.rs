//! The checkpoint layouts `mixco zoo import` knows, one table entry each:
//! where a publisher's file keeps its state dict, how the layout is
//! recognised, which sub-network is the encoder (the query / online /
//! student one, never the momentum, target or key copy), how its names map to
//! torchvision's (which mixco's checkpoints use), and what is dropped and why.
//! A new layout is one entry here plus its fixture in
//! `scripts/make_import_fixtures.py`.
//!
//! Names are the file's dotted paths from its root (`state_dict.` +
//! the state dict's own key), with every `module.` segment removed
//! (DataParallel, DistributedDataParallel and EMA wrappers add them).

/// How the names below an encoder's prefix map to torchvision's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Naming {
    /// torchvision's (and timm's, mmcv's) ResNet: `conv1`, `bn1`, `layer1.0.conv1`, ..., `fc`.
    Torchvision,
    /// The official MixCo code's ResNet: stages `block_layers.0` .. `block_layers.3`.
    BlockLayers,
    /// `nn.Sequential(*list(resnet.children())[:-1])` (lightly's examples):
    /// `0` conv1, `1` bn1, `4` .. `7` layer1 .. layer4.
    Sequential,
}

impl Naming {
    pub const ALL: [Naming; 3] = [Naming::Torchvision, Naming::BlockLayers, Naming::Sequential];

    /// The name of the first block's first convolution, which identifies the naming.
    pub fn probe(self) -> &'static str {
        match self {
            Naming::Torchvision => "layer1.0.conv1.weight",
            Naming::BlockLayers => "block_layers.0.0.conv1.weight",
            Naming::Sequential => "4.0.conv1.weight",
        }
    }

    /// Our name for a tensor below the encoder's prefix, or why it is not one.
    pub fn ours(self, rest: &str) -> Result<String, &'static str> {
        match self {
            Naming::Torchvision => match rest.starts_with("fc.") {
                true => Err("classifier (fc)"),
                false => Ok(rest.to_string()),
            },
            Naming::BlockLayers => match rest.strip_prefix("block_layers.") {
                Some(r) => match r.split_once('.') {
                    Some((s @ ("0" | "1" | "2" | "3"), tail)) => Ok(format!("layer{}.{tail}", s.as_bytes()[0] - b'0' + 1)),
                    _ => Err("not one of the four stages"),
                },
                None if rest.starts_with("fc.") => Err("classifier (fc)"),
                None => Ok(rest.to_string()),
            },
            Naming::Sequential => {
                let (i, tail) = rest.split_once('.').ok_or("not a module of the backbone")?;
                match i {
                    "0" => Ok(format!("conv1.{tail}")),
                    "1" => Ok(format!("bn1.{tail}")),
                    "4" | "5" | "6" | "7" => Ok(format!("layer{}.{tail}", i.as_bytes()[0] - b'3')),
                    _ => Err("not a module of the backbone"),
                }
            }
        }
    }
}

/// One known layout.
#[derive(Debug)]
pub struct Layout {
    pub name: &'static str,
    /// Who writes files like this (for messages and docs/ZOO.md).
    pub writers: &'static str,
    /// Where the state dict may sit in the file, tried in order.
    pub roots: &'static [&'static str],
    /// Prefixes below the root that must all be present.
    pub signature: &'static [&'static str],
    /// The encoder's prefix below the root.
    pub encoder: &'static str,
    pub naming: Naming,
    /// A prefix below the root whose `0.` and `2.` linear layers are an
    /// MLP head of mixco's shape (Linear, ReLU, Linear).
    pub head: Option<&'static str>,
    /// Prefixes below the root that are dropped, and why.
    pub drops: &'static [(&'static str, &'static str)],
    /// The method recorded when `--method` is not given, and whether it was MixCo.
    pub method: &'static str,
    pub mixco: bool,
}

const ROOTS: &[&str] = &["state_dict.", "model.", ""];
const MOCO_DROPS: &[(&str, &str)] = &[("encoder_k.", "key (momentum) encoder"), ("queue", "MoCo queue")];

/// Most specific first: the first whose signature is found is taken.
pub const LAYOUTS: &[Layout] = &[
    Layout {
        name: "mixco-official",
        writers: "the MixCo paper's code (Lee-Gihun/MixCo-Mixup-Contrast, moco/pretrain.py)",
        roots: ROOTS,
        signature: &["encoder_q.block_layers.0.0.conv1.weight"],
        encoder: "encoder_q.",
        naming: Naming::BlockLayers,
        head: Some("encoder_q.fc."),
        drops: MOCO_DROPS,
        method: "moco-v2",
        mixco: true,
    },
    Layout {
        name: "moco",
        writers: "MoCo v1/v2 (facebookresearch/moco) and code derived from it",
        roots: ROOTS,
        signature: &["encoder_q.layer1.0.conv1.weight"],
        encoder: "encoder_q.",
        naming: Naming::Torchvision,
        head: Some("encoder_q.fc."),
        drops: MOCO_DROPS,
        method: "moco-v2",
        mixco: false,
    },
    Layout {
        name: "solo-learn",
        writers: "solo-learn (PyTorch Lightning .ckpt)",
        roots: ROOTS,
        signature: &["backbone.layer1.0.conv1.weight", "projector."],
        encoder: "backbone.",
        naming: Naming::Torchvision,
        head: None,
        drops: &[
            ("momentum_backbone.", "momentum backbone"),
            ("momentum_projector.", "momentum projector"),
            ("projector.", "projector (not mixco's Linear-ReLU-Linear head)"),
            ("predictor.", "predictor"),
            ("classifier.", "online linear classifier"),
        ],
        method: "imported",
        mixco: false,
    },
    Layout {
        name: "lightly",
        writers: "lightly (a torchvision ResNet's children as nn.Sequential, Lightning .ckpt)",
        roots: ROOTS,
        signature: &["backbone.4.0.conv1.weight"],
        encoder: "backbone.",
        naming: Naming::Sequential,
        head: None,
        drops: &[
            ("backbone_momentum.", "momentum backbone"),
            ("projection_head_momentum.", "momentum projection head"),
            ("projection_head.", "projection head"),
            ("prediction_head.", "prediction head"),
        ],
        method: "imported",
        mixco: false,
    },
    Layout {
        name: "vissl",
        writers: "VISSL (.torch)",
        roots: &["classy_state_dict.base_model.model."],
        signature: &["trunk._feature_blocks.layer1.0.conv1.weight"],
        encoder: "trunk._feature_blocks.",
        naming: Naming::Torchvision,
        head: None,
        drops: &[("heads.", "heads")],
        method: "imported",
        mixco: false,
    },
    Layout {
        name: "mmselfsup",
        writers: "OpenMMLab mmselfsup / mmpretrain",
        roots: ROOTS,
        signature: &["backbone.layer1.0.conv1.weight"],
        encoder: "backbone.",
        naming: Naming::Torchvision,
        head: None,
        drops: &[
            ("neck.", "neck (projection)"),
            ("head.", "head"),
            ("encoder_k.", "momentum encoder"),
            ("momentum_encoder.", "momentum encoder"),
            ("target_net.", "target (momentum) network"),
            ("queue", "MoCo queue"),
        ],
        method: "imported",
        mixco: false,
    },
    Layout {
        name: "torchvision",
        writers: "torchvision and timm ResNet state dicts",
        roots: ROOTS,
        signature: &["layer1.0.conv1.weight"],
        encoder: "",
        naming: Naming::Torchvision,
        head: None,
        drops: &[],
        method: "imported",
        mixco: false,
    },
];

/// A dotted path without its `module.` segments.
pub fn normalise(path: &str) -> String {
    path.split('.').filter(|s| *s != "module").collect::<Vec<_>>().join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namings_map_to_torchvision_names() {
        assert_eq!(Naming::BlockLayers.ours("block_layers.2.1.downsample.0.weight"), Ok("layer3.1.downsample.0.weight".into()));
        assert_eq!(Naming::BlockLayers.ours("bn1.running_var"), Ok("bn1.running_var".into()));
        assert!(Naming::BlockLayers.ours("block_layers.4.0.conv1.weight").is_err());
        assert_eq!(Naming::Sequential.ours("0.weight"), Ok("conv1.weight".into()));
        assert_eq!(Naming::Sequential.ours("1.num_batches_tracked"), Ok("bn1.num_batches_tracked".into()));
        assert_eq!(Naming::Sequential.ours("7.1.bn2.bias"), Ok("layer4.1.bn2.bias".into()));
        assert!(Naming::Sequential.ours("8.weight").is_err());
        assert_eq!(Naming::Torchvision.ours("fc.weight"), Err("classifier (fc)"));
        assert_eq!(normalise("state_dict.module.encoder_k.module.0.conv1.weight"), "state_dict.encoder_k.0.conv1.weight");
    }

    #[test]
    fn every_layout_is_named_once_and_recognisable() {
        for (i, l) in LAYOUTS.iter().enumerate() {
            assert!(LAYOUTS[..i].iter().all(|m| m.name != l.name), "{} twice", l.name);
            assert!(l.signature.iter().any(|s| s.ends_with(l.naming.probe())), "{}: its signature should find its encoder", l.name);
        }
    }
}
