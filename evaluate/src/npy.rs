//! NumPy `.npy` (format 1.0) files: `mixco eval --dump-features` writes
//! features (`<f4`, 2-D) and labels (`<i8`, 1-D) in the folder layout of
//! [`write_dump`]; `mixco bench probe` reads them back with [`read_dump`]. The reader trusts nothing in the header: every size is checked
//! against the file's own length before anything is allocated from it.

use crate::features::Features;
use mixco_data::fsutil::write_atomic;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct NpyError {
    pub path: PathBuf,
    pub problem: String,
}

/// A `.npy` file of a little-endian array.
pub fn encode(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + length (2) + header + newline, padded to 64 bytes.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

pub fn encode_f32(shape: &[usize], values: &[f32]) -> Vec<u8> {
    encode("<f4", shape, &values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())
}

pub fn encode_labels(labels: &[u32]) -> Vec<u8> {
    encode("<i8", &[labels.len()], &labels.iter().flat_map(|&l| (l as i64).to_le_bytes()).collect::<Vec<u8>>())
}

/// (descr, shape, data) of an array in C order.
fn decode(bytes: &[u8]) -> Result<(String, Vec<usize>, &[u8]), String> {
    let rest = bytes.strip_prefix(b"\x93NUMPY").ok_or("not a .npy file (no \\x93NUMPY magic)")?;
    let (len_bytes, start) = match rest.first() {
        Some(1) => (2, 10usize),
        Some(2 | 3) => (4, 12),
        Some(v) => return Err(format!("unsupported .npy version {v}")),
        None => return Err("truncated header".into()),
    };
    let len_field = rest.get(2..2 + len_bytes).ok_or("truncated header")?;
    let header_len = len_field.iter().rev().fold(0usize, |a, &b| (a << 8) | b as usize);
    let header = bytes.get(start..start.saturating_add(header_len)).ok_or("the header is longer than the file")?;
    let header = std::str::from_utf8(header).map_err(|_| "the header is not text")?;
    let field = |key: &str| -> Result<&str, String> {
        let at = header.find(&format!("'{key}':")).ok_or(format!("the header has no '{key}'"))?;
        Ok(header[at + key.len() + 3..].trim_start())
    };
    let descr = field("descr")?.strip_prefix('\'').and_then(|s| s.split('\'').next()).ok_or("unreadable 'descr'")?;
    if !field("fortran_order")?.starts_with("False") {
        return Err("Fortran-order arrays are not supported".into());
    }
    let shape = field("shape")?.strip_prefix('(').and_then(|s| s.split(')').next()).ok_or("unreadable 'shape'")?;
    let shape = shape.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| s.parse::<usize>().map_err(|_| format!("unreadable dimension `{s}` in 'shape'"))).collect::<Result<Vec<_>, _>>()?;
    Ok((descr.to_string(), shape, &bytes[start + header_len..]))
}

/// The data of a `descr` array of `item`-byte elements, its length checked.
fn payload<'a>(bytes: &'a [u8], want: &[&str], item: usize) -> Result<(Vec<usize>, &'a [u8]), String> {
    let (descr, shape, data) = decode(bytes)?;
    if !want.contains(&descr.as_str()) {
        return Err(format!("element type `{descr}`, expected {}", want.join(" or ")));
    }
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or("the shape overflows")?;
    if count.checked_mul(item) != Some(data.len()) {
        return Err(format!("shape {shape:?} needs {count} elements of {item} bytes, the file holds {} bytes of data", data.len()));
    }
    Ok((shape, data))
}

fn read(path: &Path) -> Result<Vec<u8>, NpyError> {
    std::fs::read(path).map_err(|e| NpyError { path: path.into(), problem: e.to_string() })
}

/// A 2-D float32 array: (rows, columns, values).
pub fn read_f32_2d(path: &Path) -> Result<(usize, usize, Vec<f32>), NpyError> {
    let bytes = read(path)?;
    let fail = |problem: String| NpyError { path: path.into(), problem };
    let (shape, data) = payload(&bytes, &["<f4"], 4).map_err(fail)?;
    let [n, d] = shape[..] else { return Err(fail(format!("shape {shape:?}, expected 2 dimensions (rows, features)"))) };
    Ok((n, d, data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()))
}

/// A 1-D array of non-negative integer labels (`<i8` or `<i4`).
pub fn read_labels(path: &Path) -> Result<Vec<u32>, NpyError> {
    let bytes = read(path)?;
    let fail = |problem: String| NpyError { path: path.into(), problem };
    let (descr, _, _) = decode(&bytes).map_err(fail)?;
    let item = if descr == "<i4" { 4 } else { 8 };
    let (shape, data) = payload(&bytes, &["<i8", "<i4"], item).map_err(fail)?;
    if shape.len() != 1 {
        return Err(fail(format!("shape {shape:?}, expected 1 dimension")));
    }
    data.chunks_exact(item)
        .map(|b| if item == 4 { i32::from_le_bytes(b.try_into().unwrap()) as i64 } else { i64::from_le_bytes(b.try_into().unwrap()) })
        .enumerate()
        .map(|(i, v)| u32::try_from(v).map_err(|_| fail(format!("label {i} is {v}, expected 0..2^32"))))
        .collect()
}

/// A `--dump-features` folder, for one dataset and model:
/// `DIR/DATASET-MODEL-{train,test}.npy` (float32 features) and
/// `DIR/DATASET-{train,test}-labels.npy` (int64). Names are made file-safe
/// the same way when writing and reading (the name `mixco eval` printed
/// finds the files), and distinct names stay distinct (`fsutil::safe_file_name`).
fn dump_paths(dir: &Path, dataset: &str, model: &str, split: &str) -> (PathBuf, PathBuf) {
    let safe = mixco_data::fsutil::safe_file_name;
    let (model, dataset) = (safe(model), safe(dataset));
    (dir.join(format!("{dataset}-{model}-{split}.npy")), dir.join(format!("{dataset}-{split}-labels.npy")))
}

/// One split's features and labels.
pub type Split = (Features, Vec<u32>);

/// Writes both splits into a dump folder (created if missing), atomically.
pub fn write_dump(dir: &Path, dataset: &str, model: &str, train: (&Features, &[u32]), test: (&Features, &[u32])) -> Result<(), mixco_data::Error> {
    std::fs::create_dir_all(dir).map_err(|e| mixco_data::Error::io(dir, e))?;
    for (split, (f, labels)) in [("train", train), ("test", test)] {
        let (features, labels_path) = dump_paths(dir, dataset, model, split);
        write_atomic(&features, &encode_f32(&[f.n, f.dim], &f.data))?;
        write_atomic(&labels_path, &encode_labels(labels))?;
    }
    Ok(())
}

/// Reads both splits of a dump folder: (train, test).
pub fn read_dump(dir: &Path, dataset: &str, model: &str) -> Result<(Split, Split), NpyError> {
    let split = |name: &str| -> Result<Split, NpyError> {
        let (features, labels_path) = dump_paths(dir, dataset, model, name);
        let (n, dim, data) = read_f32_2d(&features)?;
        let labels = read_labels(&labels_path)?;
        if labels.len() != n {
            return Err(NpyError { path: labels_path, problem: format!("{} labels for {n} feature rows", labels.len()) });
        }
        Ok((Features { data, n, dim }, labels))
    };
    Ok((split("train")?, split("test")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_does_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        let (f, l) = (dir.path().join("f.npy"), dir.path().join("l.npy"));
        std::fs::write(&f, encode_f32(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, -6.5])).unwrap();
        std::fs::write(&l, encode_labels(&[0, 7, 199])).unwrap();
        assert_eq!(read_f32_2d(&f).unwrap(), (2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, -6.5]));
        assert_eq!(read_labels(&l).unwrap(), vec![0, 7, 199]);
        assert_eq!(encode_f32(&[2, 3], &[0.0; 6]).len() % 64, 24 % 64, "64-byte aligned header");
        let err = |bytes: Vec<u8>| {
            std::fs::write(&f, bytes).unwrap();
            read_f32_2d(&f).unwrap_err().to_string()
        };
        // A header declaring far more data than the file has: no allocation, an error.
        assert!(err(encode("<f4", &[1 << 40, 128], &[0; 8])).contains("the file holds 8 bytes"));
        assert!(err(encode("<f4", &[usize::MAX, 3], &[])).contains("overflows"));
        assert!(err(encode("<f8", &[1, 1], &[0; 8])).contains("`<f8`"));
        assert!(err(encode("<f4", &[4], &[0; 16])).contains("expected 2 dimensions"));
        assert!(err(b"\x93NUMPY\x01\x00\xff\xff{".to_vec()).contains("longer than the file"));
        assert!(err(b"PK\x03\x04".to_vec()).contains("f.npy: not a .npy file"));
        std::fs::write(&l, encode("<i8", &[1], &(-3i64).to_le_bytes())).unwrap();
        assert!(read_labels(&l).unwrap_err().to_string().contains("label 0 is -3"));
        // Every truncation of a valid file is an error, never a panic.
        let good = encode_f32(&[3, 2], &[1.0; 6]);
        for cut in 0..good.len() {
            std::fs::write(&f, &good[..cut]).unwrap();
            assert!(read_f32_2d(&f).is_err(), "cut at {cut}");
        }
    }

    /// Mutated and truncated variants through both readers: `Ok` or a named error.
    #[test]
    fn mutated_files_never_panic() {
        use mixco_testkit::mutate::{budget, check_no_panic};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        let run = |name: &str, valid: Vec<u8>, seed, labels: bool| {
            check_no_panic(name, &valid, budget(2000), seed, |b| {
                std::fs::write(&path, b).unwrap();
                if labels { read_labels(&path).map(|_| ()) } else { read_f32_2d(&path).map(|_| ()) }
            });
        };
        run("features", encode_f32(&[5, 3], &[0.5; 15]), 1, false);
        run("labels", encode_labels(&[1, 2, 3, 4]), 2, true);
    }
}
