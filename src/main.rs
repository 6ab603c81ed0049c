//! `mixco`: the command line. It parses flags and hands them to the library
//! crates; every failure ends with `error: <file or field>: <problem>` and
//! exit code 1 (2 for bad usage).

mod cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "mixco",
    version,
    about = "Self-supervised visual representation learning with MixCo: data, training, export, evaluation",
    after_help = "Examples:\n  mixco data fetch cifar10\n  mixco data info cifar10\n  mixco data preview synthetic -o shapes.png\n  mixco train --dataset synthetic --arch resnet10 --width 16 --epochs 5 --mixco -o runs/demo\n  mixco export --onnx runs/demo/final.safetensors -o encoder.onnx --verify\n  mixco eval encoder.onnx --dataset synthetic\n  mixco zoo list"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Download, verify and inspect datasets.
    Data(cmd::data::DataArgs),
    /// Pre-train an encoder: MoCo-v2 or SimCLR, with or without MixCo (libtorch).
    #[cfg(feature = "train")]
    Train(Box<cmd::train::TrainArgs>),
    /// Turn a checkpoint into a verified ONNX encoder (no libtorch needed).
    Export(cmd::export::ExportArgs),
    /// Linear probe and kNN of an ONNX encoder (or checkpoint) against a random one.
    Eval(cmd::eval::EvalArgs),
    /// Measure speed: `mixco bench data`, `mixco bench train`.
    Bench(cmd::bench::BenchArgs),
    /// Pretrained encoders: list, pull, verify, path, import.
    Zoo(cmd::zoo::ZooArgs),
    /// Draw training logs (loss and kNN curves) as a PNG.
    Plot(cmd::plot::PlotArgs),
    /// Check that libtorch, CUDA and ONNX Runtime are found and load.
    Doctor,
}

/// glibc hands every activation-sized block (above a threshold it raises
/// only as it sees frees) back to the kernel with `munmap` or a heap trim,
/// so libtorch's CPU tensors page-fault afresh on every training step:
/// 3.5 million faults and ~25% of a ResNet-18 w16 step on this project's
/// VM (docs/BENCHMARKS.md). Serve blocks up to glibc's largest mmap
/// threshold from the heap and keep freed heap memory for the next step,
/// as a caching allocator would. `GLIBC_TUNABLES` or glibc's `MALLOC_*_`
/// variables, when set, win.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let user_set = std::env::vars_os().any(|(k, v)| {
            let k = k.to_string_lossy();
            k.starts_with("MALLOC_") || (k == "GLIBC_TUNABLES" && v.to_string_lossy().contains("malloc"))
        });
        if !user_set {
            // 32 MiB is the largest threshold glibc accepts on 64-bit.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
            }
        }
    }
}

fn main() -> ExitCode {
    keep_freed_memory();
    // `mixco data info … | head` should end quietly, like any Unix tool.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // A panic inside a library (libtorch reports errors such as running out
    // of GPU memory this way) still ends with one clear line and exit code 1.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("unknown panic");
        let at = info.location().map(|l| format!(" (at {}:{})", l.file(), l.line())).unwrap_or_default();
        eprintln!("error: internal error: {}{at}", msg.lines().next().unwrap_or(msg));
        std::process::exit(1);
    }));
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Data(args) => cmd::data::run(args),
        #[cfg(feature = "train")]
        Command::Train(args) => cmd::train::run(*args),
        Command::Export(args) => cmd::export::run(args),
        Command::Eval(args) => cmd::eval::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::Zoo(args) => cmd::zoo::run(args),
        Command::Plot(args) => cmd::plot::run(args),
        Command::Doctor => cmd::doctor::run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match hint(&e) {
                Some(h) => eprintln!("error: {}; {h}", message(&e)),
                None => eprintln!("error: {}", message(&e)),
            }
            ExitCode::FAILURE
        }
    }
}

/// What to run next, for the errors that have a command to suggest: a
/// missing dataset (fetch it), an unknown zoo model (list them).
fn hint(e: &anyhow::Error) -> Option<String> {
    match e.chain().find_map(|c| c.downcast_ref::<mixco_zoo::Error>()) {
        Some(mixco_zoo::Error::UnknownModel { .. }) => return Some("see `mixco zoo list`".into()),
        Some(mixco_zoo::Error::Untrusted { name, .. }) => return Some(format!("pull it with `mixco zoo pull {name} --trust-unverified` to trust it")),
        _ => {}
    }
    let missing = e.chain().find_map(|c| match c.downcast_ref::<mixco_data::Error>() {
        Some(m @ mixco_data::Error::Missing { .. }) => Some(m),
        #[cfg(feature = "train")]
        _ => match c.downcast_ref::<mixco_train::TrainError>() {
            Some(mixco_train::TrainError::Data(m @ mixco_data::Error::Missing { .. })) => Some(m),
            _ => None,
        },
        #[cfg(not(feature = "train"))]
        _ => None,
    })?;
    let mixco_data::Error::Missing { dataset, root, .. } = missing else { return None };
    Some(format!("run `mixco data fetch {dataset} --root {}` (or pass the right --root)", root.display()))
}

/// The error and its causes, `: `-joined as `{:#}` does, leaving out a cause
/// whose text the message already holds (our I/O errors show their OS
/// error, which is also their `source`: "(os error 28): ...(os error 28)").
fn message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn causes_already_in_the_message_are_not_repeated() {
        let disk = std::io::Error::from_raw_os_error(28);
        let e: anyhow::Error = mixco_data::Error::io("/out/last.safetensors", disk).into();
        assert_eq!(format!("{e:#}").matches("os error 28").count(), 2, "as anyhow prints it");
        let m = super::message(&e);
        assert_eq!(m.matches("os error 28").count(), 1, "{m}");
        assert!(m.starts_with("/out/last.safetensors: No space left on device"), "{m}");
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(super::message(&e), "outer: inner");
    }
}
