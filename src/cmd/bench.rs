use super::data::DatasetArg;
use anyhow::Result;
use clap::{Args, Subcommand};
#[cfg(feature = "train")]
use mixco_train::{Method, TrainConfig};

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
    #[cfg(feature = "train")]
    /// Images/s of the bare encoder passes against full training steps (with and without MixCo).
    #[command(after_help = "Example:\n  mixco bench train --arch resnet18 --width 16 --batch-size 256 --device cpu")]
    Train {
        #[arg(long, default_value = "moco-v2")]
        method: String,
        #[arg(long, default_value = "resnet18")]
        arch: String,
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
            let mut onnx = mixco_eval::session::OnnxModel::from_bytes(&m.name, &m.bytes, threads)?;
            let s = m.input_size;
            let b = batch_size.max(1);
            let mut rng = mixco_data::synthetic::Rng::new(1);
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
        #[cfg(feature = "train")]
        BenchCommand::Train { method, arch, width, batch_size, input_size, device, threads, channels_last, bf16, warmup, iters, json } => {
            if let Some(t) = threads {
                mixco_train::tch::set_num_threads(t);
            }
            let device = mixco_train::device::select(&device).map_err(anyhow::Error::msg)?;
            let method = Method::parse(&method).ok_or_else(|| anyhow::anyhow!("--method `{method}`: expected moco-v2 or simclr"))?;
            let cfg = TrainConfig { method, arch, width, batch_size, input_size: Some(input_size), channels_last, bf16, ..Default::default() };
            cfg.validate().map_err(|e| anyhow::anyhow!("--{e}"))?;
            let rows = mixco_train::bench::train_bench(&cfg, device, warmup, iters.max(1))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            println!(
                "{} width {} batch {} input {} on {:?}, {} threads, median of {} steps",
                cfg.arch, width, batch_size, input_size, device, mixco_train::tch::get_num_threads(), iters
            );
            let mut t = prettytable::Table::new();
            t.set_format(*prettytable::format::consts::FORMAT_CLEAN);
            t.set_titles(prettytable::row!["what", r->"ms/step", r->"images/s", r->"overhead"]);
            for pair in rows.chunks(2) {
                let base = pair[0].median_ms;
                for r in pair {
                    t.add_row(prettytable::row![r.what, r->format!("{:.1}", r.median_ms), r->format!("{:.0}", r.images_per_s), r->format!("{:+.1}%", (r.median_ms / base - 1.0) * 100.0)]);
                }
            }
            t.printstd();
            Ok(())
        }
    }
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

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
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
