//! The zoo manifest: a TOML list of models, each with its files (URLs, size,
//! SHA-256) and the metrics `mixco eval` measured for it.

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
    pub method: String,
    #[serde(default)]
    pub mixco: bool,
    pub arch: String,
    pub width: usize,
    pub stem: String,
    pub dataset: String,
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
}

impl FileKind {
    pub fn extension(self) -> &'static str {
        match self {
            FileKind::Checkpoint => "safetensors",
            FileKind::Onnx => "onnx",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub kind: FileKind,
    /// Mirrors, tried in order.
    pub urls: Vec<String>,
    pub size: u64,
    pub sha256: String,
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
                if f.sha256.len() != 64 || !f.sha256.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()) {
                    return Err(at(format!("sha256 `{}` is not 64 lower-case hex digits", f.sha256)));
                }
                if f.size == 0 {
                    return Err(at("a file of size 0".into()));
                }
                if f.urls.is_empty() {
                    return Err(at(format!("the {:?} file has no URL", f.kind)));
                }
                if let Some(u) = f.urls.iter().find(|u| !(u.starts_with("https://") || u.starts_with("http://"))) {
                    return Err(at(format!("URL `{u}` is not http(s)")));
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
        assert_eq!(m.get("r18w16-moco").unwrap().file(FileKind::Checkpoint).unwrap().size, 10);
        assert!(m.get("nope").unwrap_err().to_string().contains("known: r18w16-moco"));
        Manifest::parse("embedded", EMBEDDED).unwrap();
    }

    #[test]
    fn bad_entries_are_named() {
        let e = Manifest::parse("t.toml", &GOOD.replace("0000000000000000000000000000000000000000000000000000000000000000", "abc")).unwrap_err();
        assert_eq!(e.to_string(), "zoo manifest t.toml: model 1 (`r18w16-moco`): sha256 `abc` is not 64 lower-case hex digits");
        let e = Manifest::parse("t.toml", &GOOD.replace("https://example.org", "ftp://x")).unwrap_err();
        assert!(e.to_string().contains("is not http(s)"), "{e}");
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
