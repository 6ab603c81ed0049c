//! `mixco data info`: what a dataset holds and whether its files are the
//! official ones.

use crate::fetch::check_known_files;
use crate::{Result, Source, Splits};
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Serialize)]
pub struct SplitInfo {
    pub name: &'static str,
    pub images: usize,
    pub per_class: Vec<usize>,
}

#[derive(Debug, Serialize)]
pub struct FileCheck {
    pub file: String,
    pub matches: bool,
}

#[derive(Debug, Serialize)]
pub struct DatasetInfo {
    pub dataset: String,
    pub location: Option<String>,
    pub image_size: [usize; 3],
    pub classes: Vec<String>,
    pub splits: Vec<SplitInfo>,
    /// Files with a known official SHA-256 and whether they match; empty if
    /// none are known for this dataset.
    pub checksums: Vec<FileCheck>,
    /// SHA-256 over the decoded training split (labels and pixels).
    pub train_fingerprint: String,
}

impl DatasetInfo {
    pub fn checksums_match(&self) -> Option<bool> {
        (!self.checksums.is_empty()).then(|| self.checksums.iter().all(|c| c.matches))
    }
}

pub fn summarize(splits: &Splits, location: Option<&Path>, checksums: Vec<FileCheck>) -> DatasetInfo {
    DatasetInfo {
        dataset: splits.name.clone(),
        location: location.map(|p| p.display().to_string()),
        image_size: [3, splits.train.height, splits.train.width],
        classes: splits.train.classes.to_vec(),
        splits: vec![
            SplitInfo { name: "train", images: splits.train.len(), per_class: splits.train.class_counts() },
            SplitInfo { name: "test", images: splits.test.len(), per_class: splits.test.class_counts() },
        ],
        checksums,
        train_fingerprint: splits.train.fingerprint(),
    }
}

/// Loads `source` from `root` and summarises it, checking known checksums.
pub fn info(source: &Source, root: &Path) -> Result<DatasetInfo> {
    let splits = source.load(root)?;
    let (location, checks) = match source.known() {
        Some(k) => {
            let dir = root.join(k.dir_name());
            let checks = check_known_files(k, &dir)?
                .into_iter()
                .map(|(file, matches)| FileCheck { file, matches })
                .collect();
            (Some(dir), checks)
        }
        None => match source {
            Source::Folder { path, .. } => (Some(path.clone()), Vec::new()),
            _ => (None, Vec::new()),
        },
    };
    Ok(summarize(&splits, location.as_deref(), checks))
}
