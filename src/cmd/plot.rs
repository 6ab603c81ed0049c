use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
#[command(after_help = "Examples:
  mixco plot runs/demo/log.jsonl -o curves.png
  mixco plot runs/moco/log.jsonl runs/mixco/log.jsonl -o compare.png

Panels: the contrastive loss, the MixCo loss (when any run has one), the
kNN top-1 of the monitor and the collapse monitor (mean cosine similarity
between the projections of different images; older logs lack it), per
epoch; one colour per run (its folder name), with a legend. The PNG is
drawn at twice the layout's size for print; the SVG (text as outlines, in
DejaVu Sans) is for papers.")]
pub struct PlotArgs {
    /// Training logs (`log.jsonl` in a run folder), or run folders.
    #[arg(required = true)]
    logs: Vec<PathBuf>,
    /// Output PNG; the SVG is written beside it (`compare.png` and
    /// `compare.svg`; naming the .svg works too). Both written atomically.
    #[arg(short, long)]
    output: PathBuf,
    #[arg(long, default_value = "training curves")]
    title: String,
}

pub fn run(args: PlotArgs) -> Result<()> {
    use mixco_eval::chart::{has_curves, training_curves};
    let mut runs = Vec::new();
    for path in &args.logs {
        let file = if path.is_dir() { path.join(mixco_model::run::LOG_FILE) } else { path.clone() };
        let log = mixco_model::run::read_log(&file)?;
        if !has_curves(&log) {
            bail!("{}: no epochs logged yet", file.display());
        }
        let label = match file.parent().filter(|p| p.file_name().is_some()) {
            Some(dir) => mixco_model::run::run_name(dir),
            None => file.display().to_string(),
        };
        runs.push((label, log));
    }
    for path in training_curves(&args.title, &runs).write(&args.output)? {
        println!("wrote {}", path.display());
    }
    Ok(())
}
