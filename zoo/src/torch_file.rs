//! PyTorch's `torch.save` files, in both of its formats (the table
//! [`FORMATS`]): the zip format of torch >= 1.6 (the pickle in
//! `ARCHIVE/data.pkl`, storages in `ARCHIVE/data/KEY`) and the legacy format
//! that torch < 1.6 wrote and `_use_new_zipfile_serialization=False` still
//! writes (pickles in a row, then the storages' raw bytes). Pickles are read
//! with [`crate::pickle`]; tensors are converted to f32 (floats) or i64 (ints).

use crate::ReadError;
use crate::pickle::{self, Dtype, TensorRef, Value};
use mixco_model::checkpoint::HostTensor;
use std::collections::HashMap;
use std::io::Read;

/// The unpickled object and the raw storages it refers to.
#[derive(Debug)]
pub struct TorchFile {
    pub root: Value,
    storages: HashMap<String, Vec<u8>>,
}

/// One of `torch.save`'s formats: its name, how its first bytes look, its reader.
pub struct Format {
    pub name: &'static str,
    pub detect: fn(&[u8]) -> bool,
    pub read: fn(&[u8]) -> Result<TorchFile, ReadError>,
}

/// The formats read, tried in order; the last one's error is reported for
/// a file none of them recognises.
pub const FORMATS: &[Format] = &[
    Format { name: "legacy", detect: |b| b.first() == Some(&0x80), read: read_legacy },
    Format { name: "zip", detect: |_| true, read: read_zip },
];

/// Whether a file's first bytes can be a torch.save file: a zip archive, or
/// the legacy format's first pickle (protocol 2 or later).
pub fn looks_like_torch_save(head: &[u8]) -> bool {
    head.starts_with(b"PK\x03\x04") || (head.first() == Some(&0x80) && head.get(1).is_some_and(|&p| (2..=5).contains(&p)))
}

/// Reads a `torch.save` file from memory. Errors are sentences without the file name.
pub fn read(bytes: &[u8]) -> Result<TorchFile, ReadError> {
    Ok(read_with_format(bytes)?.0)
}

/// The file and the name of its format.
pub fn read_with_format(bytes: &[u8]) -> Result<(TorchFile, &'static str), ReadError> {
    if bytes.get(257..262) == Some(b"ustar") {
        return Err("this is the tar format of PyTorch < 0.4, which mixco does not read; \
                    re-save it with torch.save in PyTorch 1.x or later".into());
    }
    let format = FORMATS.iter().find(|f| (f.detect)(bytes)).expect("the last format accepts any file");
    Ok(((format.read)(bytes)?, format.name))
}

/// `torch.serialization.MAGIC_NUMBER` and `PROTOCOL_VERSION` of the legacy format.
const LEGACY_MAGIC: i128 = 0x1950a86a20f9469cfc6c;
const LEGACY_PROTOCOL: i64 = 1001;

/// The legacy format (`torch/serialization.py`, `_legacy_save`): pickles of
/// the magic number, the protocol version, the system info and the object
/// (storages as persistent ids), a pickled list of storage keys, then for
/// each key its element count (little-endian int64) and its raw bytes.
fn read_legacy(bytes: &[u8]) -> Result<TorchFile, ReadError> {
    let mut pos = 0;
    let mut next = |what: &str| -> Result<pickle::Loaded, ReadError> {
        let loaded = pickle::load_prefix(&bytes[pos..]).map_err(|e| format!("PyTorch's legacy format, its {what}: {e}"))?;
        pos += loaded.len;
        Ok(loaded)
    };
    if next("magic number").ok().map(|l| l.value) != Some(Value::BigInt(LEGACY_MAGIC)) {
        return Err("not a PyTorch checkpoint: a pickle without torch.save's magic number".into());
    }
    match next("protocol version")?.value {
        Value::Int(LEGACY_PROTOCOL) => {}
        v => return Err(format!("PyTorch's legacy format of protocol {v:?}; only {LEGACY_PROTOCOL} is read").into()),
    }
    if next("system info")?.value.get("little_endian") == Some(&Value::Bool(false)) {
        return Err("the tensors are stored big-endian; only little-endian files are read".into());
    }
    let object = next("object")?;
    let keys = match next("list of storage keys")?.value {
        Value::List(keys) => keys,
        v => return Err(format!("PyTorch's legacy format: the storage keys are a {v:?}, not a list").into()),
    };
    // Each storage the object named, by key (first naming wins; views share it).
    let mut named: HashMap<&str, &pickle::StorageRef> = HashMap::new();
    for s in &object.storages {
        named.entry(s.key.as_str()).or_insert(s);
    }
    let mut storages = HashMap::new();
    for key in keys {
        let Value::Str(key) = key else { return Err("PyTorch's legacy format: a storage key that is not a string".into()) };
        let s = *named.get(key.as_str()).ok_or_else(|| format!("the file stores storage {key}, which no tensor names"))?;
        let count = bytes.get(pos..pos + 8).ok_or_else(|| format!("the file ends before storage {key}"))?;
        let count = u64::from_le_bytes(count.try_into().unwrap());
        if count != s.stored as u64 {
            return Err(format!("storage {key} holds {count} elements, not the {} its tensors name", s.stored).into());
        }
        let len = s.stored.checked_mul(s.dtype.size()).filter(|&n| n <= bytes.len() - pos - 8);
        let len = len.ok_or_else(|| format!("the file ends inside storage {key} ({count} elements)"))?;
        storages.insert(key, bytes[pos + 8..pos + 8 + len].to_vec());
        pos += 8 + len;
    }
    Ok(TorchFile { root: object.value, storages })
}

/// The zip format: `ARCHIVE/data.pkl`, `ARCHIVE/data/KEY`, `ARCHIVE/byteorder`.
fn read_zip(bytes: &[u8]) -> Result<TorchFile, ReadError> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a PyTorch checkpoint (expected the zip format of torch.save): {e}"))?;
    let names: Vec<String> = zip.file_names().map(String::from).collect();
    let pkl = names
        .iter()
        .find(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
        .ok_or("not a PyTorch checkpoint: the zip holds no ARCHIVE/data.pkl")?
        .clone();
    let prefix = pkl.trim_end_matches("data.pkl").to_string();
    let file_len = bytes.len() as u64;
    let mut read_entry = |name: &str| -> Result<Vec<u8>, ReadError> {
        let f = zip.by_name(name).map_err(|e| format!("zip entry {name}: {e}"))?;
        let (size, packed) = (f.size(), f.compressed_size());
        // The sizes are untrusted header fields: nothing is allocated from
        // them that the file itself could not hold (deflate expands at most
        // 1032:1; torch.save stores entries uncompressed).
        if packed > file_len || size > packed.saturating_mul(1032) {
            return Err(format!("zip entry {name} declares {size} bytes ({packed} compressed) in a file of {file_len} bytes").into());
        }
        let mut out = Vec::with_capacity(size.min(file_len) as usize);
        f.take(size).read_to_end(&mut out).map_err(|e| format!("zip entry {name}: {e}"))?;
        if out.len() as u64 != size {
            return Err(format!("zip entry {name} holds {} bytes, not the {size} its header declares", out.len()).into());
        }
        Ok(out)
    };
    if names.contains(&format!("{prefix}byteorder")) {
        let order = read_entry(&format!("{prefix}byteorder"))?;
        if order != b"little" {
            return Err(format!("the tensors are stored {}-endian; only little-endian files are read", String::from_utf8_lossy(&order)).into());
        }
    }
    let root = pickle::load(&read_entry(&pkl)?)?;
    let mut storages = HashMap::new();
    for name in &names {
        if let Some(key) = name.strip_prefix(&format!("{prefix}data/")) {
            storages.insert(key.to_string(), read_entry(name)?);
        }
    }
    Ok(TorchFile { root, storages })
}

impl TorchFile {
    /// Copies a tensor out of its storage (any strides), as f32 or i64.
    pub fn tensor(&self, t: &TensorRef) -> Result<HostTensor, ReadError> {
        let s = &t.storage;
        let raw = self.storages.get(&s.key).ok_or_else(|| format!("storage {} is missing from the archive", s.key))?;
        let size = s.dtype.size();
        if s.stored.checked_mul(size).is_none_or(|bytes| raw.len() < bytes) || s.base.checked_add(s.numel).is_none_or(|end| end > s.stored) {
            return Err(format!("storage {} holds {} bytes, fewer than its {} elements", s.key, raw.len(), s.stored).into());
        }
        // Shapes, strides and offsets are untrusted: checked arithmetic, and
        // no view larger than its storage (a checkpoint's never is; zero
        // strides could otherwise make a one-element storage ask for 2^60).
        let past = || format!("a tensor of shape {:?} (strides {:?}) reaches past the end of storage {}", t.shape, t.stride, s.key);
        let numel = t.shape.iter().try_fold(1usize, |a, &n| a.checked_mul(n)).ok_or_else(past)?;
        if numel > s.numel {
            return Err(past().into());
        }
        if numel > 0 {
            let span = t.shape.iter().zip(&t.stride).try_fold(t.offset, |a, (n, st)| (n - 1).checked_mul(*st).and_then(|x| a.checked_add(x)));
            if span.is_none_or(|last| last >= s.numel) {
                return Err(past().into());
            }
        }
        // Element indices in row-major order of the view.
        let mut index = Vec::with_capacity(numel);
        let mut pos = vec![0usize; t.shape.len()];
        for _ in 0..numel {
            index.push(t.offset + pos.iter().zip(&t.stride).map(|(p, s)| p * s).sum::<usize>());
            for d in (0..pos.len()).rev() {
                pos[d] += 1;
                if pos[d] < t.shape[d] {
                    break;
                }
                pos[d] = 0;
            }
        }
        // A legacy view of a storage starts `base` elements into it.
        let at = |i: usize| &raw[(s.base + i) * size..(s.base + i + 1) * size];
        let shape = t.shape.clone();
        Ok(match s.dtype {
            Dtype::F32 => HostTensor::f32(shape, index.iter().map(|&i| f32::from_le_bytes(at(i).try_into().unwrap())).collect()),
            Dtype::F64 => HostTensor::f32(shape, index.iter().map(|&i| f64::from_le_bytes(at(i).try_into().unwrap()) as f32).collect()),
            Dtype::F16 => HostTensor::f32(shape, index.iter().map(|&i| f16_to_f32(u16::from_le_bytes(at(i).try_into().unwrap()))).collect()),
            Dtype::BF16 => HostTensor::f32(shape, index.iter().map(|&i| f32::from_bits((u16::from_le_bytes(at(i).try_into().unwrap()) as u32) << 16)).collect()),
            Dtype::I64 => HostTensor::i64(shape, index.iter().map(|&i| i64::from_le_bytes(at(i).try_into().unwrap())).collect()),
            Dtype::I32 => HostTensor::i64(shape, index.iter().map(|&i| i32::from_le_bytes(at(i).try_into().unwrap()) as i64).collect()),
            Dtype::I16 => HostTensor::i64(shape, index.iter().map(|&i| i16::from_le_bytes(at(i).try_into().unwrap()) as i64).collect()),
            Dtype::I8 => HostTensor::i64(shape, index.iter().map(|&i| at(i)[0] as i8 as i64).collect()),
            Dtype::U8 | Dtype::Bool => HostTensor::i64(shape, index.iter().map(|&i| at(i)[0] as i64).collect()),
        })
    }
}

/// IEEE half to single precision (subnormals, infinities and NaN included).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // subnormal: renormalise
            let shift = f.leading_zeros() - 21;
            sign | ((127 - 15 + 1 - shift) << 23) | ((f << shift) & 0x3ff) << 13
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 127 - 15) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_values() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8); // smallest subnormal, 2^-24
        assert_eq!(f16_to_f32(0x03ff), 6.097_555e-5); // largest subnormal
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
    }

    #[test]
    fn not_a_checkpoint() {
        assert!(read(b"hello").unwrap_err().0.starts_with("not a PyTorch checkpoint"));
        assert!(read(b"\x80\x02\x8a\x0alegacy").unwrap_err().0.contains("magic number"));
    }

    /// A stored (uncompressed) zip of `entries`, as torch.save writes it.
    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        use std::io::Write;
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        for (name, data) in entries {
            w.start_file(*name, opts).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn declared_sizes_larger_than_the_file_are_refused_before_allocating() {
        let pkl: &[u8] = b"\x80\x02}q\x00.";
        let good = zip_of(&[("archive/data.pkl", pkl)]);
        assert!(read(&good).is_ok());
        // Patch the central directory's uncompressed size to ~4 GiB (the
        // file is a few hundred bytes): once aborted allocating it.
        let mut bad = good.clone();
        let cd = bad.windows(4).rposition(|w| w == b"PK\x01\x02").unwrap();
        bad[cd + 24..cd + 28].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
        let e = read(&bad).unwrap_err().0;
        assert!(e.contains("archive/data.pkl declares 4294967280 bytes"), "{e}");
        // A declared size smaller than the data is cut, and said so.
        let mut short = good.clone();
        short[cd + 24..cd + 28].copy_from_slice(&3u32.to_le_bytes());
        assert!(read(&short).is_err());
    }

    #[test]
    fn deep_nesting_in_the_pickle_is_a_named_error() {
        // 200,000 nested lists: overflowed the stack (when dropped) before.
        let mut pkl = b"\x80\x02".to_vec();
        pkl.extend(std::iter::repeat_n(b']', 200_000));
        pkl.extend(std::iter::repeat_n(b'a', 199_999));
        pkl.push(b'.');
        let e = read(&zip_of(&[("archive/data.pkl", &pkl)])).unwrap_err().0;
        assert!(e.contains("nests containers more than 1000 deep"), "{e}");
    }

    #[test]
    fn tensor_views_are_checked_before_allocating() {
        let file = TorchFile { root: Value::None, storages: HashMap::from([("0".to_string(), vec![0u8; 8])]) };
        let storage = pickle::StorageRef { dtype: Dtype::F32, key: "0".into(), numel: 2, base: 0, stored: 2 };
        let view = |shape: Vec<usize>, stride: Vec<usize>, offset| TensorRef { storage: storage.clone(), offset, shape, stride };
        assert_eq!(file.tensor(&view(vec![2], vec![1], 0)).unwrap().shape, vec![2]);
        // Zero strides over a 2-element storage asking for 2^62 elements:
        // once a capacity overflow / allocation abort.
        let e = file.tensor(&view(vec![1 << 31, 1 << 31], vec![0, 0], 0)).unwrap_err().0;
        assert!(e.contains("reaches past the end of storage 0"), "{e}");
        // A shape whose product overflows, a span that overflows, an offset past the end.
        for (shape, stride, offset) in [(vec![usize::MAX / 2, 3], vec![1, 1], 0), (vec![2], vec![usize::MAX], 0), (vec![1], vec![1], 2)] {
            assert!(file.tensor(&view(shape, stride, offset)).is_err());
        }
        // A storage that declares more elements than its bytes.
        let big = pickle::StorageRef { numel: usize::MAX, stored: usize::MAX, ..storage.clone() };
        assert!(file.tensor(&TensorRef { storage: big, offset: 0, shape: vec![1], stride: vec![1] }).is_err());
    }
}
