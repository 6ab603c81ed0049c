use anyhow::{bail, Result};
use clap::Args;
use mixco_eval::features::{extract_with, Features, Feed, RESIZE_POLICY};
use mixco_eval::npy;
use mixco_eval::probe::{linear_probe_with, ProbeOptions, ProbeProgress, ProbeResult};
use mixco_eval::session::OnnxModel;
use mixco_eval::model::Overrides;
use mixco_eval::EncoderModel;
use serde::Serialize;
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Args)]
#[command(after_help = "Examples:
  mixco eval encoder.onnx --dataset synthetic
  mixco eval runs/demo/final.safetensors --dataset cifar10 --root DATA --json results.json
  mixco eval --transfer a.onnx b.onnx --root DATA --csv transfer.csv --markdown transfer.md

Every table shows a randomly initialised encoder of the first model's
architecture too (--baseline none to skip it). --transfer evaluates every
model on every dataset present under the data root (CIFAR-10, CIFAR-100,
Tiny ImageNet).")]
pub struct EvalArgs {
    /// ONNX encoders exported by mixco, .safetensors checkpoints (exported on
    /// the fly), or zoo:NAME (pulled on first use).
    #[arg(required = true, num_args = 1..)]
    models: Vec<String>,
    /// Evaluate on every dataset present under the data root: the transfer matrix.
    #[arg(long)]
    transfer: bool,
    /// With --transfer: also write the matrix as CSV.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// With --transfer: also write the matrix as a Markdown table.
    #[arg(long)]
    markdown: Option<PathBuf>,
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
    /// Foreign ONNX models (not exported by mixco): input size.
    #[arg(long, help_heading = "Foreign ONNX models")]
    input_size: Option<usize>,
    /// Foreign ONNX models: normalisation mean, e.g. 0.485,0.456,0.406.
    #[arg(long, value_parser = super::parse_triple, help_heading = "Foreign ONNX models")]
    mean: Option<[f32; 3]>,
    /// Foreign ONNX models: normalisation std, e.g. 0.229,0.224,0.225.
    #[arg(long, value_parser = super::parse_triple, help_heading = "Foreign ONNX models")]
    std: Option<[f32; 3]>,
    /// The output to use as features (default: `features`, or the only output).
    #[arg(long, help_heading = "Foreign ONNX models")]
    output: Option<String>,
    /// Also write each model's features and the labels as .npy files into DIR.
    #[arg(long, value_name = "DIR")]
    dump_features: Option<PathBuf>,
    /// Also draw the results as a PNG bar chart.
    #[arg(long)]
    png: Option<PathBuf>,
    /// cpu, or cuda[:N] (ONNX Runtime's CUDA execution provider; needs a GPU build of ONNX Runtime).
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: EvalDevice,
}

/// Where ONNX Runtime runs: the CPU, or CUDA device N.
#[derive(Clone, Copy)]
struct EvalDevice(Option<i32>);

fn parse_device(d: &str) -> Result<EvalDevice, String> {
    match d {
        "cpu" => Ok(EvalDevice(None)),
        "cuda" => Ok(EvalDevice(Some(0))),
        _ => d.strip_prefix("cuda:").and_then(|n| n.parse().ok()).map(|n| EvalDevice(Some(n))).ok_or_else(|| format!("--device `{d}`: expected cpu, cuda or cuda:N")),
    }
}


#[derive(Serialize)]
struct ModelResult {
    model: String,
    sha256: String,
    /// How a foreign model was fed and read (output, normalisation, pooling).
    #[serde(skip_serializing_if = "String::is_empty")]
    feeding: String,
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
    /// CIFAR files cut short on purpose (--cut-data); absent for the official data.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cut: Vec<String>,
    results: Vec<ModelResult>,
}

/// `fingerprint` is the split's content hash, computed once per split.
fn features(model: &EncoderModel, set: &mixco_data::ImageSet, fingerprint: &str, args: &EvalArgs, what: &str) -> Result<Features> {
    let cache = (!args.no_cache).then(|| args.cache_dir.clone().unwrap_or_else(mixco_eval::cache::default_dir));
    let key = mixco_eval::cache::Key {
        model_sha256: model.sha256.clone(),
        split_fingerprint: fingerprint.to_string(),
        input_size: model.input_size,
        resize_policy: format!("{RESIZE_POLICY}{}", model.feeding()),
    };
    if let Some(dir) = &cache {
        if let Some(f) = mixco_eval::cache::load(dir, &key, set.len()) {
            eprintln!("{} {what}: features read from the cache", model.name);
            return Ok(f);
        }
    }
    let (threads, batch) = (args.threads, args.batch_size);
    let mut onnx = OnnxModel::from_bytes_on(&model.name, &model.bytes, threads, args.device.0)?;
    onnx.input = model.input.clone();
    let pb = if std::io::stderr().is_terminal() { indicatif::ProgressBar::new(set.len() as u64) } else { indicatif::ProgressBar::hidden() };
    pb.set_style(indicatif::ProgressStyle::with_template("{msg} [{bar:25}] {pos}/{len} {per_sec} eta {eta}").unwrap().progress_chars("=> "));
    pb.set_message(format!("{} {what}", model.name));
    let feed = Feed { input_size: model.input_size, output: &model.output, normalise: model.normalise };
    let f = extract_with(&mut onnx, set, &feed, batch.max(1), &pb).map_err(|e| anyhow::anyhow!("{e} ({what} split)"))?;
    pb.finish_and_clear();
    if let Some(dir) = &cache {
        mixco_eval::cache::store(dir, &key, &f)?;
    }
    Ok(f)
}

/// The probe's bar on a terminal: one slot per iteration of every fit (a
/// fit that converges early jumps to the next).
pub fn probe_bar(model: &str, opts: ProbeOptions) -> indicatif::ProgressBar {
    let len = ((mixco_eval::probe::ALPHAS.len() + 1) * opts.max_iter) as u64;
    let pb = if std::io::stderr().is_terminal() { indicatif::ProgressBar::new(len) } else { indicatif::ProgressBar::hidden() };
    pb.set_style(indicatif::ProgressStyle::with_template("{prefix} [{bar:25}] {msg} ({elapsed})").unwrap().progress_chars("=> "));
    pb.set_prefix(format!("{model} linear probe").trim_start().to_string());
    pb
}

pub fn show_probe(pb: &indicatif::ProgressBar, p: &ProbeProgress) {
    pb.set_position(((p.fit - 1) * p.max_iter + p.iteration) as u64);
    let what = if p.refit { "refit on all".to_string() } else { format!("held-out fit {}/{}", p.fit, p.fits - 1) };
    pb.set_message(format!("{what}, alpha {}, iteration {}/{}, loss {:.4}", p.alpha, p.iteration, p.max_iter, p.loss));
}

/// The models on one dataset, its files checked for cuts first.
fn evaluate_source(models: &[EncoderModel], source: &mixco_data::Source, root: &std::path::Path, args: &EvalArgs) -> Result<Report> {
    let cut = args.data.rest.check_cut(source)?;
    evaluate(models, &source.load(root)?, cut, args)
}

fn evaluate(models: &[EncoderModel], splits: &mixco_data::Splits, cut: Vec<String>, args: &EvalArgs) -> Result<Report> {
    for (name, set) in [("training", &splits.train), ("test", &splits.test)] {
        if set.is_empty() {
            bail!("{}: the {name} split is empty", splits.name);
        }
    }
    let fingerprints = (splits.train.fingerprint(), splits.test.fingerprint());
    let mut results = Vec::new();
    for m in models {
        let t = std::time::Instant::now();
        let train = features(m, &splits.train, &fingerprints.0, args, "train")?;
        let test = features(m, &splits.test, &fingerprints.1, args, "test")?;
        let t_features = t.elapsed().as_secs_f64();
        if let Some(dir) = &args.dump_features {
            npy::write_dump(dir, &splits.name, &m.name, (&train, &splits.train.labels), (&test, &splits.test.labels))?;
        }
        let ks = [20, 200];
        let knn = mixco_eval::knn::knn_accuracy(&train, &splits.train.labels, &test, &splits.test.labels, splits.train.num_classes(), &ks, 0.1);
        let t_knn = t.elapsed().as_secs_f64() - t_features;
        let bar = probe_bar(&m.name, ProbeOptions::default());
        let linear = linear_probe_with(&train, &splits.train.labels, &test, &splits.test.labels, ProbeOptions::default(), &mut |p| show_probe(&bar, p))?;
        bar.finish_and_clear();
        let probe = t.elapsed().as_secs_f64() - t_features - t_knn;
        let seconds = Timings { features: t_features, knn: t_knn, probe };
        results.push(ModelResult { model: m.name.clone(), sha256: m.sha256.clone(), feeding: m.feeding(), linear, knn_top1: ks.iter().copied().zip(knn).collect(), seconds });
    }
    Ok(Report { dataset: splits.name.clone(), train_images: splits.train.len(), test_images: splits.test.len(), resize_policy: RESIZE_POLICY, cut, results })
}

/// Linear and kNN-200 top-1 of every model on every dataset, as bars.
fn chart(reports: &[Report]) -> Vec<u8> {
    use mixco_eval::chart::{bar_chart, png_bytes, Series};
    let groups: Vec<String> = reports.iter().flat_map(|r| [format!("{} linear", r.dataset), format!("{} kNN", r.dataset)]).collect();
    let models: Vec<&str> = reports[0].results.iter().map(|r| r.model.as_str()).collect();
    let series = models
        .iter()
        .map(|&m| Series {
            label: m.to_string(),
            values: reports
                .iter()
                .flat_map(|r| {
                    let res = r.results.iter().find(|x| x.model == m);
                    let knn = res.and_then(|x| x.knn_top1.iter().find(|(k, _)| *k == 200)).map(|(_, v)| 100.0 * v);
                    [res.map(|x| 100.0 * x.linear.top1), knn]
                })
                .collect(),
        })
        .collect::<Vec<_>>();
    png_bytes(&bar_chart("top-1 accuracy (%)", &groups, &series))
}

pub fn run(args: EvalArgs) -> Result<()> {
    // Before any model runs: a bad output path found after minutes of work loses them.
    if let Some(dir) = args.dump_features.as_ref().filter(|d| d.exists() && !d.is_dir()) {
        bail!("--dump-features {}: is a file, not a folder; name a folder (it is created if missing)", dir.display());
    }
    let overrides = Overrides { input_size: args.input_size, mean: args.mean, std: args.std, output: args.output.clone() };
    let paths = args.models.iter().map(|spec| mixco_zoo::resolve(spec, mixco_zoo::FileKind::Onnx)).collect::<Result<Vec<_>, _>>()?;
    let mut models = Vec::new();
    for (path, label) in paths.iter().zip(mixco_eval::model::distinct_labels(&paths)) {
        let mut model = EncoderModel::load_with(path, &overrides)?;
        model.name = label;
        if model.spatial {
            eprintln!(
                "{}: output `{}` keeps its spatial dimensions (N, C, H, W); its features are the mean over H x W ({} per image)",
                model.name, model.output, model.feature_dim
            );
        }
        models.push(model);
    }
    match args.baseline.as_str() {
        "random" if models[0].normalise.is_some() => {
            bail!("--baseline random builds a random encoder of the first model's architecture, which a foreign ONNX model does not state; use --baseline none")
        }
        "random" => models.push(mixco_eval::baseline::random_like(&models[0], 0)?),
        "none" => {}
        b => bail!("--baseline `{b}`: expected random or none"),
    }
    let root = args.data.rest.root.path();
    let reports = if args.transfer {
        let mut reports = Vec::new();
        for known in mixco_data::KnownDataset::ALL {
            let dir = root.join(known.dir_name());
            if !dir.is_dir() {
                eprintln!("{known}: skipped, not found at {} (mixco data fetch {known})", dir.display());
                continue;
            }
            let report = evaluate_source(&models, &mixco_data::Source::parse(known.name())?, &root, &args)?;
            print_table(&report);
            reports.push(report);
        }
        if reports.is_empty() {
            bail!("--transfer: none of cifar10, cifar100, tinyimagenet is under {}; fetch them with `mixco data fetch`", root.display());
        }
        print_matrix(&reports);
        reports
    } else {
        if args.csv.is_some() || args.markdown.is_some() {
            bail!("--csv and --markdown write the transfer matrix: add --transfer");
        }
        let report = evaluate_source(&models, &args.data.to_arg().source()?, &root, &args)?;
        print_table(&report);
        vec![report]
    };
    if let Some(path) = &args.png {
        mixco_data::fsutil::write_atomic(path, &chart(&reports))?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.json {
        let json = if args.transfer { serde_json::to_string_pretty(&reports)? } else { serde_json::to_string_pretty(&reports[0])? };
        mixco_data::fsutil::write_atomic(path, json.as_bytes())?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.csv {
        let mut csv = String::from("model,dataset,linear_top1,linear_top5,knn20_top1,knn200_top1\n");
        for r in &reports {
            for m in &r.results {
                csv += &format!("{},{},{:.4},{:.4},{:.4},{:.4}\n", m.model, r.dataset, m.linear.top1, m.linear.top5, m.knn_top1[0].1, m.knn_top1[1].1);
            }
        }
        mixco_data::fsutil::write_atomic(path, csv.as_bytes())?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.markdown {
        mixco_data::fsutil::write_atomic(path, markdown(&reports).as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Rows: models; columns: each dataset's linear and kNN (k = 200) top-1.
fn matrix_rows(reports: &[Report]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header = vec!["encoder".to_string()];
    for r in reports {
        header.push(format!("{} linear", r.dataset));
        header.push(format!("{} kNN", r.dataset));
    }
    let rows = reports[0]
        .results
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut row = vec![m.model.clone()];
            for r in reports {
                row.push(format!("{:.2}", 100.0 * r.results[i].linear.top1));
                row.push(format!("{:.2}", 100.0 * r.results[i].knn_top1[1].1));
            }
            row
        })
        .collect();
    (header, rows)
}

fn print_matrix(reports: &[Report]) {
    let (header, rows) = matrix_rows(reports);
    let mut t = prettytable::Table::new();
    t.set_format(*prettytable::format::consts::FORMAT_BOX_CHARS);
    t.set_titles(header.iter().map(|h| prettytable::Cell::new(h)).collect());
    for r in rows {
        t.add_row(r.iter().map(|c| prettytable::Cell::new(c)).collect());
    }
    println!("transfer matrix (top-1 %, kNN with k = 200):");
    t.printstd();
}

fn markdown(reports: &[Report]) -> String {
    let (header, rows) = matrix_rows(reports);
    let mut md = format!("| {} |\n|{}\n", header.join(" | "), "---|".repeat(header.len()));
    for r in rows {
        md += &format!("| {} |\n", r.join(" | "));
    }
    md
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
