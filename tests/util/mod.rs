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

/// Standard output and standard error, one after the other.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// (standard output, standard error).
pub fn streams(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}
