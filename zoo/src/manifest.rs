//! The zoo manifest: a TOML list of models, each with its files (URLs and
//! the hash that verifies them) and the metrics `mixco eval` measured for it.
//!
//! A file is verified by its full `sha256`, or by the hash its publisher
//! published: an `md5`, or a `sha256_prefix` (as `torch.hub` checks the 8
//! hex digits in torchvision's file names). A file with none of them is
//! pulled only when trusted explicitly. Either way the first pull pins the
//! file's full SHA-256 in the cache, and every later use checks it.
//!
//! URLs are `https://`/`http://`, `hf://OWNER/REPO/FILE` (the Hugging Face
//! Hub, `$HF_ENDPOINT` honoured), or relative to the manifest's location.

use crate::Error;
use serde::{Deserialize, Serialize};

/// The manifest compiled into the binary.
pub const EMBEDDED: &str = include_str!("../manifest.toml");

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(default, rename = "model")]
    pub models: Vec<Model>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Model {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Who published the files (`facebookresearch/moco`, `pytorch/vision`, ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub publisher: String,
    pub method: String,
    #[serde(default)]
    pub mixco: bool,
    pub arch: String,
    pub width: usize,
    pub stem: String,
    pub dataset: String,
    /// Input size of the imported encoder (default: 224 for the imagenet stem, 32 for cifar).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_size: Option<usize>,
    /// Epochs of pre-training (0: not stated by the publisher).
    pub epochs: usize,
    #[serde(rename = "file")]
    pub files: Vec<File>,
    #[serde(default, rename = "metric")]
    pub metrics: Vec<Metric>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// A mixco checkpoint (`.safetensors`).
    Checkpoint,
    /// An exported ONNX encoder.
    Onnx,
    /// A publisher's `torch.save` file: imported (no pickle code runs) into
    /// a checkpoint in the cache when a checkpoint or encoder is asked for.
    Pytorch,
}

impl FileKind {
    pub fn extension(self) -> &'static str {
        match self {
            FileKind::Checkpoint => "safetensors",
            FileKind::Onnx => "onnx",
            FileKind::Pytorch => "pth",
        }
    }

    /// Whether a file's first bytes are those of its kind (so that an error
    /// or login page is never pinned as a model), or what they look like.
    pub fn check_content(self, head: &[u8]) -> Result<(), String> {
        let ok = match self {
            // torch.save: a zip archive, or the legacy format's pickle.
            FileKind::Pytorch => crate::torch_file::looks_like_torch_save(head),
            // An 8-byte header length, then the JSON header.
            FileKind::Checkpoint => head.len() > 8 && head[8] == b'{',
            // ModelProto's first field: ir_version (1, varint) or another field's tag.
            FileKind::Onnx => head.first().is_some_and(|&b| b == 0x08 || b == 0x12 || b == 0x1a || b == 0x3a),
        };
        if ok {
            return Ok(());
        }
        let shown: String = String::from_utf8_lossy(&head[..head.len().min(40)]).chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        Err(format!("it is not a {} file (it starts with `{}`: an error or login page?)", self.extension(), shown.trim()))
    }
}

/// How a downloaded file is checked before it is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    Sha256(String),
    /// The first hex digits of the SHA-256 (torch.hub's check).
    Sha256Prefix(String),
    Md5(String),
    /// No published hash: trusted on first use, only when asked to.
    Unverified,
}

impl Check {
    /// What kind of check it is, for tables.
    pub fn kind(&self) -> &'static str {
        match self {
            Check::Sha256(_) => "sha256",
            Check::Sha256Prefix(_) => "sha256 prefix",
            Check::Md5(_) => "md5",
            Check::Unverified => "nothing (TOFU)",
        }
    }

    /// Whether a file with these digests passes.
    pub fn passes(&self, sha256: &str, md5: impl FnOnce() -> String) -> bool {
        match self {
            Check::Sha256(h) => h == sha256,
            Check::Sha256Prefix(p) => sha256.starts_with(p.as_str()),
            Check::Md5(h) => *h == md5(),
            Check::Unverified => true,
        }
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Check::Sha256(h) => write!(f, "SHA-256 {h}"),
            Check::Sha256Prefix(p) => write!(f, "SHA-256 prefix {p}"),
            Check::Md5(h) => write!(f, "MD5 {h}"),
            Check::Unverified => write!(f, "no published hash"),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub kind: FileKind,
    /// Mirrors, tried in order.
    pub urls: Vec<String>,
    /// Bytes, when known: checked against the download.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
}

impl File {
    /// The check this file's hash fields ask for (at most one is set; `parse` checks).
    pub fn check(&self) -> Check {
        match (&self.sha256, &self.sha256_prefix, &self.md5) {
            (Some(h), _, _) => Check::Sha256(h.clone()),
            (_, Some(p), _) => Check::Sha256Prefix(p.clone()),
            (_, _, Some(m)) => Check::Md5(m.clone()),
            _ => Check::Unverified,
        }
    }

    /// Checks the hash fields: at most one, of the right length, lower-case hex.
    fn check_hashes(&self) -> Result<(), String> {
        let hex = |s: &str| s.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
        let set = [self.sha256.is_some(), self.sha256_prefix.is_some(), self.md5.is_some()].iter().filter(|&&b| b).count();
        if set > 1 {
            return Err(format!("the {:?} file has more than one of sha256, sha256_prefix and md5", self.kind));
        }
        for (field, value, lengths) in [("sha256", &self.sha256, 64..=64), ("sha256_prefix", &self.sha256_prefix, 8..=63), ("md5", &self.md5, 32..=32)] {
            if let Some(v) = value.as_deref().filter(|v| !(hex(v) && lengths.contains(&v.len()))) {
                let want = if lengths.start() == lengths.end() { format!("{}", lengths.start()) } else { format!("{} to {}", lengths.start(), lengths.end()) };
                return Err(format!("{field} `{v}` is not {want} lower-case hex digits"));
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    pub dataset: String,
    /// `linear` or `knn200`, `knn20`.
    pub probe: String,
    pub top1: f64,
}

impl Manifest {
    /// Parses and checks a manifest; `source` names it in errors.
    pub fn parse(source: &str, text: &str) -> Result<Manifest, Error> {
        let bad = |problem: String| Error::Manifest { origin: source.into(), problem };
        let m: Manifest = toml::from_str(text).map_err(|e| bad(e.to_string().trim_end().to_string()))?;
        let mut seen = std::collections::HashSet::new();
        for (i, model) in m.models.iter().enumerate() {
            let at = |problem: String| bad(format!("model {} (`{}`): {problem}", i + 1, model.name));
            if model.name.is_empty() || !model.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) || model.name.starts_with('.') {
                return Err(at("the name must be non-empty ASCII letters, digits, `-`, `_` or `.`".into()));
            }
            if !seen.insert(model.name.as_str()) {
                return Err(at("the name appears twice".into()));
            }
            if model.arch.parse::<mixco_model::Depth>().is_err() {
                return Err(at(format!("unknown arch `{}`", model.arch)));
            }
            if model.files.is_empty() {
                return Err(at("no files".into()));
            }
            let mut kinds = std::collections::HashSet::new();
            for f in &model.files {
                if !kinds.insert(f.kind) {
                    return Err(at(format!("two {:?} files", f.kind)));
                }
                f.check_hashes().map_err(at)?;
                if f.size == Some(0) {
                    return Err(at("a file of size 0".into()));
                }
                if f.urls.is_empty() {
                    return Err(at(format!("the {:?} file has no URL", f.kind)));
                }
                if let Some(u) = f.urls.iter().find(|u| u.contains("://") && !["https://", "http://", "hf://"].iter().any(|s| u.starts_with(s))) {
                    return Err(at(format!("URL `{u}` is neither http(s), hf:// nor relative")));
                }
            }
        }
        Ok(m)
    }

    pub fn get(&self, name: &str) -> Result<&Model, Error> {
        self.models.iter().find(|m| m.name == name).ok_or_else(|| Error::UnknownModel {
            name: name.to_string(),
            known: self.models.iter().map(|m| m.name.clone()).collect(),
        })
    }
}

impl Model {
    pub fn file(&self, kind: FileKind) -> Option<&File> {
        self.files.iter().find(|f| f.kind == kind)
    }

    pub fn metric(&self, dataset: &str, probe: &str) -> Option<f64> {
        self.metrics.iter().find(|m| m.dataset == dataset && m.probe == probe).map(|m| m.top1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[model]]
name = "r18w16-moco"
method = "moco-v2"
arch = "resnet18"
width = 16
stem = "cifar"
dataset = "cifar10"
epochs = 3
[[model.file]]
kind = "checkpoint"
urls = ["https://example.org/a.safetensors"]
size = 10
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
[[model.metric]]
dataset = "cifar10"
probe = "linear"
top1 = 42.5
"#;

    #[test]
    fn parses_and_checks() {
        let m = Manifest::parse("t.toml", GOOD).unwrap();
        assert_eq!(m.models[0].metric("cifar10", "linear"), Some(42.5));
        assert_eq!(m.get("r18w16-moco").unwrap().file(FileKind::Checkpoint).unwrap().size, Some(10));
        assert!(m.get("nope").unwrap_err().to_string().contains("known: r18w16-moco"));
        Manifest::parse("embedded", EMBEDDED).unwrap();
    }

    /// Every embedded file lies on its publisher's own host, once, with a
    /// well-formed hash (checked by `parse`), or is knowingly unverified.
    #[test]
    fn embedded_files_are_the_publishers_own() {
        const PUBLISHERS: [(&str, &str); 4] = [
            ("open-mmlab/mmselfsup", "https://download.openmmlab.com/mmselfsup/1.x/"),
            ("facebookresearch/moco", "https://dl.fbaipublicfiles.com/moco/moco_checkpoints/"),
            ("pytorch/vision", "https://download.pytorch.org/models/"),
            ("Lee-Gihun/MixCo-Mixup-Contrast", "https://drive.google.com/uc?export=download&id="),
        ];
        let m = Manifest::parse("embedded", EMBEDDED).unwrap();
        assert!(m.models.len() >= 10);
        let mut urls = std::collections::HashSet::new();
        for model in &m.models {
            let host = PUBLISHERS.iter().find(|(p, _)| *p == model.publisher).map(|(_, h)| *h);
            let host = host.unwrap_or_else(|| panic!("{}: publisher `{}` is not a known one", model.name, model.publisher));
            for f in &model.files {
                for u in &f.urls {
                    assert!(u.starts_with(host), "{}: {u} is not on {host}", model.name);
                    assert!(u.len() > host.len() && !u.contains(' ') && urls.insert(u.clone()), "{}: {u}", model.name);
                }
                match (model.publisher.as_str(), f.check()) {
                    ("Lee-Gihun/MixCo-Mixup-Contrast", c) => assert_eq!(c, Check::Unverified),
                    ("pytorch/vision" | "open-mmlab/mmselfsup", Check::Sha256Prefix(p)) => {
                        assert!(f.urls[0].ends_with(&format!("-{p}.pth")), "the prefix is the file name's")
                    }
                    ("facebookresearch/moco", Check::Md5(h)) => assert_eq!(h.len(), 32),
                    (p, c) => panic!("{}: {p} with {c}", model.name),
                }
            }
        }
    }

    #[test]
    fn bad_entries_are_named() {
        let e = Manifest::parse("t.toml", &GOOD.replace("0000000000000000000000000000000000000000000000000000000000000000", "abc")).unwrap_err();
        assert_eq!(e.to_string(), "zoo manifest t.toml: model 1 (`r18w16-moco`): sha256 `abc` is not 64 lower-case hex digits");
        let e = Manifest::parse("t.toml", &GOOD.replace("https://example.org", "ftp://x")).unwrap_err();
        assert!(e.to_string().contains("is neither http(s), hf:// nor relative"), "{e}");
        let e = Manifest::parse("t.toml", &GOOD.replace("size = 10", "size = 10\nmd5 = \"0123456789abcdef0123456789abcdef\"")).unwrap_err();
        assert!(e.to_string().contains("more than one of sha256, sha256_prefix and md5"), "{e}");
        let only_md5 = GOOD.replace("sha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"", "md5 = \"0123\"");
        let e = Manifest::parse("t.toml", &only_md5).unwrap_err();
        assert!(e.to_string().contains("md5 `0123` is not 32 lower-case hex digits"), "{e}");
        let prefix = GOOD.replace("sha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"", "sha256_prefix = \"f37072fd\"");
        let m = Manifest::parse("t.toml", &prefix).unwrap();
        assert_eq!(m.models[0].files[0].check(), Check::Sha256Prefix("f37072fd".into()));
        let none = GOOD.replace("sha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"", "");
        assert_eq!(Manifest::parse("t.toml", &none).unwrap().models[0].files[0].check(), Check::Unverified);
        let e = Manifest::parse("t.toml", &format!("{GOOD}{GOOD}")).unwrap_err();
        assert!(e.to_string().contains("appears twice"), "{e}");
        let e = Manifest::parse("t.toml", &GOOD.replace("resnet18", "vgg")).unwrap_err();
        assert!(e.to_string().contains("unknown arch `vgg`"), "{e}");
        let e = Manifest::parse("t.toml", &GOOD.replace("epochs = 3", "epochs = \"x\"")).unwrap_err();
        assert!(e.to_string().starts_with("zoo manifest t.toml: "), "{e}");
        let e = Manifest::parse("t.toml", &GOOD.replace("size = 10", "size = 10\ncolour = 1")).unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
    }
}
