//! `mixco zoo import`: PyTorch checkpoints in the layouts of [`crate::layout`]
//! (MoCo and the official MixCo code, solo-learn, lightly, mmselfsup, VISSL,
//! torchvision state dicts), in either of torch.save's formats, into mixco
//! checkpoints, with the architecture inferred from the tensors.
//!
//! The rule for objects the tensors do not need: any class or function the
//! pickle names outside the few it needs is never imported, constructed or
//! called; it is read as an opaque placeholder. Where such objects lie
//! outside the encoder (hyper-parameters, optimiser or scheduler state,
//! callbacks), they are skipped and named. Where the encoder's tensors can be
//! reached only through one, the file is refused.

use crate::layout::{normalise, Layout, Naming, LAYOUTS};
use crate::pickle::{Opaque, TensorRef, Value};
use crate::torch_file::{self, TorchFile};
use crate::Error;
use crate::ReadError;
use mixco_model::arch::{ArchSpec, Depth, HeadSpec, Stem};
use mixco_model::checkpoint::{Checkpoint, HostTensor, ModelConfig};
use std::collections::BTreeMap;
use std::path::Path;

/// Overrides for what cannot be read off the tensors.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    pub arch: Option<Depth>,
    pub width: Option<usize>,
    pub stem: Option<Stem>,
    pub input_size: Option<usize>,
    pub mean: Option<[f32; 3]>,
    pub std: Option<[f32; 3]>,
    pub method: Option<String>,
    pub mixco: bool,
    /// The encoder's dotted prefix in the file (e.g. `state_dict.encoder_k.`),
    /// instead of the one its layout names.
    pub prefix: Option<String>,
}

pub struct Imported {
    pub checkpoint: Checkpoint,
    pub config: ModelConfig,
    /// The layout recognised (a name of [`LAYOUTS`]), or `prefix` for `--prefix`.
    pub layout: String,
    /// The encoder's prefix in the file (`module.` segments removed).
    pub prefix: String,
    /// torch.save's format: `zip` or `legacy`.
    pub format: &'static str,
    /// (source key, our key)
    pub mapped: Vec<(String, String)>,
    /// (source key, why)
    pub dropped: Vec<(String, String)>,
    /// Objects of classes the pickle names that were not read: (where, class).
    pub skipped: Vec<(String, String)>,
}

pub const CIFAR_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
pub const CIFAR_STD: [f32; 3] = [0.2470, 0.2435, 0.2616];
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

pub fn import_file(path: &Path, opts: &ImportOptions) -> Result<Imported, Error> {
    let bytes = mixco_data::fsutil::read_file(path)?;
    import_bytes(path, &bytes, opts)
}

pub fn import_bytes(path: &Path, bytes: &[u8], opts: &ImportOptions) -> Result<Imported, Error> {
    let fail = |problem: ReadError| Error::Import { path: path.into(), problem };
    let (file, format) = torch_file::read_with_format(bytes).map_err(fail)?;
    let leaves = flatten(&file.root).map_err(fail)?;
    let choice = choose(&leaves, opts.prefix.as_deref()).map_err(fail)?;
    let (mut ours, mut mapped, mut dropped) = (BTreeMap::new(), Vec::new(), Vec::new());
    for leaf in &leaves {
        match (&leaf.value, choice.place(&leaf.name)) {
            (Leaf::Tensor(t), Ok(name)) => {
                let tensor = file_tensor(&file, t, &leaf.path).map_err(fail)?;
                mapped.push((leaf.path.clone(), name.clone()));
                ours.insert(name, tensor);
            }
            (Leaf::Tensor(_) | Leaf::Other, Err(why)) => dropped.push((leaf.path.clone(), why)),
            (Leaf::Other, Ok(_)) => dropped.push((leaf.path.clone(), "not a tensor".into())),
            (Leaf::Opaque(_), _) => {}
        }
    }
    let mut dropped = group_outside(dropped, &choice.root);
    let skipped = leaves.iter().filter_map(|l| match &l.value {
        Leaf::Opaque(o) => Some((l.path.clone(), o.class.clone())),
        _ => None,
    });
    let skipped: Vec<(String, String)> = skipped.collect();
    let arch = infer_arch(&ours, opts).map_err(fail)?;
    let head = head_of(&ours, arch.backbone().feature_dim);
    drop_extra(&mut ours, &arch, &head, &mut mapped, &mut dropped);
    let config = config_for(arch, head, &choice, opts);
    let mut specs = config.arch.backbone().tensors();
    if head.out_dim > 0 {
        specs.extend(head.tensors("head."));
    }
    let mut checkpoint = Checkpoint { metadata: BTreeMap::new(), tensors: ours };
    checkpoint.check_tensors(path, &specs)?;
    config.to_metadata(&mut checkpoint.metadata);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let meta = [
        ("imported_from", name),
        ("imported_layout", choice.layout.clone()),
        ("imported_prefix", choice.encoder.clone()),
        ("imported_format", format.to_string()),
        ("source_sha256", mixco_data::fsutil::sha256_hex(bytes)),
        ("mixco_version", env!("CARGO_PKG_VERSION").to_string()),
    ];
    checkpoint.metadata.extend(meta.into_iter().map(|(k, v)| (k.to_string(), v)));
    Ok(Imported { checkpoint, config, layout: choice.layout, prefix: choice.encoder, format, mapped, dropped, skipped })
}

/// What a leaf of the checkpoint's tree holds.
enum Leaf<'a> {
    Tensor(&'a TensorRef),
    Opaque(&'a Opaque),
    Other,
}

/// A leaf by its dotted path from the root, as written (`path`) and
/// without `module.` segments (`name`).
struct Named<'a> {
    path: String,
    name: String,
    value: Leaf<'a>,
}

/// Every leaf below dicts, lists and tuples, in the file's order.
fn flatten(root: &Value) -> Result<Vec<Named<'_>>, ReadError> {
    fn walk<'a>(v: &'a Value, path: String, out: &mut Vec<Named<'a>>) {
        let join = |k: &str| if path.is_empty() { k.to_string() } else { format!("{path}.{k}") };
        match v {
            Value::Dict(items) => {
                for (k, v) in items {
                    let key = match k {
                        Value::Str(s) => s.clone(),
                        Value::Int(i) => i.to_string(),
                        other => format!("{other:?}"),
                    };
                    walk(v, join(&key), out);
                }
            }
            Value::List(items) | Value::Tuple(items) => items.iter().enumerate().for_each(|(i, v)| walk(v, join(&i.to_string()), out)),
            _ => {
                let value = match v {
                    Value::Tensor(t) => Leaf::Tensor(t),
                    Value::Opaque(o) => Leaf::Opaque(o),
                    _ => Leaf::Other,
                };
                out.push(Named { name: normalise(&path), path, value });
            }
        }
    }
    let mut out = Vec::new();
    walk(root, String::new(), &mut out);
    if !out.iter().any(|l| matches!(l.value, Leaf::Tensor(_)) || matches!(&l.value, Leaf::Opaque(o) if o.tensors > 0)) {
        return Err("no tensors found (expected a state dict, or a checkpoint holding one)".into());
    }
    Ok(out)
}

fn file_tensor(file: &TorchFile, t: &TensorRef, path: &str) -> Result<HostTensor, ReadError> {
    file.tensor(t).map_err(|e| ReadError(format!("tensor `{path}`: {e}")))
}

/// Where the encoder is in one file: a layout of [`LAYOUTS`] at one of its
/// roots, or the user's `--prefix`.
struct Choice {
    layout: String,
    root: String,
    encoder: String,
    naming: Naming,
    head: Option<String>,
    drops: Vec<(String, &'static str)>,
    method: &'static str,
    mixco: bool,
}

impl Choice {
    fn at(layout: &Layout, root: &str) -> Choice {
        Choice {
            layout: layout.name.to_string(),
            root: root.to_string(),
            encoder: format!("{root}{}", layout.encoder),
            naming: layout.naming,
            head: layout.head.map(|h| format!("{root}{h}")),
            drops: layout.drops.iter().map(|(p, why)| (format!("{root}{p}"), *why)).collect(),
            method: layout.method,
            mixco: layout.mixco,
        }
    }

    /// Our name for the leaf at `name`, or why it is left out.
    fn place(&self, name: &str) -> Result<String, String> {
        if let Some(h) = &self.head {
            if let Some(rest) = name.strip_prefix(h.as_str()) {
                return match rest.split_once('.') {
                    Some(("0" | "2", _)) => Ok(format!("head.{rest}")),
                    // MoCo v1 projects with one linear layer (`fc.weight`): the backbone alone is imported.
                    _ => Err("a one-layer (MoCo v1) projection, not an MLP head".into()),
                };
            }
        }
        if let Some(rest) = name.strip_prefix(self.encoder.as_str()) {
            return self.naming.ours(rest).map_err(String::from);
        }
        if let Some((_, why)) = self.drops.iter().find(|(p, _)| name.starts_with(p.as_str())) {
            return Err(why.to_string());
        }
        match name.starts_with(&self.root) {
            true => Err("not part of the encoder".into()),
            false => Err("outside the state dict".into()),
        }
    }
}

/// The layout of a file's leaves, or an error naming what was found.
fn choose(leaves: &[Named], prefix: Option<&str>) -> Result<Choice, ReadError> {
    let has = |p: &str| leaves.iter().any(|l| l.name.starts_with(p));
    let choice = match prefix {
        Some(p) => by_prefix(p, &has)?,
        None => LAYOUTS
            .iter()
            .flat_map(|l| l.roots.iter().map(move |r| (l, *r)))
            .find(|(l, r)| l.signature.iter().all(|s| has(&format!("{r}{s}"))))
            .map(|(l, r)| Choice::at(l, r))
            .ok_or_else(|| unknown_layout(leaves))?,
    };
    // The encoder's tensors must not hide inside an object that was not read.
    let hidden = leaves.iter().find(|l| match &l.value {
        Leaf::Opaque(o) => o.tensors > 0 && (l.name.starts_with(&choice.encoder) || choice.encoder.starts_with(&format!("{}.", l.name))),
        _ => false,
    });
    match hidden {
        Some(l) => Err(refused(l)),
        None => Ok(choice),
    }
}

/// `--prefix P`: the encoder under P, in whichever naming is found there.
fn by_prefix(p: &str, has: &dyn Fn(&str) -> bool) -> Result<Choice, ReadError> {
    let mut encoder = normalise(p.trim_end_matches('.'));
    if !encoder.is_empty() {
        encoder.push('.');
    }
    let naming = Naming::ALL.into_iter().find(|n| has(&format!("{encoder}{}", n.probe()))).ok_or_else(|| {
        format!("no ResNet under --prefix `{encoder}` (looked for `{encoder}layer1.0.conv1.weight` and the other namings' first convolution)")
    })?;
    Ok(Choice {
        layout: "prefix".into(),
        root: String::new(),
        head: Some(format!("{encoder}fc.")),
        encoder,
        naming,
        drops: Vec::new(),
        method: "imported",
        mixco: false,
    })
}

fn refused(l: &Named) -> ReadError {
    let Leaf::Opaque(o) = &l.value else { unreachable!("only opaque leaves hide tensors") };
    let at = if l.path.is_empty() { "in the file".to_string() } else { format!("at `{}`", l.path) };
    format!(
        "refused: the weights {at} can be reached only through `{}`, which torch.load would import and call; \
         mixco reads no such objects (save the state dict itself: torch.save(model.state_dict(), f))",
        o.class
    )
    .into()
}

/// No layout fits: refuse if tensors hide in unread objects, else list
/// where the tensors are so that `--prefix` can name the encoder.
fn unknown_layout(leaves: &[Named]) -> ReadError {
    if let Some(l) = leaves.iter().find(|l| matches!(&l.value, Leaf::Opaque(o) if o.tensors > 0)) {
        return refused(l);
    }
    let mut seen: Vec<(String, usize)> = Vec::new();
    for l in leaves.iter().filter(|l| matches!(l.value, Leaf::Tensor(_))) {
        let top: Vec<&str> = l.name.split('.').take(2).collect();
        let top = if l.name.split('.').count() > 2 { format!("{}.", top.join(".")) } else { l.name.clone() };
        match seen.iter_mut().find(|(p, _)| *p == top) {
            Some((_, n)) => *n += 1,
            None => seen.push((top, 1)),
        }
    }
    let found: Vec<String> = seen.iter().take(12).map(|(p, n)| format!("{p} ({n})")).collect();
    let known: Vec<&str> = LAYOUTS.iter().map(|l| l.name).collect();
    format!(
        "no known layout ({}) fits; tensors found under: {}{}; name the encoder with --prefix (e.g. --prefix {})",
        known.join(", "),
        found.join(", "),
        if seen.len() > 12 { format!(", ... ({} prefixes)", seen.len()) } else { String::new() },
        seen.first().map(|(p, _)| p.as_str()).unwrap_or("state_dict.backbone.")
    )
    .into()
}

/// Leaves outside the state dict are dropped as one entry per top-level key
/// (an optimiser's hundreds of buffers are one line).
fn group_outside(dropped: Vec<(String, String)>, root: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (path, why) in dropped {
        if why != "outside the state dict" || root.is_empty() {
            out.push((path, why));
            continue;
        }
        let top = path.split('.').next().unwrap_or_default().to_string();
        if !out.iter().any(|(p, w)| *p == top && *w == why) {
            out.push((top, why));
        }
    }
    out
}

/// The MLP head's sizes, if the tensors hold one (out_dim 0: none).
fn head_of(ours: &BTreeMap<String, HostTensor>, feat: usize) -> HeadSpec {
    match (ours.get("head.0.weight"), ours.get("head.2.weight")) {
        (Some(a), Some(b)) if a.shape.len() == 2 && b.shape.len() == 2 => HeadSpec { in_dim: feat, hidden: a.shape[0], out_dim: b.shape[0] },
        _ => HeadSpec { in_dim: feat, hidden: 0, out_dim: 0 },
    }
}

/// Tensors that are neither backbone nor head would be silently ignored
/// downstream: drop them here, visibly.
fn drop_extra(ours: &mut BTreeMap<String, HostTensor>, arch: &ArchSpec, head: &HeadSpec, mapped: &mut Vec<(String, String)>, dropped: &mut Vec<(String, String)>) {
    let known: std::collections::HashSet<String> = arch.backbone().tensors().into_iter().map(|t| t.name).collect();
    let extra: Vec<String> = ours.keys().filter(|k| !known.contains(*k) && (head.out_dim == 0 || !k.starts_with("head."))).cloned().collect();
    for k in extra {
        ours.remove(&k);
        if let Some(pos) = mapped.iter().position(|(_, to)| *to == k) {
            let (from, _) = mapped.remove(pos);
            dropped.push((from, format!("no `{k}` in {}", arch.name())));
        }
    }
}

/// The imported model's description: what the options say, else the
/// defaults of its layout and stem (ImageNet's size and statistics, or CIFAR's).
fn config_for(arch: ArchSpec, head: HeadSpec, choice: &Choice, opts: &ImportOptions) -> ModelConfig {
    let imagenet = arch.stem == Stem::Imagenet;
    ModelConfig {
        arch,
        head,
        method: opts.method.clone().unwrap_or_else(|| choice.method.into()),
        mixco: opts.mixco || choice.mixco,
        input_size: opts.input_size.unwrap_or(if imagenet { 224 } else { 32 }),
        mean: opts.mean.unwrap_or(if imagenet { IMAGENET_MEAN } else { CIFAR_MEAN }),
        std: opts.std.unwrap_or(if imagenet { IMAGENET_STD } else { CIFAR_STD }),
    }
}

/// Depth from the blocks per stage, width and stem from `conv1.weight`.
fn infer_arch(t: &BTreeMap<String, HostTensor>, opts: &ImportOptions) -> Result<ArchSpec, ReadError> {
    let conv1 = t.get("conv1.weight").ok_or("no `conv1.weight`: not a ResNet backbone")?;
    if conv1.shape.len() != 4 || conv1.shape[1] != 3 {
        return Err(format!("`conv1.weight` has shape {:?}; expected [width, 3, k, k]", conv1.shape).into());
    }
    let stem = match (opts.stem, conv1.shape[2]) {
        (Some(s), _) => s,
        (None, 3) => Stem::Cifar,
        (None, 7) => Stem::Imagenet,
        (None, k) => return Err(format!("`conv1.weight` is a {k}x{k} convolution; neither the cifar (3x3) nor the imagenet (7x7) stem").into()),
    };
    let mut blocks = [0usize; 4];
    for (s, n) in blocks.iter_mut().enumerate() {
        while t.contains_key(&format!("layer{}.{}.conv1.weight", s + 1, *n)) {
            *n += 1;
        }
    }
    let bottleneck = t.contains_key("layer1.0.conv3.weight");
    let depth = match (blocks, bottleneck) {
        ([1, 1, 1, 1], false) => Depth::Resnet10,
        ([2, 2, 2, 2], false) => Depth::Resnet18,
        ([3, 4, 6, 3], false) => Depth::Resnet34,
        ([3, 4, 6, 3], true) => Depth::Resnet50,
        _ => return Err(format!(
            "blocks per stage {blocks:?} ({}) match none of resnet10/18/34/50", if bottleneck { "bottleneck" } else { "basic" }
        ).into()),
    };
    let depth = opts.arch.unwrap_or(depth);
    let arch = ArchSpec { depth, width: opts.width.unwrap_or(conv1.shape[0]), stem };
    arch.validate().map_err(|e| e.to_string())?;
    Ok(arch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(layout: &str) -> Choice {
        Choice::at(LAYOUTS.iter().find(|l| l.name == layout).unwrap(), "state_dict.")
    }

    #[test]
    fn publishers_keys_map_or_say_why_not() {
        // MoCo v2: the query encoder and its MLP head.
        let moco = choice("moco");
        assert_eq!(moco.place("state_dict.encoder_q.layer1.0.conv1.weight"), Ok("layer1.0.conv1.weight".into()));
        assert_eq!(moco.place("state_dict.encoder_q.fc.2.bias"), Ok("head.2.bias".into()));
        // MoCo v1: one linear projection, dropped; the backbone is imported.
        assert!(moco.place("state_dict.encoder_q.fc.weight").unwrap_err().contains("MoCo v1"));
        assert_eq!(moco.place("state_dict.encoder_k.conv1.weight"), Err("key (momentum) encoder".into()));
        assert_eq!(moco.place("state_dict.queue_ptr"), Err("MoCo queue".into()));
        assert_eq!(moco.place("optimizer.state.0.momentum_buffer"), Err("outside the state dict".into()));
        // The official MixCo code's stages.
        assert_eq!(choice("mixco-official").place("state_dict.encoder_q.block_layers.3.1.bn2.bias"), Ok("layer4.1.bn2.bias".into()));
        // lightly's sequential backbone.
        assert_eq!(choice("lightly").place("state_dict.backbone.5.0.downsample.1.weight"), Ok("layer2.0.downsample.1.weight".into()));
        assert_eq!(choice("lightly").place("state_dict.backbone_momentum.0.weight"), Err("momentum backbone".into()));
        // torchvision: the classifier is dropped.
        let tv = Choice::at(LAYOUTS.iter().find(|l| l.name == "torchvision").unwrap(), "");
        assert_eq!(tv.place("fc.weight"), Err("classifier (fc)".into()));
        assert_eq!(tv.place("conv1.weight"), Ok("conv1.weight".into()));
    }
}
