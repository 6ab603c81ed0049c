use anyhow::{bail, Result};
use clap::Args;
use mixco_eval::evaluation::{evaluate, EvalOptions, Observer, Progress};
use mixco_eval::model::{FeedProblem, ModelError, Overrides};
use mixco_eval::probe::{ProbeOptions, ProbeProgress};
use mixco_eval::report::{self, Report};
use mixco_eval::EncoderModel;
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
    /// Also draw the results as a bar chart: this PNG and an SVG beside it
    /// (same name, .svg) for papers.
    #[arg(long)]
    png: Option<PathBuf>,
    /// Also write the results as TensorBoard scalars into DIR/MODEL/ (a run
    /// per model, a tag per dataset and probe), e.g. beside the training runs.
    #[arg(long, value_name = "DIR")]
    tensorboard: Option<PathBuf>,
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


impl EvalArgs {
    fn options(&self) -> EvalOptions {
        EvalOptions {
            threads: self.threads,
            batch_size: self.batch_size,
            cache: (!self.no_cache).then(|| self.cache_dir.clone().unwrap_or_else(mixco_eval::cache::default_dir)),
            cuda: self.device.0,
            dump_features: self.dump_features.clone(),
        }
    }
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

/// What a terminal shows of an evaluation: a bar for each split's features
/// and each probe (on a terminal only), and the cache hits.
#[derive(Default)]
struct Bars {
    bar: Option<indicatif::ProgressBar>,
}

impl Observer for Bars {
    fn event(&mut self, progress: Progress<'_>) {
        match progress {
            Progress::CacheHit { model, split } => eprintln!("{model} {split}: features read from the cache"),
            Progress::CacheProblem { model, split, problem } => {
                eprintln!("warning: {model} {split}: {problem} (choose another cache with --cache-dir, or none with --no-cache)")
            }
            Progress::Extracting { model, split, images } => {
                let pb = if std::io::stderr().is_terminal() { indicatif::ProgressBar::new(images as u64) } else { indicatif::ProgressBar::hidden() };
                pb.set_style(indicatif::ProgressStyle::with_template("{msg} [{bar:25}] {pos}/{len} {per_sec} eta {eta}").unwrap().progress_chars("=> "));
                pb.set_message(format!("{model} {split}"));
                self.bar = Some(pb);
            }
            Progress::Extracted { images } => self.bar.iter().for_each(|b| b.inc(images as u64)),
            Progress::Probe { model, progress } => show_probe(self.bar.get_or_insert_with(|| probe_bar(model, ProbeOptions::default())), progress),
            Progress::ExtractionDone | Progress::ProbeDone => {
                if let Some(b) = self.bar.take() {
                    b.finish_and_clear();
                }
            }
        }
    }
}

/// A feeding problem as the flags that fix it.
fn flagged(e: ModelError) -> anyhow::Error {
    let ModelError::Feed { path, problem } = e else { return e.into() };
    let text = match problem {
        FeedProblem::UnknownOutput { given, outputs } => format!("--output `{given}`: the model's outputs are {}", outputs.join(", ")),
        FeedProblem::SeveralOutputs(outputs) => format!("several outputs ({}); choose one with --output", outputs.join(", ")),
        FeedProblem::OverridesMixco => "exported by mixco: it normalises inside the graph and states its input size; --input-size/--mean/--std are for foreign models".into(),
        FeedProblem::NoInputSize => "not exported by mixco (no mixco metadata) and its input size is not fixed in the graph: pass --input-size (and --mean, --std)".into(),
        FeedProblem::InputSizeFixed { given, fixed } => format!("--input-size {given}: the graph's input is fixed at {fixed}x{fixed}"),
        FeedProblem::NoNormalisation => "not exported by mixco: pass the normalisation it was trained with, --mean and --std \
            (e.g. ImageNet's 0.485,0.456,0.406 and 0.229,0.224,0.225; 0,0,0 and 1,1,1 for inputs in [0, 1])"
            .into(),
        FeedProblem::NonPositiveStd => "--std values must be positive finite numbers, and --mean values finite".into(),
        FeedProblem::InputSize(n) => format!("--input-size {n}: it must be 1 to {} px", mixco_model::checkpoint::MAX_INPUT_SIZE),
    };
    anyhow::anyhow!("{}: {text}", path.display())
}

/// The models on one dataset, its files checked for cuts first.
fn evaluate_source(models: &[EncoderModel], source: &mixco_data::Source, root: &std::path::Path, args: &EvalArgs) -> Result<Report> {
    let cut = args.data.rest.check_cut(source)?;
    Ok(evaluate(models, &source.load(root)?, cut, &args.options(), &mut Bars::default())?)
}

pub fn run(args: EvalArgs) -> Result<()> {
    super::check_threads(args.threads).map_err(anyhow::Error::msg)?;
    // Before any model runs: a bad output path found after minutes of work loses them.
    if let Some(dir) = args.dump_features.as_ref().filter(|d| d.exists() && !d.is_dir()) {
        bail!("--dump-features {}: is a file, not a folder; name a folder (it is created if missing)", dir.display());
    }
    let overrides = Overrides { input_size: args.input_size, mean: args.mean, std: args.std, output: args.output.clone() };
    let paths = args.models.iter().map(|spec| mixco_zoo::resolve(spec, mixco_zoo::FileKind::Onnx, super::zoo::tell)).collect::<Result<Vec<_>, _>>()?;
    let mut models = Vec::new();
    for (path, label) in paths.iter().zip(mixco_eval::model::distinct_labels(&paths)) {
        let mut model = EncoderModel::load_with(path, &overrides).map_err(flagged)?;
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
    let write = |path: &std::path::Path, bytes: &[u8]| -> Result<()> {
        mixco_data::fsutil::write_atomic(path, bytes)?;
        println!("wrote {}", path.display());
        Ok(())
    };
    if let Some(path) = &args.png {
        for path in report::chart(&reports).write(path)? {
            println!("wrote {}", path.display());
        }
    }
    if let Some(path) = &args.json {
        write(path, report::to_json(&reports, args.transfer).as_bytes())?;
    }
    if let Some(path) = &args.csv {
        write(path, report::csv(&reports).as_bytes())?;
    }
    if let Some(path) = &args.markdown {
        write(path, report::markdown(&reports).as_bytes())?;
    }
    if let Some(dir) = &args.tensorboard {
        for path in mixco_eval::tensorboard::write_reports(dir, &reports)? {
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}

fn print_matrix(reports: &[Report]) {
    let (header, rows) = report::matrix_rows(reports);
    let mut t = prettytable::Table::new();
    t.set_format(*prettytable::format::consts::FORMAT_BOX_CHARS);
    t.set_titles(header.iter().map(|h| prettytable::Cell::new(h)).collect());
    for r in rows {
        t.add_row(r.iter().map(|c| prettytable::Cell::new(c)).collect());
    }
    println!("transfer matrix (top-1 %, kNN with k = 200):");
    t.printstd();
}

fn print_table(r: &Report) {
    use prettytable::{format, row, Table};
    println!("{}: {} training / {} test images", r.dataset, r.train_images, r.test_images);
    let mut t = Table::new();
    t.set_format(*format::consts::FORMAT_BOX_CHARS);
    t.set_titles(row!["encoder", r->"linear top-1", r->"linear top-5", r->"kNN top-1 (k=20)", r->"kNN top-1 (k=200)", r->"seconds"]);
    let pct = |v: Option<f64>| report::percent(v, "%");
    for m in &r.results {
        t.add_row(row![m.model, r->pct(Some(m.linear.top1)), r->pct(Some(m.linear.top5)), r->pct(m.knn(20)), r->pct(m.knn(200)), r->format!("{:.1}", m.seconds.features + m.seconds.knn + m.seconds.probe)]);
    }
    t.printstd();
}
