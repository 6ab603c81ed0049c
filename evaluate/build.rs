// Records where ONNX Runtime was at build time: $MIXCO_ORT_LIB if set, else
// the onnxruntime wheel in the project's .venv. Run time can override it.
use std::path::{Path, PathBuf};

fn venv_library(workspace: &Path) -> Option<PathBuf> {
    let lib = workspace.join(".venv/lib");
    std::fs::read_dir(&lib).ok()?.flatten().find_map(|e| {
        let p = e.path().join("site-packages/onnxruntime/capi/libonnxruntime.so.1.31.1");
        p.is_file().then_some(p)
    })
}

fn main() {
    println!("cargo:rerun-if-env-changed=MIXCO_ORT_LIB");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest.parent().unwrap();
    println!("cargo:rerun-if-changed={}", workspace.join(".venv/lib").display());
    let found = std::env::var_os("MIXCO_ORT_LIB").map(PathBuf::from).or_else(|| venv_library(workspace));
    println!("cargo:rustc-env=MIXCO_ORT_DEFAULT={}", found.map(|p| p.display().to_string()).unwrap_or_default());
}
