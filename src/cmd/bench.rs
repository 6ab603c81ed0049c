use super::data::DatasetArg;
use anyhow::Result;
use clap::{Args, Subcommand};
#[cfg(feature = "train")]
use mixco_model::{Depth, Method};
#[cfg(feature = "train")]
use mixco_train::TrainConfig;

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Time to load a dataset into memory, and images/s (median of several loads).
    #[command(after_help = "Examples:\n  mixco bench data cifar10 --root DATA\n  mixco bench data tinyimagenet --root DATA --repeat 5")]
    Data {
        #[command(flatten)]
        dataset: DatasetArg,
        #[arg(long, default_value_t = 5)]
        repeat: usize,
    },
    /// Feature-extraction images/s of an ONNX encoder through ONNX Runtime
    /// (compare with benches/ort_python.py on the same file and threads).
    #[command(after_help = "Example:\n  mixco bench eval runs/demo/encoder.onnx --threads 2 --batch-size 256")]
    Eval {
        model: std::path::PathBuf,
        /// ONNX Runtime intra-op threads (0 = its default).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        #[arg(long, default_value_t = 256)]
        batch_size: usize,
        /// Images per timed pass (random, in [0, 1]).
        #[arg(long, default_value_t = 4096)]
        images: usize,
        #[arg(long, default_value_t = 5)]
        repeat: usize,
    },
    /// The linear probe alone, against its arithmetic floor: on the features
    /// `mixco eval --dump-features DIR` wrote, or on synthetic Gaussian class
    /// clusters of a given shape (compare with benches/sklearn_probe.py).
    #[command(after_help = "Examples:
  mixco bench probe --synthetic 100000x128x200 --synthetic-test 10000
  mixco eval enc.onnx --dataset cifar10 --root DATA --baseline none --dump-features feats
  mixco bench probe --features feats --dataset cifar10 --model enc.onnx

The floor is the time of the probe's matrix products alone (X·W and Xᵀ·D,
timed here on the same shapes) times the objective evaluations it made.
Threads: RAYON_NUM_THREADS (default: all cores).")]
    Probe {
        /// A `mixco eval --dump-features` folder (with --dataset and --model).
        #[arg(long, value_name = "DIR", conflicts_with = "synthetic", requires_all = ["dataset", "model"])]
        features: Option<std::path::PathBuf>,
        /// The dataset part of the file names (DATASET-MODEL-train.npy).
        #[arg(long)]
        dataset: Option<String>,
        /// The model part of the file names, as `mixco eval` printed it.
        #[arg(long)]
        model: Option<String>,
        /// Synthetic training features: ROWSxDIMxCLASSES.
        #[arg(long, value_parser = parse_shape, required_unless_present = "features")]
        synthetic: Option<[usize; 3]>,
        /// Synthetic test rows.
        #[arg(long, default_value_t = 10_000)]
        synthetic_test: usize,
        /// Spread of the synthetic class means (their std; samples have unit std).
        #[arg(long, default_value_t = 0.2)]
        separation: f32,
        /// Also write the synthetic features as a `--features` folder (for
        /// benches/sklearn_probe.py DIR synthetic clusters).
        #[arg(long, value_name = "DIR", requires = "synthetic")]
        write: Option<std::path::PathBuf>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// L-BFGS iterations a fit (mixco eval uses the default).
        #[arg(long, default_value_t = mixco_eval::probe::MAX_ITER)]
        max_iter: usize,
        /// Converged when every gradient entry of the per-sample objective is at most this.
        #[arg(long, default_value_t = mixco_eval::probe::GTOL)]
        gtol: f64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    #[cfg(feature = "train")]
    /// Images/s of the bare encoder passes against full training steps (with and without MixCo).
    #[command(after_help = "Example:\n  mixco bench train --arch resnet18 --width 16 --batch-size 256 --device cpu")]
    Train {
        #[arg(long, value_enum, ignore_case = true, default_value_t = Method::MocoV2)]
        method: Method,
        #[arg(long, value_enum, ignore_case = true, default_value_t = Depth::Resnet18)]
        arch: Depth,
        #[arg(long, default_value_t = 16)]
        width: usize,
        #[arg(long, default_value_t = 256)]
        batch_size: usize,
        /// Input size (synthetic images of this size).
        #[arg(long, default_value_t = 32)]
        input_size: usize,
        #[arg(long, default_value = "auto")]
        device: String,
        #[arg(long)]
        threads: Option<i32>,
        /// NHWC activations (the trainer's default).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        channels_last: bool,
        /// Mixed precision (default: on CUDA only).
        #[arg(long, action = clap::ArgAction::Set)]
        bf16: Option<bool>,
        #[arg(long, default_value_t = 2)]
        warmup: usize,
        #[arg(long, default_value_t = 10)]
        iters: usize,
        /// Data-parallel ranks on this machine (--batch-size is the global batch; see `mixco train`).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
        nproc_per_node: u16,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: BenchArgs) -> Result<()> {
    if let Some(note) = busy_now() {
        eprintln!("{note}");
    }
    match args.command {
        BenchCommand::Data { dataset, repeat } => {
            let source = dataset.source()?;
            let root = dataset.rest.root.path();
            let mut times = Vec::new();
            let mut n = 0;
            for _ in 0..repeat.max(1) {
                let t = std::time::Instant::now();
                let s = source.load(&root)?;
                times.push(t.elapsed().as_secs_f64());
                n = s.train.len() + s.test.len();
            }
            times.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let med = times[times.len() / 2];
            println!(
                "{}: {n} images loaded in {:.3} s (median of {}; min {:.3} s, max {:.3} s) = {:.0} images/s on {} threads",
                source.name(), med, times.len(), times[0], times[times.len() - 1], n as f64 / med, rayon_threads()
            );
            Ok(())
        }
        BenchCommand::Eval { model, threads, batch_size, images, repeat } => {
            let m = mixco_eval::EncoderModel::load(&model)?;
            let mut onnx = mixco_eval::session::OnnxModel::from_parts(&m.name, &m.bytes, &m.external, threads, None)?;
            let s = m.input_size;
            let b = batch_size.max(1);
            let mut rng = mixco_data::rng::Rng::new(1);
            let batch: Vec<f32> = (0..b * 3 * s * s).map(|_| rng.uniform()).collect();
            let passes = images.div_ceil(b);
            onnx.run(&batch, b, s, "features")?;
            let mut rates = Vec::new();
            for _ in 0..repeat.max(1) {
                let t = std::time::Instant::now();
                for _ in 0..passes {
                    onnx.run(&batch, b, s, "features")?;
                }
                rates.push((passes * b) as f64 / t.elapsed().as_secs_f64());
            }
            rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
            println!("{}: {:.0} images/s (median of {}; batch {b}, {} px, threads {threads})", m.name, rates[rates.len() / 2], rates.len(), s);
            Ok(())
        }
        BenchCommand::Probe { features, dataset, model, synthetic, synthetic_test, separation, seed, max_iter, gtol, write, json } => {
            let (train, train_y, test, test_y) = match (features, synthetic) {
                (Some(dir), _) => {
                    let ((a, ya), (b, yb)) = mixco_eval::npy::read_dump(&dir, &dataset.unwrap_or_default(), &model.unwrap_or_default())?;
                    (a, ya, b, yb)
                }
                (None, Some([n, d, c])) => {
                    let clusters = mixco_eval::clusters::Clusters::new(d, c, separation, seed);
                    let (a, ya) = clusters.sample(n, seed + 1);
                    let (b, yb) = clusters.sample(synthetic_test, seed + 2);
                    if let Some(dir) = &write {
                        mixco_eval::npy::write_dump(dir, "synthetic", "clusters", (&a, &ya), (&b, &yb))?;
                    }
                    (a, ya, b, yb)
                }
                (None, None) => anyhow::bail!("give --features DIR (with --dataset and --model) or --synthetic ROWSxDIMxCLASSES"),
            };
            probe_bench(&train, &train_y, &test, &test_y, mixco_eval::probe::ProbeOptions { max_iter, gtol }, json)
        }
        #[cfg(feature = "train")]
        BenchCommand::Train { method, arch, width, batch_size, input_size, device, threads, channels_last, bf16, warmup, iters, nproc_per_node, json } => {
            let launch = super::launch::rank_or_spawn(nproc_per_node, threads)?;
            if let Some(t) = threads {
                mixco_train::tch::set_num_threads(t);
            }
            let device = mixco_train::device::select(&device)?;
            let world = launch.as_ref().map_or(1, |l| l.world);
            let cfg = TrainConfig { method, arch, width, batch_size, input_size: Some(input_size), channels_last, bf16, simclr_bn_splits: world, ..Default::default() };
            cfg.validate().map_err(|e| anyhow::anyhow!("--{e}"))?;
            cfg.validate_world(world).map_err(|e| anyhow::anyhow!("--{e}"))?;
            let dist = match &launch {
                Some(l) => mixco_train::dist::Dist::join(l, std::time::Duration::from_secs(300))?,
                None => mixco_train::dist::Dist::single(),
            };
            let leader = dist.rank == 0;
            let rows = mixco_train::bench::train_bench(&cfg, device, warmup, iters.max(1), dist)?;
            if !leader {
                return Ok(());
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            println!(
                "{} width {} batch {} input {} on {:?}, {} threads{}, median of {} steps",
                cfg.arch, width, batch_size, input_size, device, mixco_train::tch::get_num_threads(),
                if world > 1 { format!(" per rank x {world} ranks ({} images each)", batch_size / world) } else { String::new() }, iters
            );
            let mut t = prettytable::Table::new();
            t.set_format(*prettytable::format::consts::FORMAT_CLEAN);
            t.set_titles(prettytable::row!["what", r->"ms/step", r->"images/s", r->"overhead", r->"collectives ms/step"]);
            for pair in rows.chunks(2) {
                let base = pair[0].median_ms;
                for r in pair {
                    let coll = r.collective_ms.map(|c| format!("{c:.1}")).unwrap_or_else(|| "-".into());
                    t.add_row(prettytable::row![r.what, r->format!("{:.1}", r.median_ms), r->format!("{:.0}", r.images_per_s), r->format!("{:+.1}%", (r.median_ms / base - 1.0) * 100.0), r->coll]);
                }
            }
            t.printstd();
            Ok(())
        }
    }
}

fn parse_shape(s: &str) -> Result<[usize; 3], String> {
    let v: Vec<usize> = s.split('x').map(|p| p.parse().map_err(|_| format!("`{s}`: expected ROWSxDIMxCLASSES, e.g. 50000x128x100"))).collect::<Result<_, _>>()?;
    match v[..] {
        [n, d, c] if n >= 10 && d > 0 && c >= 2 => Ok([n, d, c]),
        _ => Err(format!("`{s}`: expected ROWSxDIMxCLASSES with at least 10 rows, 1 feature and 2 classes")),
    }
}

#[derive(serde::Serialize)]
struct ProbeBench {
    rows: usize,
    dim: usize,
    classes: usize,
    test_rows: usize,
    threads: usize,
    result: mixco_eval::probe::ProbeResult,
    seconds: f64,
    /// Seconds of X·W and Xᵀ·D at the refit's shape.
    products_s: (f64, f64),
    floor_s: f64,
}

fn probe_bench(train: &mixco_eval::features::Features, train_y: &[u32], test: &mixco_eval::features::Features, test_y: &[u32], opts: mixco_eval::probe::ProbeOptions, json: bool) -> Result<()> {
    let classes = mixco_eval::probe::classes(train_y).len();
    let bar = super::eval::probe_bar("", opts);
    let t = std::time::Instant::now();
    let result = mixco_eval::probe::linear_probe_with(train, train_y, test, test_y, opts, &mut |p| super::eval::show_probe(&bar, p))?;
    let seconds = t.elapsed().as_secs_f64();
    bar.finish_and_clear();
    // The products' time per row is flat in the row count at these sizes:
    // time them once at full size and scale to each fit's rows.
    let products_s = mixco_eval::linalg::time_products(train.n, train.dim, classes, 5);
    let per_row = (products_s.0 + products_s.1) / train.n as f64;
    let floor_s: f64 = result.fits.iter().map(|f| f.evaluations as f64 * f.rows as f64 * per_row).sum();
    let threads = rayon_threads();
    let r = ProbeBench { rows: train.n, dim: train.dim, classes, test_rows: test.n, threads, result, seconds, products_s, floor_s };
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!("linear probe on {} x {} features, {} classes ({} test rows), {} threads", r.rows, r.dim, r.classes, r.test_rows, threads);
    let mut t = prettytable::Table::new();
    t.set_format(*prettytable::format::consts::FORMAT_CLEAN);
    t.set_titles(prettytable::row!["fit", r->"alpha", r->"rows", r->"iterations", r->"evaluations", r->"loss", "stop", r->"seconds"]);
    for (i, f) in r.result.fits.iter().enumerate() {
        let what = if i + 1 == r.result.fits.len() { "refit".to_string() } else { format!("held-out {}", i + 1) };
        t.add_row(prettytable::row![what, r->f.alpha, r->f.rows, r->f.iterations, r->f.evaluations, r->format!("{:.5}", f.loss), format!("{:?}", f.stop), r->format!("{:.2}", f.seconds)]);
    }
    t.printstd();
    let gflop = 2.0 * (r.rows * r.dim * r.classes) as f64 / 1e9;
    let evals: usize = r.result.fits.iter().map(|f| f.evaluations).sum();
    println!("top-1 {:.2}%, top-5 {:.2}%, alpha {} (held-out top-1 {:?})", 100.0 * r.result.top1, 100.0 * r.result.top5, r.result.alpha, r.result.grid);
    println!(
        "{:.2} s; floor {:.2} s = {evals} evaluations x the two products (X·W {:.1} ms = {:.0} GFLOP/s, Xᵀ·D {:.1} ms = {:.0} GFLOP/s at {} rows): {:.2}x the floor",
        seconds, floor_s, 1e3 * products_s.0, gflop / products_s.0, 1e3 * products_s.1, gflop / products_s.1, r.rows, seconds / floor_s
    );
    Ok(())
}

/// A warning when other work already keeps the cores busy (half or more
/// of the CPU time over a quarter of a second, from `/proc/stat`): timings
/// taken then are not speed measurements, and OpenMP-threaded processes
/// sharing cores slow each other down several-fold, not two-fold. (The load
/// average lags by a minute, so it warns after the other work has stopped.)
fn busy_now() -> Option<String> {
    let before = std::fs::read_to_string("/proc/stat").ok()?;
    std::thread::sleep(std::time::Duration::from_millis(250));
    let after = std::fs::read_to_string("/proc/stat").ok()?;
    busy_note(&before, &after)
}

/// The busy share of all cores between two `/proc/stat` readings, as a
/// warning when it is 50% or more.
fn busy_note(before: &str, after: &str) -> Option<String> {
    // "cpu  user nice system idle iowait irq softirq steal ...": idle + iowait is idle
    let times = |stat: &str| -> Option<(f64, f64)> {
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        let v: Vec<f64> = line.split_whitespace().skip(1).map(|x| x.parse().ok()).collect::<Option<_>>()?;
        (v.len() >= 5).then(|| (v.iter().take(8).sum(), v[3] + v[4]))
    };
    let ((t0, i0), (t1, i1)) = (times(before)?, times(after)?);
    if t1 <= t0 {
        return None;
    }
    let busy = 1.0 - (i1 - i0) / (t1 - t0);
    (busy >= 0.5).then(|| {
        format!("warning: other work keeps the cores {:.0}% busy; these timings will not be speed measurements", busy * 100.0)
    })
}

/// The threads rayon (data loading, the probe, kNN) runs on.
fn rayon_threads() -> usize {
    rayon::current_num_threads()
}

#[cfg(test)]
mod tests {
    use super::busy_note;

    #[test]
    fn warns_only_when_the_cores_are_busy() {
        let at = |user: u64, idle: u64| format!("cpu  {user} 0 0 {idle} 0 0 0 0 0 0\ncpu0 1 2 3 4\n");
        assert_eq!(busy_note(&at(100, 1000), &at(110, 1090)), None);
        let note = busy_note(&at(100, 1000), &at(180, 1020)).unwrap();
        assert!(note.contains("80% busy"), "{note}");
        assert_eq!(busy_note(&at(100, 1000), &at(100, 1000)), None);
        assert_eq!(busy_note("", &at(1, 1)), None);
        assert_eq!(busy_note("cpu  garbage", &at(1, 1)), None);
    }
}
