//! Device selection. libtorch's CUDA library is loaded at run time, so one
//! binary serves CPU-only machines and GPU machines alike.

use tch::Device;

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("device `{0}`: expected auto, cpu, cuda or cuda:N")]
    Unknown(String),
    #[error("device `{spec}`: CUDA is not available: {source}")]
    NoCuda { spec: String, source: CudaLoadError },
    #[error("device `{0}`: libtorch's CUDA library loaded but sees no GPU (driver missing?)")]
    NoGpu(String),
    #[error("device `{spec}`: only {count} GPU(s) present")]
    TooFew { spec: String, count: usize },
}

/// `libtorch_cuda.so` did not load; the loader's message.
#[derive(Debug, thiserror::Error)]
#[error("cannot load libtorch_cuda.so ({0}); put PyTorch 2.11's CUDA libraries on LD_LIBRARY_PATH")]
pub struct CudaLoadError(pub String);

/// Parses `auto`, `cpu`, `cuda` or `cuda:N`; `auto` picks CUDA when it loads.
pub fn select(spec: &str) -> Result<Device, DeviceError> {
    let spec = spec.trim().to_ascii_lowercase();
    match spec.as_str() {
        "cpu" => Ok(Device::Cpu),
        "auto" => Ok(if load_cuda().is_ok() && tch::Cuda::is_available() { Device::Cuda(0) } else { Device::Cpu }),
        s if s == "cuda" || s.starts_with("cuda:") => {
            let index: usize = match s.strip_prefix("cuda:") {
                Some(i) => i.parse().map_err(|_| DeviceError::Unknown(spec.clone()))?,
                None => 0,
            };
            load_cuda().map_err(|source| DeviceError::NoCuda { spec: spec.clone(), source })?;
            let count = tch::Cuda::device_count() as usize;
            if count == 0 {
                return Err(DeviceError::NoGpu(spec));
            }
            if index >= count {
                return Err(DeviceError::TooFew { spec, count });
            }
            Ok(Device::Cuda(index))
        }
        _ => Err(DeviceError::Unknown(spec)),
    }
}

/// dlopen()s `libtorch_cuda.so` (found through the binary's rpath or
/// LD_LIBRARY_PATH), which registers libtorch's CUDA backend.
pub fn load_cuda() -> Result<(), CudaLoadError> {
    use std::ffi::{CStr, CString};
    let name = CString::new("libtorch_cuda.so").unwrap();
    let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if handle.is_null() {
        let err = unsafe { libc::dlerror() };
        let msg = if err.is_null() { "unknown error".into() } else { unsafe { CStr::from_ptr(err) }.to_string_lossy().into_owned() };
        return Err(CudaLoadError(msg));
    }
    Ok(())
}
