//! A user's image folder: `root/<class>/*.{png,jpg,jpeg}`, or with explicit
//! splits `root/train/<class>/…` and `root/test/<class>/…` (or `val/`).
//! Without explicit splits every 10th image of each class (in file-name order)
//! is held out as the test split. Images are resized so that the shorter side
//! is `size` (bilinear), then centre-cropped to `size` x `size`.

use crate::decode::{decode_all, decode_resized};
use crate::{Error, Result, Splits};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn is_image(p: &Path) -> bool {
    let ext = p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    matches!(ext.as_deref(), Some("png" | "jpg" | "jpeg"))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        v.push(e.map_err(|e| Error::io(dir, e))?.path());
    }
    v.sort();
    Ok(v)
}

/// A class folder's name as shown: the name itself, or for a name that is
/// not UTF-8 its bytes escaped (`caf\xe9`), so that two folders never show,
/// or match, as one (a lossy decoding once merged two classes).
fn class_name(name: &std::ffi::OsStr) -> String {
    match name.to_str() {
        Some(s) => s.to_string(),
        None => name.as_encoded_bytes().escape_ascii().to_string(),
    }
}

/// Class folders (by their names' bytes) and their images under `dir`.
fn scan(dir: &Path) -> Result<Vec<(std::ffi::OsString, Vec<PathBuf>)>> {
    let mut classes = Vec::new();
    for p in sorted_entries(dir)? {
        if p.is_dir() {
            let name = p.file_name().expect("a folder entry has a name").to_os_string();
            let images: Vec<PathBuf> = sorted_entries(&p)?.into_iter().filter(|f| f.is_file() && is_image(f)).collect();
            classes.push((name, images));
        }
    }
    Ok(classes)
}

pub fn load(root: &Path, size: u32) -> Result<Splits> {
    if !root.is_dir() {
        return Err(Error::format(root, "image folder does not exist"));
    }
    if size == 0 {
        return Err(Error::Invalid("image size must be positive".into()));
    }
    let test_dir = ["test", "val"].iter().map(|d| root.join(d)).find(|d| d.is_dir());
    let (train_classes, test_classes) = match (root.join("train"), &test_dir) {
        (train, Some(test)) if train.is_dir() => (scan(&train)?, Some(scan(test)?)),
        _ => (scan(root)?, None),
    };
    let names: Vec<std::ffi::OsString> = train_classes.iter().map(|(n, _)| n.clone()).collect();
    if names.is_empty() {
        return Err(Error::format(root, "no class folders (expected root/<class>/*.png|jpg)"));
    }
    let mut train = Vec::new();
    let mut test = Vec::new();
    for (label, (name, images)) in train_classes.into_iter().enumerate() {
        if images.is_empty() {
            return Err(Error::format(root.join(&name), "class folder holds no .png/.jpg/.jpeg images"));
        }
        for (i, p) in images.into_iter().enumerate() {
            if test_classes.is_none() && i % 10 == 9 {
                test.push((p, label as u32));
            } else {
                train.push((p, label as u32));
            }
        }
    }
    for (name, images) in test_classes.unwrap_or_default() {
        let Some(label) = names.iter().position(|n| *n == name) else {
            let split = test_dir.as_deref().unwrap_or(root);
            return Err(Error::format(split.join(&name), "class has no training folder"));
        };
        test.extend(images.into_iter().map(|p| (p, label as u32)));
    }
    let classes = Arc::new(names.iter().map(|n| class_name(n)).collect::<Vec<String>>());
    let decode = |p: &Path, b: &[u8], out: &mut [u8]| decode_resized(p, b, size, out);
    let s = size as usize;
    Ok(Splits {
        name: format!("folder:{}", root.display()),
        train: decode_all(train, s, classes.clone(), decode)?,
        test: decode_all(test, s, classes, decode)?,
    })
}
