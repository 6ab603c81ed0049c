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
    if let Some(note) = std::fs::read_to_string("/proc/loadavg").ok().and_then(|l| busy_note(&l, rayon_threads())) {
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

/// A warning when other work already loads the cores (the 1-minute load
/// average of `/proc/loadavg` at half the cores or more): timings taken then
/// are not speed measurements, and OpenMP-threaded processes sharing cores
/// slow each other down several-fold, not two-fold.
fn busy_note(loadavg: &str, cores: usize) -> Option<String> {
    let load: f64 = loadavg.split_whitespace().next()?.parse().ok()?;
    (load >= 0.5 * cores as f64).then(|| {
        format!(
            "warning: the machine is busy (1-minute load {load:.1} on {cores} cores); these timings will not be speed measurements"
        )
    })
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::busy_note;

    #[test]
    fn warns_only_when_the_cores_are_loaded() {
        assert_eq!(busy_note("0.37 0.12 0.04 1/123 456", 2), None);
        let note = busy_note("1.96 1.20 0.80 3/130 999", 2).unwrap();
        assert!(note.contains("load 2.0 on 2 cores"), "{note}");
        assert!(busy_note("7.9 1 1 1/1 1", 16).is_none());
        assert_eq!(busy_note("", 2), None);
        assert_eq!(busy_note("garbage", 2), None);
    }
}
