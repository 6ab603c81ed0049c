use anyhow::{bail, Result};
use clap::{Args, Subcommand, ValueEnum};
use mixco_data::download::DownloadOptions;
use mixco_model::{Depth, Stem};
use mixco_zoo::import::{import_file, ImportOptions};
use mixco_zoo::{FileKind, FileStatus, Zoo};
use std::path::PathBuf;

#[derive(Args)]
#[command(after_help = "Examples:
  mixco zoo list
  mixco zoo pull supervised-r18
  mixco eval zoo:supervised-r18 --dataset cifar10
  mixco zoo pull mixco-official-r18-tinyimagenet --trust-unverified
  mixco zoo verify
  mixco zoo import moco_checkpoint_0199.pth.tar -o moco.safetensors

Files are cached in $MIXCO_CACHE/zoo (default ~/.cache/mixco/zoo), each
checked before it is kept against the hash its publisher published (SHA-256,
a SHA-256 prefix or MD5); the first pull pins its full SHA-256, which every
later use checks. Publishers' torch.save files are imported on first use.
`zoo:NAME` works wherever a checkpoint or ONNX file is expected.")]
pub struct ZooArgs {
    /// Manifest to use instead of the embedded one (a path or an http(s) URL) [env: MIXCO_ZOO_MANIFEST]
    #[arg(long, global = true)]
    manifest: Option<String>,
    /// Cache folder [default: $MIXCO_CACHE/zoo or ~/.cache/mixco/zoo]
    #[arg(long, global = true)]
    cache_dir: Option<PathBuf>,
    /// Fetch URLs starting with FROM from TO instead (a mirror or a local
    /// copy of a publisher's host); repeatable [env: MIXCO_ZOO_MIRROR as FROM=TO;FROM=TO]
    #[arg(long, global = true, value_name = "FROM=TO")]
    mirror: Vec<String>,
    /// Pull files whose publisher published no hash (e.g. the MixCo paper's
    /// Google Drive checkpoint): their SHA-256 is pinned at this first pull
    /// and checked on every later use.
    #[arg(long, global = true)]
    trust_unverified: bool,
    #[command(subcommand)]
    command: ZooCommand,
}

#[derive(Subcommand)]
enum ZooCommand {
    /// The models in the manifest, with their measured accuracy.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Download models into the cache (resumable; SHA-256 checked).
    Pull {
        /// Model names (see `mixco zoo list`).
        #[arg(required_unless_present = "all")]
        names: Vec<String>,
        /// Every model in the manifest.
        #[arg(long)]
        all: bool,
        /// Only this file of each model (default: all of them).
        #[arg(long, value_enum)]
        kind: Option<Kind>,
    },
    /// Re-hash cached files against the manifest (all cached models, or NAME).
    Verify { name: Option<String> },
    /// Print the cached file of a model.
    Path {
        name: String,
        #[arg(long, value_enum, default_value = "checkpoint")]
        kind: Kind,
    },
    /// Convert a PyTorch checkpoint (MoCo, the official MixCo code,
    /// solo-learn, lightly, mmselfsup, VISSL, torchvision; zip or legacy
    /// torch.save format) into a mixco checkpoint; no pickle code runs.
    #[command(after_help = "Examples:
  mixco zoo import moco_v2_800ep_pretrain.pth.tar -o moco.safetensors
  mixco zoo import solo-learn-byol.ckpt -o byol.safetensors --input-size 32
  mixco zoo import moco.pth.tar -o key-encoder.safetensors --prefix state_dict.encoder_k.

The layout is recognised from the tensors' names (docs/ZOO.md lists them);
the query / online encoder is imported, never the momentum copy. Objects the
weights do not need (hyper-parameters, optimiser state, callbacks) are not
read, only named; a file whose weights can be reached only through such an
object is refused.")]
    Import(ImportArgs),
    /// Write a run's release bundle: encoder checkpoint, ONNX, settings, model
    /// card and manifest entry, ready for any static host or a Hugging Face
    /// Hub repository.
    #[command(after_help = "Examples:
  mixco zoo publish runs/r18w16-mixco runs/r18w16-mixco/eval.json -o dist/r18w16-mixco
  mixco zoo publish RUN EVAL.json -o dist/ --hub mixco-rs/r18w16-mixco   # URLs hf://mixco-rs/r18w16-mixco/FILE
  mixco zoo pull NAME --manifest dist/manifest.toml                       # serves it from the folder")]
    Publish {
        /// A finished run folder (final.safetensors).
        run: PathBuf,
        /// Its `mixco eval --json` report (one dataset, or --transfer's list).
        eval: PathBuf,
        /// The bundle's folder.
        #[arg(short, long)]
        output: PathBuf,
        /// Model name [default: from architecture, data, method and epochs].
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
        /// OWNER/REPO on the Hugging Face Hub the files will be uploaded to.
        #[arg(long, value_name = "OWNER/REPO")]
        hub: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    Checkpoint,
    Onnx,
    /// A publisher's torch.save file.
    Pytorch,
}

impl From<Kind> for FileKind {
    fn from(k: Kind) -> FileKind {
        match k {
            Kind::Checkpoint => FileKind::Checkpoint,
            Kind::Onnx => FileKind::Onnx,
            Kind::Pytorch => FileKind::Pytorch,
        }
    }
}

#[derive(Args)]
struct ImportArgs {
    /// A `torch.save` file (.pth, .pth.tar, .pt).
    file: PathBuf,
    /// Output .safetensors checkpoint (written atomically).
    #[arg(short, long)]
    output: PathBuf,
    /// Architecture, when the tensors do not tell (resnet10/18/34/50).
    #[arg(long, value_enum, ignore_case = true)]
    arch: Option<Depth>,
    /// Base width (default: from conv1.weight).
    #[arg(long)]
    width: Option<usize>,
    /// Stem (default: cifar for a 3x3 conv1, imagenet for 7x7).
    #[arg(long, value_enum, ignore_case = true)]
    stem: Option<Stem>,
    /// Input size (default: 32 for the cifar stem, 224 for imagenet).
    #[arg(long)]
    input_size: Option<usize>,
    /// Normalisation mean, e.g. 0.485,0.456,0.406 (default: CIFAR-10's for the cifar stem, ImageNet's otherwise).
    #[arg(long, value_parser = super::parse_triple)]
    mean: Option<[f32; 3]>,
    /// Normalisation std.
    #[arg(long, value_parser = super::parse_triple)]
    std: Option<[f32; 3]>,
    /// Method recorded in the metadata (default: moco-v2 for MoCo checkpoints, imported otherwise).
    #[arg(long)]
    method: Option<String>,
    /// Record that the model was trained with MixCo.
    #[arg(long)]
    mixco: bool,
    /// The encoder's dotted prefix in the file, to import another
    /// sub-network than the layout's (e.g. state_dict.encoder_k.).
    #[arg(long)]
    prefix: Option<String>,
    /// Print every mapped key (default: a count).
    #[arg(short, long)]
    verbose: bool,
}

/// (item, group) pairs as groups of items, in first-seen order.
fn grouped(pairs: &[(String, String)]) -> Vec<(&str, Vec<&str>)> {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for (item, group) in pairs {
        match groups.iter_mut().find(|(g, _)| g == group) {
            Some((_, items)) => items.push(item),
            None => groups.push((group, vec![item])),
        }
    }
    groups
}

/// What the zoo did, on stderr.
pub fn tell(notice: &mixco_zoo::Notice) {
    eprintln!("{notice}");
}

pub fn run(args: ZooArgs) -> Result<()> {
    match args.command {
        ZooCommand::Import(a) => return import(a),
        ZooCommand::Publish { run, eval, output, name, description, hub } => {
            let opts = mixco_zoo::publish::PublishOptions { name, description, hub };
            let bundle = mixco_zoo::publish::publish(&run, &eval, &output, &opts)?;
            for f in &bundle.files {
                println!("wrote {}", f.display());
            }
            println!("serve it with: mixco zoo pull {} --manifest {}", bundle.name, output.join("manifest.toml").display());
            return Ok(());
        }
        _ => {}
    }
    let dir = args.cache_dir.clone().unwrap_or_else(mixco_zoo::default_cache_dir);
    let mut zoo = Zoo::open(args.manifest.as_deref(), dir)?;
    for m in &args.mirror {
        zoo.mirrors.extend(mixco_zoo::locate::parse_mirrors(m)?);
    }
    zoo.trust_unverified = args.trust_unverified;
    zoo.notify = Box::new(tell);
    match args.command {
        ZooCommand::List { json } => list(&zoo, json),
        ZooCommand::Pull { names, all, kind } => {
            let names: Vec<String> = if all { zoo.manifest.models.iter().map(|m| m.name.clone()).collect() } else { names };
            for name in names {
                let model = zoo.manifest.get(&name)?;
                let kinds: Vec<FileKind> = match kind {
                    Some(k) => vec![k.into()],
                    None => model.files.iter().map(|f| f.kind).collect(),
                };
                for (path, fetched) in zoo.pull(&name, &kinds, &DownloadOptions::default())? {
                    println!("{} {}", if fetched { "pulled  " } else { "verified" }, path.display());
                }
            }
            Ok(())
        }
        ZooCommand::Verify { name } => verify(&zoo, name.as_deref()),
        ZooCommand::Path { name, kind } => {
            let model = zoo.manifest.get(&name)?;
            let kind = FileKind::from(kind);
            if model.file(kind).is_none() {
                bail!("zoo model `{name}` has no {} file", kind.extension());
            }
            let path = zoo.path(model, kind);
            if !path.is_file() {
                bail!("zoo model `{name}` is not pulled yet: run `mixco zoo pull {name}`");
            }
            println!("{}", path.display());
            Ok(())
        }
        ZooCommand::Import(_) | ZooCommand::Publish { .. } => unreachable!("handled above"),
    }
}

fn list(zoo: &Zoo, json: bool) -> Result<()> {
    if json {
        let mut v = serde_json::to_value(&zoo.manifest)?;
        for (m, out) in zoo.manifest.models.iter().zip(v["model"].as_array_mut().into_iter().flatten()) {
            out["cached"] = m.files.iter().all(|f| zoo.path(m, f.kind).is_file()).into();
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if zoo.manifest.models.is_empty() {
        println!("no models in the manifest ({})", zoo.source);
        return Ok(());
    }
    let mut t = prettytable::Table::new();
    t.set_format(*prettytable::format::consts::FORMAT_NO_BORDER_LINE_SEPARATOR);
    t.set_titles(prettytable::row!["name", "publisher", "method", "arch", "data", "epochs", "linear", "kNN-200", "size", "verified by", "cached"]);
    for m in &zoo.manifest.models {
        let method = if m.mixco { format!("{} + MixCo", m.method) } else { m.method.clone() };
        let metric = |p: &str| m.metric(&m.dataset, p).map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into());
        let size: Option<u64> = m.files.iter().map(|f| f.size).sum();
        let checks: Vec<&str> = m.files.iter().map(|f| f.check().kind()).collect();
        let cached = m.files.iter().filter(|f| zoo.path(m, f.kind).is_file()).count();
        t.add_row(prettytable::row![
            m.name,
            if m.publisher.is_empty() { "-" } else { &m.publisher },
            method,
            format!("{} w{} {}", m.arch, m.width, m.stem),
            m.dataset,
            if m.epochs == 0 { "-".to_string() } else { m.epochs.to_string() },
            metric("linear"),
            metric("knn200"),
            size.map(|s| format!("{:.1} MB", s as f64 / 1e6)).unwrap_or_else(|| "?".into()),
            checks.join(", "),
            format!("{cached}/{}", m.files.len())
        ]);
    }
    t.printstd();
    println!("manifest: {}; cache: {}", zoo.source, zoo.dir.display());
    Ok(())
}

fn verify(zoo: &Zoo, name: Option<&str>) -> Result<()> {
    let models: Vec<_> = match name {
        Some(n) => vec![zoo.manifest.get(n)?],
        None => zoo.manifest.models.iter().collect(),
    };
    let (mut bad, mut checked) = (0, 0);
    for m in models {
        for f in &m.files {
            let path = zoo.path(m, f.kind);
            match zoo.status(m, f)? {
                FileStatus::Missing if name.is_some() => {
                    println!("missing  {} (run `mixco zoo pull {}`)", path.display(), m.name);
                    bad += 1;
                }
                FileStatus::Missing => {}
                FileStatus::Verified => {
                    println!("ok       {}", path.display());
                    checked += 1;
                }
                FileStatus::Corrupt(why) => {
                    println!("DAMAGED  {} ({why}); `mixco zoo pull {}` downloads it again", path.display(), m.name);
                    bad += 1;
                }
            }
        }
    }
    if bad > 0 {
        bail!("{bad} zoo file(s) missing or damaged");
    }
    if checked == 0 {
        println!("nothing pulled yet (cache: {})", zoo.dir.display());
    }
    Ok(())
}

fn import(a: ImportArgs) -> Result<()> {
    let opts = ImportOptions {
        arch: a.arch,
        width: a.width,
        stem: a.stem,
        input_size: a.input_size,
        mean: a.mean,
        std: a.std,
        method: a.method,
        mixco: a.mixco,
        prefix: a.prefix,
    };
    let imp = import_file(&a.file, &opts)?;
    let c = &imp.config;
    println!(
        "{}: {} layout ({} format), encoder `{}` -> {} width {} {:?} stem{}, input {} px, mean {:?}, std {:?}",
        a.file.display(),
        imp.layout,
        imp.format,
        imp.prefix,
        c.arch.name(),
        c.arch.width,
        c.arch.stem,
        if c.head.out_dim > 0 { format!(", head {}-{}-{}", c.head.in_dim, c.head.hidden, c.head.out_dim) } else { ", no head".into() },
        c.input_size,
        c.mean,
        c.std
    );
    println!("mapped {} tensors{}", imp.mapped.len(), if a.verbose { ":" } else { " (-v lists them)" });
    if a.verbose {
        for (from, to) in &imp.mapped {
            println!("  {from} -> {to}");
        }
    } else if let Some((from, to)) = imp.mapped.first() {
        println!("  e.g. {from} -> {to}");
    }
    let shown = |keys: &[&str]| if keys.len() > 4 && !a.verbose { format!("{}, ... ({} in all)", keys[..3].join(", "), keys.len()) } else { keys.join(", ") };
    // Dropped keys by reason, so that a 100-tensor key encoder is one line.
    println!("dropped {} entries:", imp.dropped.len());
    for (why, keys) in grouped(&imp.dropped) {
        println!("  {why}: {}", shown(&keys));
    }
    if !imp.skipped.is_empty() {
        // By class: torch.load would import (and may call) each of these.
        println!("skipped {} objects of classes outside the weights, not read (torch.load would import them):", imp.skipped.len());
        for (class, ats) in grouped(&imp.skipped) {
            println!("  {class}: {}", shown(&ats));
        }
    }
    imp.checkpoint.save(&a.output)?;
    println!("wrote {}", a.output.display());
    Ok(())
}
