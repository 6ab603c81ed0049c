use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
#[command(after_help = "Examples:
  mixco plot runs/demo/log.jsonl -o curves.png
  mixco plot runs/moco/log.jsonl runs/mixco/log.jsonl -o compare.png

Panels: the contrastive loss, the MixCo loss (when any run has one), the
kNN top-1 of the monitor and the collapse monitor (mean cosine similarity
between the projections of different images; older logs lack it), per
epoch; one colour per run (its folder name).")]
pub struct PlotArgs {
    /// Training logs (`log.jsonl` in a run folder), or run folders.
    #[arg(required = true)]
    logs: Vec<PathBuf>,
    /// Output PNG (written atomically).
    #[arg(short, long)]
    output: PathBuf,
    #[arg(long, default_value = "training curves")]
    title: String,
}

pub fn run(args: PlotArgs) -> Result<()> {
    use mixco_eval::chart::{line_panels, png_bytes, Line};
    // (panel title, log field, scale, drawn even when no run logged it)
    const SERIES: [(&str, &str, f64, bool); 4] = [
        ("contrastive loss", "loss_contrastive", 1.0, true),
        ("MixCo loss", "loss_mix", 1.0, false),
        ("kNN top-1 (%)", "knn_top1", 100.0, true),
        ("mean cosine between images", "query_cosine", 1.0, false),
    ];
    let mut panels: Vec<(String, Vec<Line>)> = SERIES.iter().map(|s| (s.0.to_string(), Vec::new())).collect();
    for path in &args.logs {
        let file = if path.is_dir() { path.join("log.jsonl") } else { path.clone() };
        let text = std::fs::read_to_string(&file).with_context(|| format!("{}", file.display()))?;
        let label = file.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| file.display().to_string());
        let mut points = vec![Vec::new(); SERIES.len()];
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).with_context(|| format!("{}: line {} is not JSON", file.display(), i + 1))?;
            let epoch = v["epoch"].as_f64().with_context(|| format!("{}: line {} has no `epoch`", file.display(), i + 1))?;
            for ((_, field, scale, _), pts) in SERIES.iter().zip(&mut points) {
                if let Some(x) = v[*field].as_f64() {
                    pts.push((epoch, scale * x));
                }
            }
        }
        if SERIES.iter().zip(&points).all(|(s, pts)| !s.3 || pts.is_empty()) {
            bail!("{}: no epochs logged yet", file.display());
        }
        for ((s, pts), panel) in SERIES.iter().zip(points).zip(&mut panels) {
            if s.3 || !pts.is_empty() {
                panel.1.push(Line { label: label.clone(), points: pts });
            }
        }
    }
    let panels: Vec<_> = panels.into_iter().zip(SERIES).filter(|((_, lines), s)| s.3 || !lines.is_empty()).map(|(p, _)| p).collect();
    let img = line_panels(&args.title, "epoch", &panels);
    mixco_data::fsutil::write_atomic(&args.output, &png_bytes(&img))?;
    println!("wrote {}", args.output.display());
    Ok(())
}
