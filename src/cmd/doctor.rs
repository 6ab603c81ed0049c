use anyhow::Result;

/// Reports where the native libraries come from and whether they load.
pub fn run() -> Result<()> {
    println!("mixco {}", env!("CARGO_PKG_VERSION"));
    // The wheel's launcher says which wheels run this binary.
    match std::env::var("MIXCO_WHEEL") {
        Ok(w) => println!("installed:    from the {w} wheel(s)"),
        Err(_) => println!("installed:    built from source"),
    }
    let mut ok = true;
    #[cfg(feature = "train")]
    {
        match loaded("libtorch_cpu.so") {
            Some(path) => println!("libtorch:     linked, loaded from {}", path),
            None => println!("libtorch:     linked (PyTorch 2.11 libraries)"),
        }
        match mixco_train::device::load_cuda() {
            Ok(()) if mixco_train::tch::Cuda::is_available() => {
                println!("CUDA:         available, {} device(s)", mixco_train::tch::Cuda::device_count())
            }
            Ok(()) => println!("CUDA:         libtorch_cuda loads, but no GPU is visible"),
            Err(e) => println!("CUDA:         not available ({e})"),
        }
        match mixco_train::dist::Dist::check_gloo() {
            Ok(()) => println!("distributed:  c10d Gloo works (TCPStore + ProcessGroupGloo, CPU and CUDA tensors); NCCL not built in"),
            Err(e) => {
                ok = false;
                println!("distributed:  error: c10d Gloo: {e}");
            }
        }
    }
    #[cfg(not(feature = "train"))]
    println!("libtorch:     not linked (built without the `train` feature)");
    match mixco_eval::runtime::library() {
        Ok((path, from)) => match mixco_eval::runtime::build_info() {
            Ok(info) => println!("ONNX Runtime: {} (from {from})\n              {info}", path.display()),
            Err(e) => {
                ok = false;
                println!("ONNX Runtime: error: {e}");
            }
        },
        Err(e) => {
            ok = false;
            println!("ONNX Runtime: error: {e}");
        }
    }
    if !ok {
        anyhow::bail!("a required library is missing (see above)");
    }
    Ok(())
}

/// Where a shared library this process loaded lives (from /proc/self/maps).
#[cfg(feature = "train")]
fn loaded(name: &str) -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().filter_map(|l| l.split_whitespace().nth(5)).find(|p| p.ends_with(&format!("/{name}"))).map(str::to_string)
}
