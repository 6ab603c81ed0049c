use anyhow::{bail, Context, Result};
use clap::Args;
use mixco_model::run::{self as run_dir, EpochLog, LAST_FILE, LOG_FILE};
use mixco_model::{Depth, Stem};
use mixco_train::dist::{Dist, Launch};
use mixco_train::run_dir::{FolderPlan, Prepared, RunLock};
use mixco_train::{Event, Method, Observer, RunOptions, TrainConfig, Trainer};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Args)]
#[command(after_help = "Examples:
  mixco train --dataset synthetic --arch resnet10 --width 16 --epochs 5 --mixco --output runs/demo
  mixco train --dataset cifar10 --root DATA --method moco-v2 --mixco --arch resnet18 --width 16 \\
              --epochs 20 --batch-size 256 --device auto --output runs/r18w16-mixco
  mixco train --method simclr --mixco --config run.toml --output runs/simclr
  mixco train --resume runs/r18w16-mixco/last.safetensors --dataset cifar10 --root DATA
  mixco train --dataset synthetic --epochs 1 --output runs/demo --overwrite
  mixco train --dataset cifar10 --root DATA --mixco --batch-size 256 --nproc-per-node 2 --output runs/dp2
  torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend static --master-addr node0 --master-port 29500 \\
           --node-rank 0 --no-python mixco train --dataset cifar10 --root DATA --device cuda --output runs/dp8

Data-parallel training (docs/DISTRIBUTED.md): --nproc-per-node N starts N ranks on this
machine; under torchrun or a SLURM job step each process reads RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR and MASTER_PORT (or SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID). --batch-size is
the global batch; each rank trains on batch-size / N of it, rank 0 writes the folder.

Files in --output: last.safetensors (every epoch and on Ctrl-C; resume from it),
final.safetensors, epoch-NNNN.safetensors (--save-every), log.jsonl, curves.png and
curves.svg, events.out.tfevents.* (TensorBoard: per-step losses, lr, beta, images/s;
per-epoch kNN, cos, probe; the settings as text; --tensorboard false turns them off);
.mixco.lock holds the folder for the running process (a second run into it is
refused, naming the first one's PID).

Each epoch's line shows the losses, `cos` (the mean cosine similarity between the
projections of different images: it falls as training spreads the images out; near 1
the representation has collapsed, and above 0.94 a warning names the likely cause), the
kNN monitor and images/s.")]
pub struct TrainArgs {
    #[command(flatten)]
    data: super::data::DatasetFlag,
    /// Settings from a TOML file (keys as the long flags, with `_`); flags override it.
    /// Repeat it to layer files, later ones overriding earlier ones (experiments/).
    #[arg(long)]
    config: Vec<PathBuf>,
    /// Continue a run from its checkpoint, or zoo:NAME (settings come from the checkpoint;
    /// of the training settings only --epochs may be given, to extend the run).
    #[arg(long)]
    resume: Option<String>,
    /// Output folder.
    #[arg(short, long, default_value = "runs/latest")]
    output: PathBuf,
    /// Start afresh in an --output that holds an earlier run, deleting its log and checkpoints.
    #[arg(long)]
    overwrite: bool,
    /// Write TensorBoard event files into --output as training goes (`tensorboard --logdir runs/`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    tensorboard: bool,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// CPU threads for libtorch (default: all cores, shared between --nproc-per-node ranks).
    #[arg(long)]
    threads: Option<i32>,
    /// Data-parallel ranks to start on this machine (CPU: the cores are shared; CUDA: one GPU each).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    nproc_per_node: u16,
    /// Seconds a rank waits for the others (rendezvous, each collective) before failing.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    dist_timeout: u64,
    #[arg(long, value_enum, ignore_case = true)]
    method: Option<Method>,
    /// Add the MixCo loss. For small encoders and short budgets, --method simclr --mixco with
    /// its defaults measured best (docs/RESULTS.md).
    #[arg(long)]
    mixco: bool,
    #[arg(long, value_enum, ignore_case = true)]
    arch: Option<Depth>,
    /// Base width (64 = torchvision).
    #[arg(long)]
    width: Option<usize>,
    /// cifar: 3x3, no max-pool; imagenet: 7x7 + max-pool.
    #[arg(long, value_enum, ignore_case = true)]
    stem: Option<Stem>,
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long)]
    batch_size: Option<usize>,
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long)]
    weight_decay: Option<f64>,
    #[arg(long)]
    warmup_epochs: Option<usize>,
    /// Contrastive temperature (default 0.2 MoCo, 0.5 SimCLR).
    #[arg(long)]
    temperature: Option<f64>,
    /// β, the weight of the MixCo loss.
    #[arg(long)]
    mix_weight: Option<f64>,
    /// MixCo temperature (default 0.05 MoCo, the paper's; 0.5 SimCLR). At 0.05 small encoders
    /// trained for a few epochs collapse; use 0.2 there (ahead of MoCo-v2 at 10 epochs),
    /// 0.1 or --mix-warmup-epochs (docs/RESULTS.md).
    #[arg(long)]
    mix_temperature: Option<f64>,
    /// Ramp β from 0 to --mix-weight over this many epochs.
    #[arg(long)]
    mix_warmup_epochs: Option<usize>,
    /// NHWC activations (faster convolutions; same results up to rounding) [default: true]
    #[arg(long, action = clap::ArgAction::Set)]
    channels_last: Option<bool>,
    /// Mixed precision (bfloat16 convolutions) [default: true on CUDA, false on CPU]
    #[arg(long, action = clap::ArgAction::Set)]
    bf16: Option<bool>,
    /// MoCo queue size K.
    #[arg(long)]
    queue_size: Option<usize>,
    /// MoCo key-encoder momentum.
    #[arg(long)]
    key_momentum: Option<f64>,
    /// Batch-norm groups over the global batch: MoCo's shuffle-BN on one device [default: 8];
    /// SimCLR [default: 1, the whole batch; one per rank with several ranks].
    #[arg(long)]
    bn_splits: Option<usize>,
    #[arg(long)]
    seed: Option<u64>,
    /// Model input size (default: the dataset's).
    #[arg(long)]
    input_size: Option<usize>,
    /// Train on the first N training images only.
    #[arg(long)]
    train_limit: Option<usize>,
    /// kNN monitor every N epochs (0 = off).
    #[arg(long)]
    knn_every: Option<usize>,
    #[arg(long)]
    knn_k: Option<usize>,
    /// Training images in the kNN memory bank (default: all).
    #[arg(long)]
    knn_train_limit: Option<usize>,
    /// Keep a checkpoint every N epochs.
    #[arg(long)]
    save_every: Option<usize>,
}


impl TrainArgs {
    /// The training settings given on the command line, other than --epochs.
    fn settings_given(&self) -> Vec<&'static str> {
        let mut given = Vec::new();
        macro_rules! check {
            ($($f:ident => $flag:literal),*) => { $( if self.$f.is_some() { given.push($flag); } )* };
        }
        if !self.config.is_empty() {
            given.push("--config");
        }
        check!(method => "--method", arch => "--arch", width => "--width", stem => "--stem",
            batch_size => "--batch-size", lr => "--lr", weight_decay => "--weight-decay", warmup_epochs => "--warmup-epochs",
            temperature => "--temperature", mix_weight => "--mix-weight", mix_temperature => "--mix-temperature",
            mix_warmup_epochs => "--mix-warmup-epochs", channels_last => "--channels-last", bf16 => "--bf16",
            queue_size => "--queue-size", key_momentum => "--key-momentum", bn_splits => "--bn-splits", seed => "--seed",
            input_size => "--input-size", train_limit => "--train-limit", knn_every => "--knn-every", knn_k => "--knn-k",
            knn_train_limit => "--knn-train-limit", save_every => "--save-every");
        if self.mixco {
            given.push("--mixco");
        }
        given
    }

    /// The settings of a fresh run of `world` ranks.
    fn config(&self, world: usize) -> Result<TrainConfig> {
        let mut c = TrainConfig::from_toml_files(&self.config)?;
        c.mixco |= self.mixco;
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f.clone() { c.$f = v; } )* };
        }
        set!(method, arch, stem, width, epochs, batch_size, lr, weight_decay, warmup_epochs, mix_weight, mix_warmup_epochs, channels_last, queue_size, key_momentum, seed, knn_every, knn_k, save_every);
        match (self.bn_splits, c.method) {
            (Some(s), Method::Simclr) => c.simclr_bn_splits = s,
            (Some(s), Method::MocoV2) => c.bn_splits = s,
            (None, _) => {}
        }
        macro_rules! set_opt {
            ($($f:ident),*) => { $( if self.$f.is_some() { c.$f = self.$f.clone(); } )* };
        }
        set_opt!(temperature, mix_temperature, input_size, train_limit, knn_train_limit, bf16);
        if c.method == Method::Simclr && c.simclr_bn_splits == 1 && world > 1 {
            // Each rank normalises its own share (DistributedDataParallel without SyncBN).
            c.simclr_bn_splits = world;
        }
        c.validate().map_err(|e| anyhow::anyhow!("--{e}"))?;
        c.validate_world(world).map_err(|e| anyhow::anyhow!("--{e}"))?;
        Ok(c)
    }
}

pub fn run(args: TrainArgs) -> Result<()> {
    let launch = super::launch::rank_or_spawn(args.nproc_per_node, args.threads)?;
    let world = launch.as_ref().map_or(1, |l| l.world);
    // Only rank 0 speaks, but for errors.
    let say = |line: String| if launch.as_ref().is_none_or(|l| l.rank == 0) { eprintln!("{line}") };
    // 0 means libtorch's default, as `mixco eval --threads 0` means ONNX Runtime's.
    match args.threads {
        Some(t) if t < 0 => bail!("--threads {t}: must be 0 (the default) or more"),
        Some(t) if t > 0 => {
            super::check_threads(t as usize).map_err(anyhow::Error::msg)?;
            mixco_train::tch::set_num_threads(t)
        }
        _ => {}
    }
    let resume = args.resume.as_ref().map(|spec| mixco_zoo::resolve(spec, mixco_zoo::FileKind::Checkpoint, super::zoo::tell)).transpose()?;
    let plan = FolderPlan::new(&args.output, resume.as_deref(), args.overwrite).map_err(flagged)?;
    let device = mixco_train::device::select(&rank_device(&args.device, launch.as_ref()))?;
    let dataset = args.data.to_arg();
    let source = dataset.source()?;
    let cut = dataset.rest.check_cut(&source)?;
    say(format!("loading {} ...", source.name()));
    let splits = source.load(&dataset.rest.root.path())?;
    let mut trainer = match &resume {
        Some(path) => resumed(&args, path, &splits, device, world)?,
        None => Trainer::new(args.config(world)?, &splits, device).map_err(flagged)?,
    };
    trainer.dataset_cut = cut;
    if let Some(l) = &launch {
        let dist = Dist::join(l, std::time::Duration::from_secs(args.dist_timeout))?;
        trainer.join(dist).map_err(flagged)?;
    }
    // With the settings and data known good: the folder is ours alone
    // (locked, and so writable) before anything in it changes.
    let lock = match trainer.is_leader() {
        true => {
            let lock = RunLock::acquire(&args.output)?;
            report(plan.prepare(&lock, trainer.step)?, trainer.step);
            Some(lock)
        }
        false => None,
    };
    let c = &trainer.cfg;
    say(format!(
        "{}{} on {} ({} images, {} steps/epoch) with {} on {:?}{}, from step {}",
        c.method,
        if c.mixco { " + MixCo" } else { "" },
        splits.name,
        trainer.steps_per_epoch * c.batch_size,
        trainer.steps_per_epoch,
        trainer.model.arch,
        device,
        if world > 1 { format!(" x {world} ranks ({} images each per step)", c.batch_size / world) } else { String::new() },
        trainer.step
    ));
    let opts = RunOptions { output: args.output.clone(), interrupt: ctrl_c(trainer.is_leader())?, max_steps: None, tensorboard: args.tensorboard };
    let summary = match trainer.is_leader() {
        true => trainer.run(&opts, &mut Terminal::new())?,
        false => trainer.run(&opts, &mut ())?,
    };
    if !trainer.is_leader() {
        std::process::exit(if summary.interrupted { 130 } else { 0 });
    }
    if summary.interrupted {
        let mut cmd = vec!["mixco".to_string(), "train".into(), "--resume".into(), summary.checkpoint.display().to_string()];
        cmd.extend(data_flags(&args.data, &source));
        cmd.extend(["--output".into(), args.output.display().to_string()]);
        if world > 1 && args.nproc_per_node > 1 {
            cmd.extend(["--nproc-per-node".into(), world.to_string()]);
        }
        let cmd: Vec<String> = cmd.iter().map(|a| shell_quote(a)).collect();
        eprintln!("stopped at step {}; resume with: {}", trainer.step, cmd.join(" "));
        drop(lock);
        std::process::exit(130);
    }
    print_summary(&args.output.join(LOG_FILE))?;
    println!("checkpoint: {}", summary.checkpoint.display());
    // Again at the end, where it is not lost among the epoch lines.
    for w in &summary.warnings {
        eprintln!("{}", warning_text(w));
    }
    Ok(())
}

/// A rank's device: `auto` and `cuda` mean the GPU of its LOCAL_RANK.
fn rank_device(spec: &str, launch: Option<&Launch>) -> String {
    let Some(l) = launch else { return spec.to_string() };
    match spec.trim().to_ascii_lowercase().as_str() {
        "cuda" => format!("cuda:{}", l.local_rank),
        "auto" if mixco_train::device::select("auto").is_ok_and(|d| d.is_cuda()) => format!("cuda:{}", l.local_rank),
        _ => spec.to_string(),
    }
}

/// The run in checkpoint `path`, with only --epochs allowed to change.
fn resumed(args: &TrainArgs, path: &std::path::Path, splits: &mixco_data::Splits, device: mixco_train::tch::Device, world: usize) -> Result<Trainer> {
    let given = args.settings_given();
    if !given.is_empty() {
        bail!(
            "{}: a resumed run keeps the settings in its checkpoint; drop {} (only --epochs may change, to extend the run), \
             or start a new run with them",
            path.display(),
            given.join(", ")
        );
    }
    let mut t = Trainer::resume(path, splits, device).map_err(flagged)?;
    t.cfg.validate_world(world).map_err(|e| anyhow::anyhow!("{}: resumed on {world} ranks: --{e}", path.display()))?;
    if let Some(e) = args.epochs.filter(|&e| e != t.cfg.epochs) {
        let was = t.cfg.epochs;
        t.set_epochs(e).map_err(|e| anyhow::anyhow!("--{e}"))?;
        eprintln!("--epochs {e}: the run now has {e} epochs (was {was}); the learning-rate schedule follows the new length, and its checkpoints record it");
    }
    Ok(t)
}

/// What preparing the run folder did.
fn report(prepared: Prepared, step: usize) {
    for p in prepared.stale {
        eprintln!("removed {}, left by a writer that did not finish", p.display());
    }
    if prepared.dropped_lines > 0 {
        eprintln!("log.jsonl: dropped {} line(s) logged after the checkpoint's step {step} (they are trained again)", prepared.dropped_lines);
    }
}

/// Ctrl-C once: stop after the current step with a checkpoint; twice: at once.
/// Of several ranks, rank 0 (the `leader`) says so.
fn ctrl_c(leader: bool) -> Result<Arc<AtomicBool>> {
    let interrupt = Arc::new(AtomicBool::new(false));
    let presses = Arc::new(AtomicUsize::new(0));
    let flag = interrupt.clone();
    ctrlc::set_handler(move || {
        if presses.fetch_add(1, Ordering::SeqCst) > 0 {
            if leader {
                eprintln!("\ninterrupted twice: exiting without a checkpoint");
            }
            std::process::exit(130);
        }
        if leader {
            eprintln!("\ninterrupt: saving a checkpoint after this step (press Ctrl-C again to quit at once)");
        }
        flag.store(true, Ordering::SeqCst);
    })
    .context("cannot install the Ctrl-C handler")?;
    Ok(interrupt)
}

/// A setting's error as the flag that sets it; a folder holding a run with
/// the flags that resolve it.
fn flagged(e: mixco_train::TrainError) -> anyhow::Error {
    match e {
        mixco_train::TrainError::Config(c) => anyhow::anyhow!("--{c}"),
        mixco_train::TrainError::HoldsRun { dir } => anyhow::anyhow!(
            "{} already holds a run (log.jsonl, checkpoints); continue it with --resume {}, \
             pass --overwrite to start afresh there (its log and checkpoints are deleted), or choose another --output",
            dir.display(),
            dir.join(LAST_FILE).display()
        ),
        e => e.into(),
    }
}

/// The flags that choose the data, as given: a resume needs the same data.
fn data_flags(d: &super::data::DatasetFlag, source: &mixco_data::Source) -> Vec<String> {
    let mut f = vec!["--dataset".to_string(), d.dataset.clone()];
    if let Some(root) = &d.rest.root.root {
        f.extend(["--root".into(), root.display().to_string()]);
    }
    let r = &d.rest;
    match source {
        mixco_data::Source::Synthetic(_) => {
            for (flag, v) in [("--synthetic-train", r.synthetic_train as u64), ("--synthetic-test", r.synthetic_test as u64), ("--synthetic-seed", r.synthetic_seed)] {
                f.extend([flag.to_string(), v.to_string()]);
            }
        }
        mixco_data::Source::Folder { .. } => f.extend(["--image-size".into(), r.image_size.to_string()]),
        _ => {}
    }
    if r.cut_data {
        f.push("--cut-data".into());
    }
    f
}

/// `arg` as a POSIX shell word.
fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain { arg.to_string() } else { format!("'{}'", arg.replace('\'', "'\\''")) }
}

/// The random initialisation against the trained encoder, from the log.
fn print_summary(log: &std::path::Path) -> Result<()> {
    use prettytable::{format, row, Table};
    let rows = run_dir::read_log(log)?;
    let pct = |v: Option<f64>| mixco_eval::report::percent(v, "%");
    let mut t = Table::new();
    t.set_format(*format::consts::FORMAT_BOX_CHARS);
    t.set_titles(row!["encoder (test split)", r->"kNN top-1", r->"linear probe top-1", r->"loss"]);
    let first = rows.iter().find(|r| r.epoch == 0);
    if let Some(r) = first {
        t.add_row(row!["random initialisation", r->pct(r.knn_top1), r->pct(r.probe_top1), r->"-"]);
    }
    if let Some(r) = rows.last().filter(|r| r.epoch > 0) {
        t.add_row(row![format!("after {} epochs", r.epoch), r->pct(r.knn_top1), r->pct(r.probe_top1), r->r.loss.map(|l| format!("{l:.4}")).unwrap_or_default()]);
    }
    t.printstd();
    Ok(())
}

/// What a terminal shows of a run: a progress bar per epoch (on a terminal
/// only) and one line per epoch on stderr.
struct Terminal {
    bar: indicatif::ProgressBar,
    visible: bool,
}

impl Terminal {
    fn new() -> Terminal {
        Terminal { bar: indicatif::ProgressBar::hidden(), visible: std::io::stderr().is_terminal() }
    }
}

impl Observer for Terminal {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Initial(log) => eprintln!(
                "epoch 0 (random initialisation): kNN {:.2}%, linear probe {:.2}%",
                100.0 * log.knn_top1.unwrap_or(0.0),
                100.0 * log.probe_top1.unwrap_or(0.0)
            ),
            Event::EpochStarted { epoch, epochs, images, done } => {
                self.bar = if self.visible { indicatif::ProgressBar::new(images as u64) } else { indicatif::ProgressBar::hidden() };
                self.bar.set_style(indicatif::ProgressStyle::with_template("{msg} [{bar:25}] {pos}/{len} img {per_sec} eta {eta}").unwrap().progress_chars("=> "));
                self.bar.set_message(format!("epoch {}/{epochs}", epoch + 1));
                self.bar.set_position(done as u64);
            }
            Event::Step { epoch, epochs, images, loss } => {
                self.bar.inc(images as u64);
                self.bar.set_message(format!("epoch {}/{epochs} loss {loss:.3}", epoch + 1));
            }
            Event::EpochEnded { epochs, log } => {
                self.bar.finish_and_clear();
                eprintln!("{}", epoch_line(log, epochs));
            }
            Event::EpochLeft => self.bar.abandon(),
            Event::Warning(w) => eprintln!("{}", warning_text(w)),
        }
    }
}

/// The collapse warning with what to change, by flag.
fn warning_text(w: &mixco_train::collapse::CollapseWarning) -> String {
    let advice = match w.mixco {
        Some(_) => "try --mix-temperature 0.2, or --mix-warmup-epochs 2",
        None => "a lower --lr or a higher --temperature may help",
    };
    format!("warning: {w}; {advice} (docs/RESULTS.md)")
}

/// `epoch 3/10: loss ... (contrastive ..., mix ...)  cos ..  kNN ..%  N img/s`
fn epoch_line(log: &EpochLog, epochs: usize) -> String {
    format!(
        "epoch {}/{epochs}: loss {:.4} (contrastive {:.4}{})  cos {:.2}{}  {:.0} img/s",
        log.epoch,
        log.loss.unwrap_or(f64::NAN),
        log.loss_contrastive.unwrap_or(f64::NAN),
        log.loss_mix.map(|m| format!(", mix {m:.4}")).unwrap_or_default(),
        log.query_cosine.unwrap_or(f64::NAN),
        log.knn_top1.map(|k| format!("  kNN {:.2}%", 100.0 * k)).unwrap_or_default() + &log.probe_top1.map(|p| format!("  linear probe {:.2}%", 100.0 * p)).unwrap_or_default(),
        log.images_per_s
    )
}

#[cfg(test)]
mod tests {
    use mixco_train::collapse::CollapseWarning;

    #[test]
    fn the_collapse_warning_names_the_flags_to_change() {
        let w = super::warning_text(&CollapseWarning { epoch: 1, cosine: 0.93, mixco: Some((0.05, 1.0)) });
        assert!(w.starts_with("warning: the projections are collapsing") && w.contains("β / T_mix = 20") && w.contains("--mix-warmup-epochs 2"), "{w}");
        let w = super::warning_text(&CollapseWarning { epoch: 1, cosine: 0.93, mixco: None });
        assert!(w.contains("a lower --lr or a higher --temperature") && !w.contains("mix temperature"), "{w}");
    }
}
