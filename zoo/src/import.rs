//! `mixco zoo import`: PyTorch checkpoints of the reference MoCo / MixCo code
//! (`state_dict` keys under `module.encoder_q.`) and plain torchvision ResNet
//! state dicts into mixco checkpoints, with the architecture inferred from
//! the tensors.

use crate::ReadError;
use crate::pickle::Value;
use crate::torch_file;
use crate::Error;
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
}

pub struct Imported {
    pub checkpoint: Checkpoint,
    pub config: ModelConfig,
    /// What the source looked like: `moco` or `torchvision`.
    pub layout: &'static str,
    /// (source key, our key)
    pub mapped: Vec<(String, String)>,
    /// (source key, why)
    pub dropped: Vec<(String, String)>,
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
    let (tensors, mut dropped) = read_tensors(bytes).map_err(fail)?;
    let moco = tensors.iter().any(|(k, _)| k.trim_start_matches("module.").starts_with("encoder_q."));
    let layout = if moco { "moco" } else { "torchvision" };
    let mut ours: BTreeMap<String, HostTensor> = BTreeMap::new();
    let mut mapped = Vec::new();
    for (key, t) in tensors {
        match our_name(&key, moco) {
            Ok(name) => {
                mapped.push((key.clone(), name.clone()));
                ours.insert(name, t);
            }
            Err(why) => dropped.push((key.clone(), why.to_string())),
        }
    }
    let arch = infer_arch(&ours, opts).map_err(fail)?;
    let head = head_of(&ours, arch.backbone().feature_dim);
    drop_extra(&mut ours, &arch, &head, &mut mapped, &mut dropped);
    let config = config_for(arch, head, moco, opts);
    let mut specs = config.arch.backbone().tensors();
    if head.out_dim > 0 {
        specs.extend(head.tensors("head."));
    }
    let mut checkpoint = Checkpoint { metadata: BTreeMap::new(), tensors: ours };
    checkpoint.check_tensors(path, &specs)?;
    config.to_metadata(&mut checkpoint.metadata);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    checkpoint.metadata.insert("imported_from".into(), name);
    checkpoint.metadata.insert("imported_layout".into(), layout.into());
    checkpoint.metadata.insert("source_sha256".into(), mixco_data::fsutil::sha256_hex(bytes));
    checkpoint.metadata.insert("mixco_version".into(), env!("CARGO_PKG_VERSION").into());
    Ok(Imported { checkpoint, config, layout, mapped, dropped })
}

/// (key, value) pairs in their file's order.
type Named<T> = Vec<(String, T)>;

/// The state dict's tensors, and what was left out of it (with why).
fn read_tensors(bytes: &[u8]) -> Result<(Named<HostTensor>, Named<String>), ReadError> {
    let file = torch_file::read(bytes)?;
    let (state, outer) = state_dict(&file.root)?;
    let mut tensors = Vec::new();
    let mut dropped: Vec<(String, String)> = outer.into_iter().map(|k| (k, "not a tensor of the model".to_string())).collect();
    for (k, v) in state {
        match v {
            Value::Tensor(t) => tensors.push((k.clone(), file.tensor(t).map_err(|e| ReadError(format!("tensor `{k}`: {e}")))?)),
            other => dropped.push((k.clone(), format!("not a tensor ({other:?})"))),
        }
    }
    Ok((tensors, dropped))
}

/// Our name for a publisher's tensor, or why it is left out.
fn our_name(key: &str, moco: bool) -> Result<String, &'static str> {
    let k = key.strip_prefix("module.").unwrap_or(key);
    if !moco {
        return if k.starts_with("fc.") { Err("classifier (fc)") } else { Ok(k.to_string()) };
    }
    match k.strip_prefix("encoder_q.") {
        Some(rest) => match rest.strip_prefix("fc.") {
            Some(h) if h.starts_with("0.") || h.starts_with("2.") => Ok(format!("head.{h}")),
            // MoCo v1 projects with one linear layer (`fc.weight`): not an MLP head; the backbone alone is imported.
            Some(_) => Err("MoCo v1's linear projection (not an MLP head)"),
            None => Ok(rest.to_string()),
        },
        None if k.starts_with("encoder_k.") => Err("key (momentum) encoder"),
        None if k == "queue" || k == "queue_ptr" => Err("MoCo queue"),
        None => Err("not part of the query encoder"),
    }
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
fn drop_extra(ours: &mut BTreeMap<String, HostTensor>, arch: &ArchSpec, head: &HeadSpec, mapped: &mut Named<String>, dropped: &mut Named<String>) {
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
/// defaults of its stem (ImageNet's size and statistics, or CIFAR's).
fn config_for(arch: ArchSpec, head: HeadSpec, moco: bool, opts: &ImportOptions) -> ModelConfig {
    let imagenet = arch.stem == Stem::Imagenet;
    ModelConfig {
        arch,
        head,
        method: opts.method.clone().unwrap_or_else(|| if moco { "moco-v2".into() } else { "imported".into() }),
        mixco: opts.mixco,
        input_size: opts.input_size.unwrap_or(if imagenet { 224 } else { 32 }),
        mean: opts.mean.unwrap_or(if imagenet { IMAGENET_MEAN } else { CIFAR_MEAN }),
        std: opts.std.unwrap_or(if imagenet { IMAGENET_STD } else { CIFAR_STD }),
    }
}

/// The state dict inside a checkpoint (under `state_dict` or `model`, or the
/// object itself), and the other top-level keys.
fn state_dict(root: &Value) -> Result<(Named<&Value>, Vec<String>), ReadError> {
    let Value::Dict(items) = root else { return Err("the checkpoint is not a dict".into()) };
    let which = ["state_dict", "model"].into_iter().find(|k| matches!(root.get(k), Some(Value::Dict(_))));
    let (sd, outer) = match which.and_then(|w| root.get(w).map(|v| (w, v))) {
        Some((w, Value::Dict(sd))) => {
            let outer = items.iter().filter_map(|(k, _)| match k {
                Value::Str(s) if s != w => Some(s.clone()),
                _ => None,
            });
            (sd, outer.collect())
        }
        _ => (items, Vec::new()),
    };
    let mut out = Vec::new();
    for (k, v) in sd {
        match k {
            Value::Str(k) => out.push((k.clone(), v)),
            _ => return Err("the state dict has a key that is not a string".into()),
        }
    }
    if !out.iter().any(|(_, v)| matches!(v, Value::Tensor(_))) {
        return Err("no tensors found (expected a state dict, or a dict with `state_dict`)".into());
    }
    Ok((out, outer))
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
    use super::our_name;

    #[test]
    fn publishers_keys_map_or_say_why_not() {
        // MoCo v2 (and the official MixCo code): the query encoder and its MLP head.
        assert_eq!(our_name("module.encoder_q.layer1.0.conv1.weight", true), Ok("layer1.0.conv1.weight".into()));
        assert_eq!(our_name("module.encoder_q.fc.2.bias", true), Ok("head.2.bias".into()));
        // MoCo v1: one linear projection, dropped; the backbone is imported.
        assert!(our_name("module.encoder_q.fc.weight", true).unwrap_err().contains("MoCo v1"));
        assert!(our_name("module.encoder_k.conv1.weight", true).is_err());
        assert!(our_name("module.queue", true).is_err());
        // torchvision: the classifier is dropped.
        assert_eq!(our_name("fc.weight", false), Err("classifier (fc)"));
        assert_eq!(our_name("conv1.weight", false), Ok("conv1.weight".into()));
    }
}
