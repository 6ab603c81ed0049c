use anyhow::{bail, Result};
use clap::Args;
use mixco_eval::features::{extract, Features, RESIZE_POLICY};
use mixco_eval::probe::{linear_probe, ProbeResult};
use mixco_eval::session::OnnxModel;
use mixco_eval::EncoderModel;
use serde::Serialize;
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Args)]
#[command(after_help = "Examples:
  mixco eval encoder.onnx --dataset synthetic
  mixco eval runs/demo/final.safetensors --dataset cifar10 --root DATA --json results.json

Every result is shown next to a randomly initialised encoder of the same
architecture (--baseline none to skip it).")]
pub struct EvalArgs {
    /// An ONNX encoder exported by mixco, or a .safetensors checkpoint (exported on the fly).
    model: PathBuf,
    #[command(flatten)]
    data: super::data::DatasetFlag,
    /// random (an encoder of the same architecture at its initialisation) or none.
    #[arg(long, default_value = "random")]
    baseline: String,
    /// Also write the results as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// ONNX Runtime intra-op threads (0 = its default).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Images per ONNX Runtime call.
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Feature cache (default: $MIXCO_CACHE/features, else ~/.cache/mixco/features).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Always run the encoder; neither read nor write the feature cache.
    #[arg(long)]
    no_cache: bool,
}


#[derive(Serialize)]
struct ModelResult {
    model: String,
    sha256: String,
    linear: ProbeResult,
    knn_top1: Vec<(usize, f64)>,
    /// Wall time of feature extraction (both splits), kNN and the probe.
    seconds: Timings,
}

#[derive(Serialize)]
struct Timings {
    features: f64,
    knn: f64,
    probe: f64,
}

#[derive(Serialize)]
struct Report {
    dataset: String,
    train_images: usize,
    test_images: usize,
    resize_policy: &'static str,
    results: Vec<ModelResult>,
}

fn features(model: &EncoderModel, set: &mixco_data::ImageSet, args: &EvalArgs, what: &str) -> Result<Features> {
    let cache = (!args.no_cache).then(|| args.cache_dir.clone().unwrap_or_else(mixco_eval::cache::default_dir));
    let key = mixco_eval::cache::Key {
        model_sha256: model.sha256.clone(),
        split_fingerprint: set.fingerprint(),
        input_size: model.input_size,
        resize_policy: RESIZE_POLICY.to_string(),
    };
    if let Some(dir) = &cache {
        if let Some(f) = mixco_eval::cache::load(dir, &key, set.len()) {
            eprintln!("{} {what}: features read from the cache", model.name);
            return Ok(f);
        }
    }
    let (threads, batch) = (args.threads, args.batch_size);
    let mut onnx = OnnxModel::from_bytes(&model.name, &model.bytes, threads)?;
    let pb = if std::io::stderr().is_terminal() { indicatif::ProgressBar::new(set.len() as u64) } else { indicatif::ProgressBar::hidden() };
    pb.set_style(indicatif::ProgressStyle::with_template("{msg} [{bar:25}] {pos}/{len} {per_sec} eta {eta}").unwrap().progress_chars("=> "));
    pb.set_message(format!("{} {what}", model.name));
    let f = extract(&mut onnx, set, model.input_size, batch.max(1), &pb)?;
    pb.finish_and_clear();
    if let Some(dir) = &cache {
        mixco_eval::cache::store(dir, &key, &f)?;
    }
    Ok(f)
}

pub fn run(args: EvalArgs) -> Result<()> {
    let model = EncoderModel::load(&args.model)?;
    let mut models = vec![model];
    match args.baseline.as_str() {
        "random" => models.push(mixco_eval::baseline::random_like(&models[0], 0)?),
        "none" => {}
        b => bail!("--baseline `{b}`: expected random or none"),
    }
    let dataset = args.data.to_arg();
    let splits = dataset.source()?.load(&dataset.rest.root.path())?;
    for (name, set) in [("training", &splits.train), ("test", &splits.test)] {
        if set.is_empty() {
            bail!("{}: the {name} split is empty", splits.name);
        }
    }
    let mut results = Vec::new();
    for m in &models {
        let t = std::time::Instant::now();
        let train = features(m, &splits.train, &args, "train")?;
        let test = features(m, &splits.test, &args, "test")?;
        let t_features = t.elapsed().as_secs_f64();
        let ks = [20, 200];
        let knn = mixco_eval::knn::knn_accuracy(&train, &splits.train.labels, &test, &splits.test.labels, splits.train.num_classes(), &ks, 0.1);
        let t_knn = t.elapsed().as_secs_f64() - t_features;
        let linear = linear_probe(&train, &splits.train.labels, &test, &splits.test.labels)?;
        let probe = t.elapsed().as_secs_f64() - t_features - t_knn;
        let seconds = Timings { features: t_features, knn: t_knn, probe };
        results.push(ModelResult { model: m.name.clone(), sha256: m.sha256.clone(), linear, knn_top1: ks.iter().copied().zip(knn).collect(), seconds });
    }
    let report = Report { dataset: splits.name.clone(), train_images: splits.train.len(), test_images: splits.test.len(), resize_policy: RESIZE_POLICY, results };
    print_table(&report);
    if let Some(path) = &args.json {
        mixco_data::fsutil::write_atomic(path, serde_json::to_string_pretty(&report)?.as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn print_table(r: &Report) {
    use prettytable::{format, row, Table};
    println!("{}: {} training / {} test images", r.dataset, r.train_images, r.test_images);
    let mut t = Table::new();
    t.set_format(*format::consts::FORMAT_BOX_CHARS);
    t.set_titles(row!["encoder", r->"linear top-1", r->"linear top-5", r->"kNN top-1 (k=20)", r->"kNN top-1 (k=200)", r->"seconds"]);
    let pct = |v: f64| format!("{:.2}%", 100.0 * v);
    for m in &r.results {
        t.add_row(row![m.model, r->pct(m.linear.top1), r->pct(m.linear.top5), r->pct(m.knn_top1[0].1), r->pct(m.knn_top1[1].1), r->format!("{:.1}", m.seconds.features + m.seconds.knn + m.seconds.probe)]);
    }
    t.printstd();
}
