//! PyTorch's `torch.save` files (the zip format of torch >= 1.6): the pickle
//! in `ARCHIVE/data.pkl` is read with [`crate::pickle`] and tensors are
//! copied out of `ARCHIVE/data/KEY`, converted to f32 (floats) or i64 (ints).

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

/// Reads a `torch.save` file from memory. Errors are sentences without the file name.
pub fn read(bytes: &[u8]) -> Result<TorchFile, String> {
    if bytes.len() > 2 && bytes[0] == 0x80 && bytes[1] == 0x02 {
        return Err("this is PyTorch's legacy (pre-1.6, non-zip) format, which mixco does not read; \
                    re-save it with `torch.save(torch.load(f, weights_only=True), g)` in a recent PyTorch"
            .into());
    }
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a PyTorch checkpoint (expected the zip format of torch.save): {e}"))?;
    let names: Vec<String> = zip.file_names().map(String::from).collect();
    let pkl = names
        .iter()
        .find(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
        .ok_or("not a PyTorch checkpoint: the zip holds no ARCHIVE/data.pkl")?
        .clone();
    let prefix = pkl.trim_end_matches("data.pkl").to_string();
    let mut read_entry = |name: &str| -> Result<Vec<u8>, String> {
        let mut f = zip.by_name(name).map_err(|e| format!("zip entry {name}: {e}"))?;
        let mut out = Vec::with_capacity(f.size() as usize);
        f.read_to_end(&mut out).map_err(|e| format!("zip entry {name}: {e}"))?;
        Ok(out)
    };
    if names.contains(&format!("{prefix}byteorder")) {
        let order = read_entry(&format!("{prefix}byteorder"))?;
        if order != b"little" {
            return Err(format!("the tensors are stored {}-endian; only little-endian files are read", String::from_utf8_lossy(&order)));
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
    pub fn tensor(&self, t: &TensorRef) -> Result<HostTensor, String> {
        let s = &t.storage;
        let raw = self.storages.get(&s.key).ok_or_else(|| format!("storage {} is missing from the archive", s.key))?;
        let size = s.dtype.size();
        if raw.len() < s.numel * size {
            return Err(format!("storage {} holds {} bytes, fewer than its {} elements", s.key, raw.len(), s.numel));
        }
        let numel: usize = t.shape.iter().product();
        if numel > 0 {
            let last = t.offset + t.shape.iter().zip(&t.stride).map(|(n, s)| (n - 1) * s).sum::<usize>();
            if last >= s.numel {
                return Err(format!("a tensor of shape {:?} reaches past the end of storage {}", t.shape, s.key));
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
        let at = |i: usize| &raw[i * size..(i + 1) * size];
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
        assert!(read(b"hello").unwrap_err().starts_with("not a PyTorch checkpoint"));
        assert!(read(b"\x80\x02\x8a\x0alegacy").unwrap_err().contains("legacy"));
    }
}
