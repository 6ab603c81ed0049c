// With the `train` feature the binary links libtorch; an rpath to the libtorch
// that torch-sys built against lets it run without LD_LIBRARY_PATH.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    {
        if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        }
    }
}
