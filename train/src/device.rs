//! Device selection. libtorch's CUDA library is loaded at run time, so one
//! binary serves CPU-only machines and GPU machines alike.

use tch::Device;

/// Parses `auto`, `cpu`, `cuda` or `cuda:N`; `auto` picks CUDA when it loads.
pub fn select(spec: &str) -> Result<Device, String> {
    let spec = spec.trim().to_ascii_lowercase();
    match spec.as_str() {
        "cpu" => Ok(Device::Cpu),
        "auto" => Ok(if load_cuda().is_ok() && tch::Cuda::is_available() { Device::Cuda(0) } else { Device::Cpu }),
        s if s == "cuda" || s.starts_with("cuda:") => {
            let index: usize = match s.strip_prefix("cuda:") {
                Some(i) => i.parse().map_err(|_| format!("device `{s}`: expected cuda:N"))?,
                None => 0,
            };
            load_cuda().map_err(|e| format!("device `{s}`: CUDA is not available: {e}"))?;
            let count = tch::Cuda::device_count() as usize;
            if count == 0 {
                return Err(format!("device `{s}`: libtorch's CUDA library loaded but sees no GPU (driver missing?)"));
            }
            if index >= count {
                return Err(format!("device `{s}`: only {count} GPU(s) present"));
            }
            Ok(Device::Cuda(index))
        }
        _ => Err(format!("device `{spec}`: expected auto, cpu, cuda or cuda:N")),
    }
}

/// dlopen()s `libtorch_cuda.so` (found through the binary's rpath or
/// LD_LIBRARY_PATH), which registers libtorch's CUDA backend.
pub fn load_cuda() -> Result<(), String> {
    use std::ffi::{CStr, CString};
    let name = CString::new("libtorch_cuda.so").unwrap();
    let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if handle.is_null() {
        let err = unsafe { libc::dlerror() };
        let msg = if err.is_null() { "unknown error".into() } else { unsafe { CStr::from_ptr(err) }.to_string_lossy().into_owned() };
        return Err(format!("cannot load libtorch_cuda.so ({msg}); put PyTorch 2.11's CUDA libraries on LD_LIBRARY_PATH"));
    }
    Ok(())
}
