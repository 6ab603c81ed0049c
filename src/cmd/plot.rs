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
    let (mut con, mut mix, mut knn, mut cos) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for path in &args.logs {
        let file = if path.is_dir() { path.join("log.jsonl") } else { path.clone() };
        let text = std::fs::read_to_string(&file).with_context(|| format!("{}", file.display()))?;
        let label = file.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| file.display().to_string());
        let (mut c, mut m, mut k, mut q) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).with_context(|| format!("{}: line {} is not JSON", file.display(), i + 1))?;
            let epoch = v["epoch"].as_f64().with_context(|| format!("{}: line {} has no `epoch`", file.display(), i + 1))?;
            if let Some(x) = v["loss_contrastive"].as_f64() {
                c.push((epoch, x));
            }
            if let Some(x) = v["loss_mix"].as_f64() {
                m.push((epoch, x));
            }
            if let Some(x) = v["knn_top1"].as_f64() {
                k.push((epoch, 100.0 * x));
            }
            if let Some(x) = v["query_cosine"].as_f64() {
                q.push((epoch, x));
            }
        }
        if c.is_empty() && k.is_empty() {
            bail!("{}: no epochs logged yet", file.display());
        }
        con.push(Line { label: label.clone(), points: c });
        if !m.is_empty() {
            mix.push(Line { label: label.clone(), points: m });
        }
        if !q.is_empty() {
            cos.push(Line { label: label.clone(), points: q });
        }
        knn.push(Line { label, points: k });
    }
    let mut panels = vec![("contrastive loss".to_string(), con)];
    if !mix.is_empty() {
        panels.push(("MixCo loss".to_string(), mix));
    }
    panels.push(("kNN top-1 (%)".to_string(), knn));
    if !cos.is_empty() {
        panels.push(("mean cosine between images".to_string(), cos));
    }
    let img = line_panels(&args.title, "epoch", &panels);
    mixco_data::fsutil::write_atomic(&args.output, &png_bytes(&img))?;
    println!("wrote {}", args.output.display());
    Ok(())
}
