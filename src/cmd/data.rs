use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use mixco_data::fetch::{fetch, FetchOptions, Outcome};
use mixco_data::info::DatasetInfo;
use mixco_data::synthetic::SyntheticConfig;
use mixco_data::{KnownDataset, Source};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Args)]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

/// Where datasets live. Defaults to $MIXCO_DATA, else ~/.local/share/mixco/datasets.
#[derive(Args, Clone)]
pub struct RootArg {
    /// Data root holding cifar-10-batches-bin/, cifar-100-binary/, tiny-imagenet-200/.
    #[arg(long, env = "MIXCO_DATA")]
    pub root: Option<PathBuf>,
}

impl RootArg {
    pub fn path(&self) -> PathBuf {
        self.root.clone().unwrap_or_else(mixco_data::default_root)
    }
}

/// How to pick a dataset on the command line.
#[derive(Args, Clone)]
pub struct DatasetArg {
    /// cifar10, cifar100, cifar100-coarse, tinyimagenet, synthetic or folder:PATH.
    pub dataset: String,
    #[command(flatten)]
    pub rest: DatasetExtra,
}

/// The dataset flags of `train` and `eval`: `--dataset NAME` (default synthetic).
#[derive(Args)]
pub struct DatasetFlag {
    /// cifar10, cifar100, cifar100-coarse, tinyimagenet, synthetic or folder:PATH.
    #[arg(long, default_value = "synthetic")]
    pub dataset: String,
    #[command(flatten)]
    pub rest: DatasetExtra,
}

impl DatasetFlag {
    pub fn to_arg(&self) -> DatasetArg {
        DatasetArg { dataset: self.dataset.clone(), rest: self.rest.clone() }
    }
}

/// Data root and the options of folder and synthetic datasets.
#[derive(Args, Clone)]
pub struct DatasetExtra {
    #[command(flatten)]
    pub root: RootArg,
    /// Image size for folder:PATH datasets (shorter side resized, centre crop).
    #[arg(long, default_value_t = 32)]
    pub image_size: u32,
    /// Seed of the synthetic dataset.
    #[arg(long, default_value_t = 0)]
    pub synthetic_seed: u64,
    /// Training images of the synthetic dataset.
    #[arg(long, default_value_t = 10_000)]
    pub synthetic_train: usize,
    /// Test images of the synthetic dataset.
    #[arg(long, default_value_t = 2_000)]
    pub synthetic_test: usize,
    /// Accept CIFAR files holding fewer records than the official ones (a
    /// deliberately cut set, recorded in checkpoints and reports).
    #[arg(long)]
    pub cut_data: bool,
}

impl DatasetExtra {
    /// The CIFAR files under the root that hold fewer records than the
    /// official ones: an error unless --cut-data (a file cut at a record
    /// boundary otherwise reads as a valid, smaller dataset).
    pub fn check_cut(&self, source: &Source) -> Result<Vec<String>> {
        let Some(known) = source.known() else { return Ok(Vec::new()) };
        let dir = self.root.path().join(known.dir_name());
        let cut = known.cut_files(&dir);
        if !cut.is_empty() && !self.cut_data {
            anyhow::bail!(
                "{}: {}: not the official files (truncated?); fetch them again, or pass --cut-data to use a deliberately cut set (it is recorded)",
                dir.display(),
                cut.join("; ")
            );
        }
        Ok(cut)
    }
}

impl DatasetArg {
    pub fn source(&self) -> Result<Source> {
        let r = &self.rest;
        Ok(match Source::parse(&self.dataset)? {
            Source::Folder { path, .. } => Source::Folder { path, size: r.image_size },
            Source::Synthetic(_) => Source::Synthetic(SyntheticConfig {
                seed: r.synthetic_seed,
                train: r.synthetic_train,
                test: r.synthetic_test,
                size: 32,
            }),
            s => s,
        })
    }
}

#[derive(Subcommand)]
enum DataCommand {
    /// Download (or import) a dataset, verify it and unpack it under the data root.
    #[command(after_help = "Examples:\n  mixco data fetch cifar10\n  mixco data fetch tinyimagenet --root /data\n  mixco data fetch cifar10 --archive ~/Downloads/cifar-10-binary.tar.gz")]
    Fetch {
        /// cifar10, cifar100 or tinyimagenet.
        dataset: String,
        #[command(flatten)]
        root: RootArg,
        /// Import this archive (.tar, .tar.gz, .tar.xz, .zip) instead of downloading.
        #[arg(long)]
        archive: Option<PathBuf>,
        /// Download from this URL (a mirror) instead of the official one.
        #[arg(long)]
        url: Option<String>,
        /// Expected MD5 of the archive, when it is not the official one.
        #[arg(long)]
        md5: Option<String>,
        /// Skip the archive's MD5 check (the official files' SHA-256 are still checked).
        #[arg(long)]
        no_verify: bool,
        /// Keep the downloaded archive in ROOT/.downloads.
        #[arg(long)]
        keep_archive: bool,
    },
    /// Split sizes, per-class counts and checksum status of a dataset.
    #[command(after_help = "Examples:\n  mixco data info cifar10 --root /data\n  mixco data info synthetic --json")]
    Info {
        #[command(flatten)]
        dataset: DatasetArg,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write a PNG grid of the first training images.
    #[command(after_help = "Example:\n  mixco data preview synthetic -o shapes.png")]
    Preview {
        #[command(flatten)]
        dataset: DatasetArg,
        /// Output PNG.
        #[arg(short, long)]
        output: PathBuf,
        /// Number of images (a square grid).
        #[arg(short, long, default_value_t = 64)]
        count: usize,
    },
}

pub fn run(args: DataArgs) -> Result<()> {
    match args.command {
        DataCommand::Fetch { dataset, root, archive, url, md5, no_verify, keep_archive } => {
            let Some(known) = KnownDataset::parse(&dataset) else {
                bail!("`{dataset}` cannot be fetched: expected cifar10, cifar100 or tinyimagenet");
            };
            let mut opts = FetchOptions::new(known);
            opts.archive = archive;
            opts.verify_archive = !no_verify;
            opts.keep_archive = keep_archive;
            opts.progress = std::io::stderr().is_terminal();
            if let Some(u) = url {
                opts.spec.url = u;
                opts.spec.size = None;
            }
            if let Some(m) = md5 {
                opts.spec.md5 = m;
            }
            let root = root.path();
            match fetch(known, &root, &opts)? {
                Outcome::AlreadyPresent(dir) => println!("{known}: already present at {}", dir.display()),
                Outcome::Installed { dir, files } => {
                    println!("{known}: {files} files verified and installed at {}", dir.display())
                }
            }
            Ok(())
        }
        DataCommand::Info { dataset, json } => {
            let source = dataset.source()?;
            let info = mixco_data::info::info(&source, &dataset.rest.root.path())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                print_info(&info);
            }
            // After the report: what differs from the official files is an exit code too.
            if info.checksums_match() == Some(false) {
                anyhow::bail!("{}: files differ from the official ones (see the checksums above)", info.location.as_deref().unwrap_or(&info.dataset));
            }
            dataset.rest.check_cut(&source)?;
            Ok(())
        }
        DataCommand::Preview { dataset, output, count } => {
            let splits = dataset.source()?.load(&dataset.rest.root.path())?;
            let png = mixco_data::preview::grid_png(&splits.train, count)?;
            mixco_data::fsutil::write_atomic(&output, &png)?;
            println!("wrote {} ({} images of {})", output.display(), count.min(splits.train.len()), splits.name);
            Ok(())
        }
    }
}

fn print_info(info: &DatasetInfo) {
    use prettytable::{format, row, Table};
    println!("dataset:   {}", info.dataset);
    if let Some(loc) = &info.location {
        println!("location:  {loc}");
    }
    println!("images:    {}x{}x{} uint8, {} classes", info.image_size[0], info.image_size[1], info.image_size[2], info.classes.len());
    for s in &info.splits {
        println!("{:<10} {} images", format!("{}:", s.name), s.images);
    }
    let mut t = Table::new();
    t.set_format(*format::consts::FORMAT_CLEAN);
    t.set_titles(row!["class", "name", r->"train", r->"test"]);
    for (i, name) in info.classes.iter().enumerate() {
        t.add_row(row![i, name, r->info.splits[0].per_class[i], r->info.splits[1].per_class[i]]);
    }
    t.printstd();
    match info.checksums_match() {
        None => println!("checksums: no official per-file SHA-256 known for this dataset"),
        Some(all) => {
            for c in &info.checksums {
                println!("  {:<20} {}", c.file, if c.matches { "OK" } else { "MISMATCH" });
            }
            println!("checksums: {}", if all { "all files match the official SHA-256" } else { "MISMATCH (see above)" });
        }
    }
    println!("train fingerprint: {}", info.train_fingerprint);
}
