//! The one harness of the CLI tests (as ripgrep's `tests/util.rs`): the
//! binary with the environment that would leak a user's settings removed,
//! and its output as text.
#![allow(dead_code)] // each test file uses some of it

use std::process::{Command, Output};

/// `mixco` with no data root or zoo manifest from the environment.
pub fn command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mixco"));
    c.env_remove("MIXCO_DATA").env_remove("MIXCO_ZOO_MANIFEST");
    c
}

/// Runs `mixco ARGS` to the end.
pub fn mixco(args: &[&str]) -> Output {
    command().args(args).output().unwrap()
}

/// Runs `scripts/SCRIPT ARGS` with the project venv's Python (TensorBoard's
/// reader, resvg: the independent checks of what mixco writes) and returns
/// its standard output; None, with a message, where the venv or `module`
/// is absent. A failure of the script itself fails the test.
pub fn venv_script(script: &str, args: &[&std::ffi::OsStr], module: &str) -> Option<Vec<u8>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let py = root.join(".venv/bin/python");
    match Command::new(&py).arg(root.join("scripts").join(script)).args(args).output() {
        Ok(o) if o.status.success() => Some(o.stdout),
        Ok(o) if String::from_utf8_lossy(&o.stderr).contains(&format!("No module named '{module}'")) => {
            eprintln!("skipped: {} has no {module} (make venv installs it from requirements.txt)", py.display());
            None
        }
        Ok(o) => panic!("{script} failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => {
            eprintln!("skipped: no project venv at {} ({e})", py.display());
            None
        }
    }
}

/// Standard output and standard error, one after the other.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// (standard output, standard error).
pub fn streams(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// The largest difference between two checkpoints' float tensors, as
/// |x - y| / |x| over each tensor (L2), and the tensor's name (their names
/// must agree).
pub fn checkpoint_difference(a: &std::path::Path, b: &std::path::Path) -> (f64, String) {
    let (a, b) = (mixco_model::Checkpoint::load(a).unwrap(), mixco_model::Checkpoint::load(b).unwrap());
    assert_eq!(a.tensors.keys().collect::<Vec<_>>(), b.tensors.keys().collect::<Vec<_>>(), "the same tensors");
    let mut worst = (0.0, String::new());
    for (name, x) in &a.tensors {
        let (Some(x), Some(y)) = (x.as_f32(), b.tensors[name].as_f32()) else { continue };
        let norm = x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt().max(1e-6);
        let d = x.iter().zip(y).map(|(p, q)| ((p - q) as f64).powi(2)).sum::<f64>().sqrt() / norm;
        if d > worst.0 {
            worst = (d, name.clone());
        }
    }
    worst
}
