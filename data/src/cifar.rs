//! CIFAR-10 and CIFAR-100 in the official binary format: fixed-size records of
//! label byte(s) followed by 3,072 pixel bytes (1,024 R, 1,024 G, 1,024 B).

use crate::catalog::KnownDataset;
use crate::fsutil::{read_file, read_text};
use crate::{Error, ImageSet, Result, Splits};
use std::path::Path;
use std::sync::Arc;

pub const PIXELS: usize = 3 * 32 * 32;

const CIFAR10_CLASSES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// Record layout of one CIFAR flavour.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    /// Label bytes before the pixels (1 for CIFAR-10, 2 for CIFAR-100).
    pub label_bytes: usize,
    /// Which label byte to keep.
    pub label_index: usize,
    pub num_classes: u32,
}

impl Layout {
    pub fn record_size(&self) -> usize {
        self.label_bytes + PIXELS
    }
}

/// Appends the records of one `.bin` file to `out`, checking the file's size
/// and every label.
pub fn parse_into(bytes: &[u8], path: &Path, layout: Layout, out: &mut ImageSet) -> Result<()> {
    let rec = layout.record_size();
    if bytes.is_empty() {
        return Err(Error::format(path, "file is empty"));
    }
    if !bytes.len().is_multiple_of(rec) {
        return Err(Error::format(
            path,
            format!(
                "size {} bytes is not a whole number of {rec}-byte records ({} records and {} bytes left over): truncated or not a CIFAR file",
                bytes.len(),
                bytes.len() / rec,
                bytes.len() % rec
            ),
        ));
    }
    let n = bytes.len() / rec;
    out.pixels.reserve(n * PIXELS);
    out.labels.reserve(n);
    for (i, r) in bytes.chunks_exact(rec).enumerate() {
        let label = r[layout.label_index] as u32;
        if label >= layout.num_classes {
            return Err(Error::format(
                path,
                format!("record {i}: label {label} out of range 0..{}", layout.num_classes),
            ));
        }
        out.labels.push(label);
        out.pixels.extend_from_slice(&r[layout.label_bytes..]);
    }
    Ok(())
}

fn load_files(
    dir: &Path,
    files: &[&str],
    layout: Layout,
    classes: &Arc<Vec<String>>,
    dataset: KnownDataset,
) -> Result<ImageSet> {
    let mut set = ImageSet::empty(32, 32, classes.clone());
    for f in files {
        let path = dir.join(f);
        let max_records = dataset.official_records().iter().find(|r| r.0 == *f).map_or(usize::MAX, |r| r.1);
        if path.is_dir() {
            return Err(Error::format(&path, "is a directory, not a CIFAR batch file"));
        }
        if !path.is_file() {
            return Err(missing(&path, dataset, dir));
        }
        let meta = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?;
        if meta.len() as usize > max_records.saturating_mul(layout.record_size()) {
            return Err(Error::format(
                &path,
                format!(
                    "oversized: {} bytes, more than the {} records of the official file",
                    meta.len(),
                    max_records
                ),
            ));
        }
        parse_into(&read_file(&path)?, &path, layout, &mut set)?;
    }
    Ok(set)
}

pub(crate) fn missing(path: &Path, dataset: KnownDataset, dir: &Path) -> Error {
    let root = dir.parent().unwrap_or(Path::new(".")).to_path_buf();
    Error::Missing { path: path.to_path_buf(), what: "file".into(), dataset: dataset.name().into(), root }
}

fn names_from(path: &Path, expected: usize) -> Result<Option<Vec<String>>> {
    if !path.is_file() {
        return Ok(None);
    }
    let names: Vec<String> =
        read_text(path)?.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    if names.len() != expected {
        return Err(Error::format(path, format!("{} class names, expected {expected}", names.len())));
    }
    Ok(Some(names))
}

/// Loads `cifar-10-batches-bin/`: five training batches and the test batch.
pub fn load_cifar10(dir: &Path) -> Result<Splits> {
    if !dir.is_dir() {
        return Err(Error::Missing {
            path: dir.into(),
            what: "CIFAR-10 folder".into(),
            dataset: "cifar10".into(),
            root: dir.parent().unwrap_or(Path::new(".")).into(),
        });
    }
    let names = names_from(&dir.join("batches.meta.txt"), 10)?
        .unwrap_or_else(|| CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect());
    let classes = Arc::new(names);
    let layout = Layout { label_bytes: 1, label_index: 0, num_classes: 10 };
    let train_files = ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];
    let train = load_files(dir, &train_files, layout, &classes, KnownDataset::Cifar10)?;
    let test = load_files(dir, &["test_batch.bin"], layout, &classes, KnownDataset::Cifar10)?;
    Ok(Splits { name: "cifar10".into(), train, test })
}

/// Loads `cifar-100-binary/` with fine labels (100 classes) or, with
/// `coarse`, the 20 super-classes.
pub fn load_cifar100(dir: &Path, coarse: bool) -> Result<Splits> {
    if !dir.is_dir() {
        return Err(Error::Missing {
            path: dir.into(),
            what: "CIFAR-100 folder".into(),
            dataset: "cifar100".into(),
            root: dir.parent().unwrap_or(Path::new(".")).into(),
        });
    }
    let (n, names_file, index) =
        if coarse { (20, "coarse_label_names.txt", 0) } else { (100, "fine_label_names.txt", 1) };
    let names = names_from(&dir.join(names_file), n)?
        .unwrap_or_else(|| (0..n).map(|i| format!("class_{i}")).collect());
    let classes = Arc::new(names);
    let layout = Layout { label_bytes: 2, label_index: index, num_classes: n as u32 };
    let train = load_files(dir, &["train.bin"], layout, &classes, KnownDataset::Cifar100)?;
    let test = load_files(dir, &["test.bin"], layout, &classes, KnownDataset::Cifar100)?;
    let name = if coarse { "cifar100-coarse" } else { "cifar100" };
    Ok(Splits { name: name.into(), train, test })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(label: &[u8], fill: u8) -> Vec<u8> {
        let mut r = label.to_vec();
        r.extend(std::iter::repeat_n(fill, PIXELS));
        r
    }

    #[test]
    fn parses_records_in_order() {
        let layout = Layout { label_bytes: 1, label_index: 0, num_classes: 10 };
        let bytes = [record(&[3], 7), record(&[9], 200)].concat();
        let mut set = ImageSet::empty(32, 32, Arc::new(vec![String::new(); 10]));
        parse_into(&bytes, Path::new("x.bin"), layout, &mut set).unwrap();
        assert_eq!(set.labels, vec![3, 9]);
        assert!(set.image(0).iter().all(|&p| p == 7));
        assert!(set.image(1).iter().all(|&p| p == 200));
    }

    #[test]
    fn cifar100_picks_fine_or_coarse_byte() {
        let bytes = record(&[4, 77], 1);
        for (index, want) in [(0, 4), (1, 77)] {
            let layout = Layout { label_bytes: 2, label_index: index, num_classes: 100 };
            let mut set = ImageSet::empty(32, 32, Arc::new(vec![String::new(); 100]));
            parse_into(&bytes, Path::new("t.bin"), layout, &mut set).unwrap();
            assert_eq!(set.labels, vec![want]);
        }
    }

    #[test]
    fn rejects_partial_record_and_bad_label() {
        let layout = Layout { label_bytes: 1, label_index: 0, num_classes: 10 };
        let mut set = ImageSet::empty(32, 32, Arc::new(vec![String::new(); 10]));
        let mut bytes = record(&[1], 0);
        bytes.pop();
        let err = parse_into(&bytes, Path::new("a.bin"), layout, &mut set).unwrap_err().to_string();
        assert!(err.starts_with("a.bin: size 3072 bytes is not a whole number"), "{err}");
        let err = parse_into(&record(&[10], 0), Path::new("b.bin"), layout, &mut set).unwrap_err().to_string();
        assert_eq!(err, "b.bin: record 0: label 10 out of range 0..10");
    }
}
