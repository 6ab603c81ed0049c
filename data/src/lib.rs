//! Datasets for mixco: readers for the canonical on-disk formats of CIFAR-10,
//! CIFAR-100 and Tiny ImageNet, user image folders, an embedded synthetic
//! dataset, and verified downloads (`fetch`).
//!
//! Every reader returns [`Splits`] of [`ImageSet`]s: uint8 images in NCHW
//! order (3 channels, one fixed size per dataset), labels and class names.
//!
//! ```
//! use mixco_data::synthetic::{self, SyntheticConfig};
//! let splits = synthetic::generate(&SyntheticConfig { train: 20, test: 10, ..Default::default() });
//! assert_eq!(splits.train.len(), 20);
//! assert_eq!(splits.train.image(0).len(), 3 * 32 * 32);
//! ```

pub mod archive;
pub mod catalog;
pub mod cifar;
pub mod decode;
pub mod download;
mod error;
pub mod fetch;
pub mod folder;
pub mod fsutil;
mod image_set;
pub mod info;
pub mod preview;
pub mod rng;
pub mod synthetic;
pub mod tiny_imagenet;

pub use catalog::{DatasetSpec, KnownDataset};
pub use error::{Error, Result};
pub use image_set::{ImageSet, Splits};

use std::path::{Path, PathBuf};

/// What to load: a known dataset under a root folder, a user folder, or the
/// embedded synthetic set.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    Cifar10,
    /// `coarse` selects the 20 super-classes instead of the 100 fine labels.
    Cifar100 { coarse: bool },
    TinyImageNet,
    /// `root/<class>/*.{png,jpg,jpeg}`, every image resized to `size`.
    Folder { path: PathBuf, size: u32 },
    Synthetic(synthetic::SyntheticConfig),
}

impl Source {
    /// Parses the names used on the command line: `cifar10`, `cifar100`,
    /// `cifar100-coarse`, `tinyimagenet`, `synthetic`, `folder:PATH`.
    pub fn parse(name: &str) -> Result<Source> {
        if let Some(path) = name.strip_prefix("folder:") {
            return Ok(Source::Folder { path: PathBuf::from(path), size: 32 });
        }
        match name.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "cifar10" => Ok(Source::Cifar10),
            "cifar100" => Ok(Source::Cifar100 { coarse: false }),
            "cifar100coarse" => Ok(Source::Cifar100 { coarse: true }),
            "tinyimagenet" | "tinyimagenet200" => Ok(Source::TinyImageNet),
            "synthetic" => Ok(Source::Synthetic(Default::default())),
            _ => Err(Error::Invalid(format!(
                "unknown dataset `{name}`: expected cifar10, cifar100, cifar100-coarse, tinyimagenet, synthetic or folder:PATH"
            ))),
        }
    }

    /// Short stable name, used in logs, caches and checkpoint metadata.
    pub fn name(&self) -> String {
        match self {
            Source::Cifar10 => "cifar10".into(),
            Source::Cifar100 { coarse: false } => "cifar100".into(),
            Source::Cifar100 { coarse: true } => "cifar100-coarse".into(),
            Source::TinyImageNet => "tinyimagenet".into(),
            Source::Folder { path, .. } => format!("folder:{}", path.display()),
            Source::Synthetic(_) => "synthetic".into(),
        }
    }

    /// The catalogue entry of a downloadable dataset.
    pub fn known(&self) -> Option<KnownDataset> {
        match self {
            Source::Cifar10 => Some(KnownDataset::Cifar10),
            Source::Cifar100 { .. } => Some(KnownDataset::Cifar100),
            Source::TinyImageNet => Some(KnownDataset::TinyImageNet),
            _ => None,
        }
    }

    /// Loads both splits. `root` is the data root holding the datasets'
    /// canonical folders (ignored by `Folder` and `Synthetic`).
    pub fn load(&self, root: &Path) -> Result<Splits> {
        match self {
            Source::Cifar10 => cifar::load_cifar10(&root.join(KnownDataset::Cifar10.dir_name())),
            Source::Cifar100 { coarse } => {
                cifar::load_cifar100(&root.join(KnownDataset::Cifar100.dir_name()), *coarse)
            }
            Source::TinyImageNet => {
                tiny_imagenet::load(&root.join(KnownDataset::TinyImageNet.dir_name()))
            }
            Source::Folder { path, size } => folder::load(path, *size),
            Source::Synthetic(cfg) if cfg.train.saturating_add(cfg.test) > synthetic::MAX_IMAGES => Err(Error::Invalid(format!(
                "synthetic: {} training and {} test images; at most {} in all (3 KB each)",
                cfg.train,
                cfg.test,
                synthetic::MAX_IMAGES
            ))),
            Source::Synthetic(cfg) => Ok(synthetic::generate(cfg)),
        }
    }
}

/// The default data root: `$MIXCO_DATA`, else `$XDG_DATA_HOME/mixco/datasets`,
/// else `~/.local/share/mixco/datasets`.
pub fn default_root() -> PathBuf {
    if let Some(p) = std::env::var_os("MIXCO_DATA").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("mixco").join("datasets")
}
