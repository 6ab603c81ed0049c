use anyhow::{bail, Result};
use clap::Args;
use mixco_data::fsutil::{read_file, sha256_hex, write_atomic};
use mixco_export::{export, ExportError, ExportOptions};
use mixco_model::Checkpoint;
use std::path::PathBuf;

#[derive(Args)]
#[command(after_help = "Examples:
  mixco export --onnx runs/demo/final.safetensors -o encoder.onnx --verify
  mixco export --onnx runs/demo/final.safetensors -o encoder-head.onnx --head

The model takes `images` (float32 NCHW in [0, 1], any batch size) and outputs
`features` (and `projection` with --head); normalisation is inside the graph,
batch norm is folded into the convolutions, metadata_props describe the model.")]
pub struct ExportArgs {
    /// The checkpoint (.safetensors, or zoo:NAME) to export as ONNX.
    #[arg(long = "onnx", value_name = "CHECKPOINT")]
    checkpoint: String,
    /// Output .onnx file (written atomically).
    #[arg(short, long)]
    output: PathBuf,
    /// Include the projection head (output `projection`).
    #[arg(long)]
    head: bool,
    /// ONNX opset (17 to 22).
    #[arg(long, default_value_t = 17)]
    opset: i64,
    /// Run the model with ONNX Runtime and compare with the libtorch forward
    /// pass on random batches of 1 and 7 images; fail when the largest
    /// difference exceeds --tolerance × max(1, largest |output|).
    #[arg(long)]
    verify: bool,
    #[arg(long, default_value_t = 1e-4)]
    tolerance: f64,
}

pub fn run(mut args: ExportArgs) -> Result<()> {
    let path = mixco_zoo::resolve(&args.checkpoint, mixco_zoo::FileKind::Checkpoint, super::zoo::tell)?;
    args.checkpoint = path.display().to_string();
    let checkpoint = path;
    let bytes = read_file(&checkpoint)?;
    let sha = sha256_hex(&bytes);
    let ck = Checkpoint::encoder_from_bytes(&checkpoint, &bytes)?;
    let t = std::time::Instant::now();
    let model = export(&ck, &checkpoint, &sha, &ExportOptions { head: args.head, opset: args.opset }).map_err(|e| match e {
        ExportError::Opset(n) => anyhow::anyhow!("--opset {n}: supported opsets are 17 to 22"),
        ExportError::NoHead(p) => anyhow::anyhow!("{}: --head asked for, but the checkpoint has no projection head (e.g. an imported classifier backbone)", p.display()),
        e => e.into(),
    })?;
    let built = t.elapsed();
    if args.verify {
        verify(&args, &ck, &model)?;
    }
    write_atomic(&args.output, &model.bytes)?;
    println!(
        "wrote {} ({:.1} MB, opset {}, outputs {}) in {:.2} s",
        args.output.display(),
        model.bytes.len() as f64 / 1e6,
        args.opset,
        model.outputs.iter().map(|(n, d)| format!("{n}[{d}]")).collect::<Vec<_>>().join(", "),
        built.as_secs_f64()
    );
    Ok(())
}

#[cfg(feature = "train")]
fn verify(args: &ExportArgs, ck: &Checkpoint, model: &mixco_export::Exported) -> Result<()> {
    let name = args.output.display();
    let checked = mixco_train::reference::verify_export(ck, std::path::Path::new(&args.checkpoint), &model.bytes, model.input_size, args.head, args.tolerance)
        .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    for c in &checked {
        println!("verify: batch {}, `{}`: max |ONNX Runtime - libtorch| = {:.2e} (max |libtorch| = {:.2e})", c.batch, c.output, c.max_diff, c.max_abs);
        if !c.passed() {
            bail!("{name}: verification failed: `{}` differs from libtorch by {:.2e} (> {:.1e}); nothing written", c.output, c.max_diff, c.allowed);
        }
    }
    Ok(())
}

#[cfg(not(feature = "train"))]
fn verify(_: &ExportArgs, _: &Checkpoint, _: &mixco_export::Exported) -> Result<()> {
    bail!("--verify compares against libtorch's forward pass and needs a build with the `train` feature (the default); nothing written")
}

