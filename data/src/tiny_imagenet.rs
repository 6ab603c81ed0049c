//! Tiny ImageNet 200 in its official layout: `wnids.txt`, `words.txt`,
//! `train/<wnid>/images/*.JPEG` and `val/images/*.JPEG` labelled by
//! `val/val_annotations.txt`. The labelled `val` split is our test split.

use crate::catalog::KnownDataset;
use crate::fsutil::read_text;
use crate::decode::{decode_all, decode_rgb_planar};
use crate::{Error, Result, Splits};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const SIZE: usize = 64;

fn missing(path: PathBuf, what: &str, dir: &Path) -> Error {
    // Something of the other kind there: say so, not "not found".
    if path.exists() {
        let kind = if path.is_dir() { "a directory" } else { "a file" };
        return Error::format(path, format!("is {kind}, not the {what}"));
    }
    Error::Missing {
        path,
        what: what.into(),
        dataset: KnownDataset::TinyImageNet.name().into(),
        root: dir.parent().unwrap_or(Path::new(".")).into(),
    }
}

fn list_jpegs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        if matches!(ext.as_deref(), Some("jpeg" | "jpg")) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Loads `tiny-imagenet-200/` (all of it, or any subset of classes listed in
/// `wnids.txt`).
pub fn load(dir: &Path) -> Result<Splits> {
    if !dir.is_dir() {
        return Err(missing(dir.into(), "Tiny ImageNet folder", dir));
    }
    let wnids_path = dir.join("wnids.txt");
    if !wnids_path.is_file() {
        return Err(missing(wnids_path, "class list", dir));
    }
    let wnids: Vec<String> =
        read_text(&wnids_path)?.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    if wnids.is_empty() {
        return Err(Error::format(&wnids_path, "lists no classes"));
    }
    let index: HashMap<&str, u32> = wnids.iter().enumerate().map(|(i, w)| (w.as_str(), i as u32)).collect();
    if index.len() != wnids.len() {
        return Err(Error::format(&wnids_path, "lists a class twice"));
    }

    // Human-readable names from words.txt (first synonym); the wnid otherwise.
    let mut words = HashMap::new();
    let words_path = dir.join("words.txt");
    if words_path.is_file() {
        for line in read_text(&words_path)?.lines() {
            if let Some((w, desc)) = line.split_once('\t') {
                words.insert(w.trim().to_string(), desc.split(',').next().unwrap_or("").trim().to_string());
            }
        }
    }
    let classes: Arc<Vec<String>> = Arc::new(
        wnids.iter().map(|w| words.get(w).filter(|d| !d.is_empty()).cloned().unwrap_or_else(|| w.clone())).collect(),
    );

    let mut train_files = Vec::new();
    for (label, wnid) in wnids.iter().enumerate() {
        let images = dir.join("train").join(wnid).join("images");
        if !images.is_dir() {
            return Err(missing(images, "training images folder", dir));
        }
        train_files.extend(list_jpegs(&images)?.into_iter().map(|p| (p, label as u32)));
    }

    let ann_path = dir.join("val").join("val_annotations.txt");
    if !ann_path.is_file() {
        return Err(missing(ann_path, "validation annotations", dir));
    }
    let mut val_files = Vec::new();
    for (i, line) in read_text(&ann_path)?.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut cols = line.split('\t');
        let (Some(file), Some(wnid)) = (cols.next(), cols.next()) else {
            return Err(Error::format(&ann_path, format!("line {}: expected `FILE<TAB>WNID<TAB>box`", i + 1)));
        };
        let Some(&label) = index.get(wnid.trim()) else {
            return Err(Error::format(&ann_path, format!("line {}: class {wnid} is not in wnids.txt", i + 1)));
        };
        let path = dir.join("val").join("images").join(file.trim());
        if !path.is_file() {
            return Err(Error::format(&ann_path, format!("line {}: image {} does not exist", i + 1, path.display())));
        }
        val_files.push((path, label));
    }

    let decode = |p: &Path, b: &[u8], out: &mut [u8]| decode_rgb_planar(p, b, SIZE, out);
    let train = decode_all(train_files, SIZE, classes.clone(), decode)?;
    let test = decode_all(val_files, SIZE, classes, decode)?;
    Ok(Splits { name: "tinyimagenet".into(), train, test })
}
