// Compiles the c10d shim (csrc/dist.cpp) against the headers of the libtorch
// that torch-sys links (its lib folder's sibling `include`), with the flags
// torch-sys builds its own C++ with; the symbols come from libtorch_cpu.so,
// which torch-sys already links. An rpath to that libtorch lets the crate's
// tests and examples run without LD_LIBRARY_PATH.
fn main() {
    println!("cargo:rerun-if-changed=csrc");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let lib = std::path::PathBuf::from(std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys reports its libtorch (DEP_TCH_LIBTORCH_LIB)"));
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    let include = lib.parent().expect("libtorch/lib has a parent").join("include");
    cc::Build::new()
        .cpp(true)
        .file("csrc/dist.cpp")
        .include("csrc/gloo-stub")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .define("USE_C10D_GLOO", None)
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-deprecated-declarations")
        .warnings(false)
        .compile("mixco_dist");
}
