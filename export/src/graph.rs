use crate::proto::*;
use mixco_model::arch::{Backbone, ConvBn, BN_EPS};
use mixco_model::{Checkpoint, CheckpointError, HeadSpec, ModelConfig};
use prost::Message;
use std::path::Path;

pub const FORMAT: &str = "mixco-onnx-v1";
/// IR version 8 goes with opsets up to 17 (ONNX 1.12); later opsets need later IRs.
fn ir_version(opset: i64) -> i64 {
    match opset {
        ..=17 => 8,
        18..=19 => 9,
        20..=21 => 10,
        _ => 11,
    }
}

#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// Include the projection head (`projection` output).
    pub head: bool,
    pub opset: i64,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions { head: false, opset: 17 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("opset {0}: supported opsets are 17 to 22")]
    Opset(i64),
    #[error("{0}: the projection head was asked for, but the checkpoint has none (e.g. an imported classifier backbone)")]
    NoHead(std::path::PathBuf),
}

pub struct Exported {
    pub bytes: Vec<u8>,
    pub input_size: usize,
    /// Output names and their widths.
    pub outputs: Vec<(String, usize)>,
    pub metadata: Vec<(String, String)>,
}

struct Builder<'a> {
    ck: &'a Checkpoint,
    nodes: Vec<NodeProto>,
    init: Vec<TensorProto>,
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { name: name.into(), ints: v.to_vec(), r#type: ATTR_INTS, ..Default::default() }
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto { name: name.into(), i: v, r#type: ATTR_INT, ..Default::default() }
}

fn value_info(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| match d {
            Some(v) => Dimension { dim_value: Some(*v), dim_param: None },
            None => Dimension { dim_value: None, dim_param: Some("batch".into()) },
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto { tensor_type: Some(TensorTypeProto { elem_type: FLOAT, shape: Some(TensorShapeProto { dim }) }) }),
    }
}

impl Builder<'_> {
    fn tensor(&self, name: &str) -> &[f32] {
        // Presence, shape, dtype and finiteness were checked before building.
        self.ck.tensors[name].as_f32().expect("float tensor")
    }

    fn constant(&mut self, name: &str, dims: &[i64], data: &[f32]) -> String {
        let raw_data = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.init.push(TensorProto { dims: dims.to_vec(), data_type: FLOAT, name: name.into(), raw_data, ..Default::default() });
        name.into()
    }

    fn node(&mut self, op: &str, name: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        let out = name.to_string();
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            name: name.into(),
            op_type: op.into(),
            attribute: attrs,
        });
        out
    }

    /// Conv with the following batch norm folded in:
    /// W' = W·γ/√(σ²+ε) per output channel, b' = β - μ·γ/√(σ²+ε).
    fn conv_bn(&mut self, cb: &ConvBn, x: &str) -> String {
        let c = &cb.conv;
        let w = self.tensor(&format!("{}.weight", c.name));
        let gamma = self.tensor(&format!("{}.weight", cb.bn.name));
        let beta = self.tensor(&format!("{}.bias", cb.bn.name));
        let mean = self.tensor(&format!("{}.running_mean", cb.bn.name));
        let var = self.tensor(&format!("{}.running_var", cb.bn.name));
        let per_out = c.in_ch * c.kernel * c.kernel;
        let mut folded = Vec::with_capacity(w.len());
        let mut bias = Vec::with_capacity(c.out_ch);
        for o in 0..c.out_ch {
            let scale = (gamma[o] as f64 / (var[o] as f64 + BN_EPS).sqrt()) as f32;
            folded.extend(w[o * per_out..(o + 1) * per_out].iter().map(|v| v * scale));
            bias.push(beta[o] - mean[o] * scale);
        }
        let k = c.kernel as i64;
        let wn = self.constant(&format!("{}.weight", c.name), &[c.out_ch as i64, c.in_ch as i64, k, k], &folded);
        let bn = self.constant(&format!("{}.bias", c.name), &[c.out_ch as i64], &bias);
        let (s, p) = (c.stride as i64, c.padding as i64);
        self.node("Conv", &c.name, &[x, &wn, &bn], vec![ints("kernel_shape", &[k, k]), ints("strides", &[s, s]), ints("pads", &[p, p, p, p]), ints("dilations", &[1, 1]), int("group", 1)])
    }
}

/// Builds the ONNX model of checkpoint `ck` (read from `path`, whose SHA-256
/// is `sha256`). Every tensor used is checked first (presence, shape, NaN).
pub fn export(ck: &Checkpoint, path: &Path, sha256: &str, opts: &ExportOptions) -> Result<Exported, ExportError> {
    if !(17..=22).contains(&opts.opset) {
        return Err(ExportError::Opset(opts.opset));
    }
    let cfg = ck.config(path)?;
    let arch = cfg.arch.backbone();
    let mut specs = arch.tensors();
    if opts.head {
        if cfg.head.out_dim == 0 {
            return Err(ExportError::NoHead(path.into()));
        }
        specs.extend(cfg.head.tensors("head."));
    }
    ck.check_tensors(path, &specs)?;

    let mut b = Builder { ck, nodes: Vec::new(), init: Vec::new() };
    let x = b.normalise(&cfg);
    let pooled = b.backbone(&arch, x);
    b.nodes.push(NodeProto { input: vec![pooled], output: vec!["features".into()], name: "flatten".into(), op_type: "Flatten".into(), attribute: vec![int("axis", 1)] });
    let mut outputs = vec![("features".to_string(), arch.feature_dim)];
    if opts.head {
        b.head(&cfg.head);
        outputs.push(("projection".to_string(), cfg.head.out_dim));
    }
    let metadata = metadata(ck, &cfg, arch.feature_dim, &outputs, sha256);
    let s = cfg.input_size as i64;
    let graph = GraphProto {
        node: b.nodes,
        name: format!("mixco-{}", cfg.arch.name()),
        initializer: b.init,
        input: vec![value_info("images", &[None, Some(3), Some(s), Some(s)])],
        output: outputs.iter().map(|(n, d)| value_info(n, &[None, Some(*d as i64)])).collect(),
    };
    let model = ModelProto {
        ir_version: ir_version(opts.opset),
        producer_name: "mixco".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!("{} encoder exported by mixco; input `images` float32 NCHW in [0, 1]", cfg.arch),
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: opts.opset }],
        metadata_props: metadata.iter().map(|(k, v)| StringStringEntryProto { key: k.clone(), value: v.clone() }).collect(),
    };
    Ok(Exported { bytes: model.encode_to_vec(), input_size: cfg.input_size, outputs, metadata })
}

impl Builder<'_> {
    /// `images` normalised with the checkpoint's mean and std.
    fn normalise(&mut self, cfg: &ModelConfig) -> String {
        let mean = self.constant("normalize.mean", &[1, 3, 1, 1], &cfg.mean);
        let std = self.constant("normalize.std", &[1, 3, 1, 1], &cfg.std);
        let x = self.node("Sub", "normalize.sub", &["images", &mean], vec![]);
        self.node("Div", "normalize.div", &[&x, &std], vec![])
    }

    /// The stem, the residual blocks and global average pooling, from `x`.
    fn backbone(&mut self, arch: &Backbone, x: String) -> String {
        let mut x = self.conv_bn(&arch.stem, &x);
        x = self.node("Relu", "relu", &[&x], vec![]);
        if arch.max_pool {
            x = self.node("MaxPool", "maxpool", &[&x], vec![ints("kernel_shape", &[3, 3]), ints("strides", &[2, 2]), ints("pads", &[1, 1, 1, 1])]);
        }
        for block in &arch.blocks {
            let shortcut = match &block.downsample {
                Some(d) => self.conv_bn(d, &x),
                None => x.clone(),
            };
            let mut y = x.clone();
            for (i, cb) in block.convs.iter().enumerate() {
                y = self.conv_bn(cb, &y);
                if i + 1 < block.convs.len() {
                    y = self.node("Relu", &format!("{}.relu{}", block.name, i + 1), &[&y], vec![]);
                }
            }
            let sum = self.node("Add", &format!("{}.add", block.name), &[&y, &shortcut], vec![]);
            x = self.node("Relu", &format!("{}.relu", block.name), &[&sum], vec![]);
        }
        self.node("GlobalAveragePool", "avgpool", &[&x], vec![])
    }

    /// The projection head on `features`, output `projection`.
    fn head(&mut self, h: &HeadSpec) {
        let t = |name: &str| self.ck.tensors[name].as_f32().unwrap();
        let (w0, b0, w2, b2) = (t("head.0.weight"), t("head.0.bias"), t("head.2.weight"), t("head.2.bias"));
        let w0 = self.constant("head.0.weight", &[h.hidden as i64, h.in_dim as i64], w0);
        let b0 = self.constant("head.0.bias", &[h.hidden as i64], b0);
        let w2 = self.constant("head.2.weight", &[h.out_dim as i64, h.hidden as i64], w2);
        let b2 = self.constant("head.2.bias", &[h.out_dim as i64], b2);
        let y = self.node("Gemm", "head.0", &["features", &w0, &b0], vec![int("transB", 1)]);
        let y = self.node("Relu", "head.1", &[&y], vec![]);
        self.nodes.push(NodeProto { input: vec![y, w2, b2], output: vec!["projection".into()], name: "head.2".into(), op_type: "Gemm".into(), attribute: vec![int("transB", 1)] });
    }
}

/// `metadata_props`: the model's fields (written by `ModelConfig`, as in
/// checkpoints), what the graph takes and gives, and where it came from.
fn metadata(ck: &Checkpoint, cfg: &ModelConfig, feature_dim: usize, outputs: &[(String, usize)], sha256: &str) -> Vec<(String, String)> {
    let mut meta = std::collections::BTreeMap::new();
    cfg.write_fields(&mut meta);
    for (k, v) in [
        ("format", FORMAT.to_string()),
        ("mixco_version", env!("CARGO_PKG_VERSION").into()),
        ("input_range", "[0, 1]".into()),
        ("feature_dim", feature_dim.to_string()),
        ("outputs", outputs.iter().map(|o| o.0.as_str()).collect::<Vec<_>>().join(",")),
        ("source_sha256", sha256.to_string()),
    ] {
        meta.insert(k.to_string(), v);
    }
    for k in ["dataset", "dataset_sha256", "epoch", "seed"] {
        if let Some(v) = ck.metadata.get(k) {
            meta.insert(k.to_string(), v.clone());
        }
    }
    meta.into_iter().collect()
}
