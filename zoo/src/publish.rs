//! `mixco zoo publish`: a finished run and its evaluation as a release
//! bundle that any static host or Hugging Face Hub repository can serve:
//! the encoder checkpoint (backbone and head, without the key encoder,
//! queue and optimiser state), its ONNX export, the training settings as a
//! `mixco train --config` file, a model card, and the manifest entry
//! (`--manifest DIR/manifest.toml` serves it; its URLs are relative, or
//! `hf://` when the Hub repository is named).

use crate::manifest::{File, FileKind, Manifest, Metric, Model};
use crate::Error;
use mixco_data::fsutil::{sha256_hex, write_atomic};
use mixco_model::run::FINAL_FILE;
use mixco_model::Checkpoint;
use std::path::{Path, PathBuf};

pub struct PublishOptions {
    /// The model's name (default: from its architecture, data and method).
    pub name: Option<String>,
    pub description: String,
    /// `OWNER/REPO` on the Hugging Face Hub: URLs `hf://OWNER/REPO/FILE`.
    pub hub: Option<String>,
}

/// What was written.
pub struct Bundle {
    pub name: String,
    pub files: Vec<PathBuf>,
}

/// Writes the bundle of `run` (a run folder holding final.safetensors)
/// evaluated in `report` (a `mixco eval --json` file) into `out`. A folder
/// may hold several bundles: its manifest lists each (a name already listed
/// is refused), each model's card is `NAME.md` (and `README.md` while there
/// is none), and no existing file is overwritten.
pub fn publish(run: &Path, report: &Path, out: &Path, opts: &PublishOptions) -> Result<Bundle, Error> {
    if let Some(hub) = &opts.hub {
        check_hub(hub)?;
    }
    let ck_path = run.join(FINAL_FILE);
    let bytes = mixco_data::fsutil::read_file(&ck_path)?;
    let ck = Checkpoint::encoder_from_bytes(&ck_path, &bytes)?;
    let cfg = ck.config(&ck_path)?;
    let meta = |k: &str| ck.metadata.get(k).cloned().unwrap_or_default();
    let hparams: serde_json::Value = serde_json::from_str(&meta("hparams")).map_err(|e| invalid(&ck_path, format!("metadata `hparams`: {e}")))?;
    let epochs = hparams["epochs"].as_u64().unwrap_or(0) as usize;
    let dataset = meta("dataset");
    let name = opts.name.clone().unwrap_or_else(|| {
        let method = if cfg.mixco { format!("{}-mixco", cfg.method) } else { cfg.method.clone() };
        // A folder dataset's name is its path: only its last part, in the manifest's characters.
        let data = dataset.rsplit(['/', ':']).find(|p| !p.is_empty()).unwrap_or("data");
        let data: String = data.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '-' }).collect();
        format!("{}w{}-{data}-{method}-{epochs}ep", cfg.arch.depth.to_string().replace("resnet", "r"), cfg.arch.width)
    });
    let ck_bytes = ck.to_bytes(&out.join(format!("{name}.safetensors")))?;
    let onnx = mixco_export::export(&ck, &ck_path, &sha256_hex(&bytes), &Default::default()).map_err(|e| invalid(&ck_path, e.to_string()))?;
    // The report must be this encoder's: its ONNX export, byte for byte.
    let reports = mixco_eval::report::read(report)?;
    let onnx_sha = sha256_hex(&onnx.bytes);
    let metrics = metrics(&reports, &onnx_sha).ok_or_else(|| {
        let seen: Vec<String> = reports.iter().flat_map(|r| r.results.iter().map(|m| format!("{} ({})", m.model, &m.sha256[..m.sha256.len().min(12)]))).collect();
        Error::Invalid(format!(
            "{}: evaluates {}, not the encoder of {} (its ONNX export has SHA-256 {}); evaluate `mixco export --onnx {}` and publish that report",
            report.display(),
            if seen.is_empty() { "no model".to_string() } else { seen.join(", ") },
            run.display(),
            &onnx_sha[..12],
            ck_path.display()
        ))
    })?;
    std::fs::create_dir_all(out).map_err(|e| mixco_data::Error::io(out, e))?;
    let settings = settings_toml(&hparams);
    let files = [(FileKind::Checkpoint, format!("{name}.safetensors"), ck_bytes), (FileKind::Onnx, format!("{name}.onnx"), onnx.bytes)];
    let url = |file: &str| opts.hub.as_ref().map(|h| format!("hf://{h}/{file}")).unwrap_or_else(|| file.to_string());
    let entry = Model {
        name: name.clone(),
        description: opts.description.clone(),
        publisher: opts.hub.clone().unwrap_or_default(),
        method: cfg.method.clone(),
        mixco: cfg.mixco,
        arch: cfg.arch.name(),
        width: cfg.arch.width,
        stem: cfg.arch.stem.to_string(),
        dataset: dataset.clone(),
        input_size: None,
        epochs,
        files: files
            .iter()
            .map(|(kind, file, bytes)| File { kind: *kind, urls: vec![url(file)], size: Some(bytes.len() as u64), sha256: Some(sha256_hex(bytes)), sha256_prefix: None, md5: None })
            .collect(),
        metrics,
    };
    // The folder's manifest gains this entry; its other entries stay.
    let manifest_path = out.join("manifest.toml");
    let mut manifest = match manifest_path.exists() {
        true => Manifest::parse(&manifest_path.display().to_string(), &mixco_data::fsutil::read_text(&manifest_path)?)?,
        false => Manifest { models: Vec::new() },
    };
    if manifest.models.iter().any(|m| m.name == name) {
        return Err(Error::Invalid(format!("{}: already lists `{name}`; publish under another --name, or into another folder", manifest_path.display())));
    }
    let card = card(&entry, &ck, &settings, &name);
    manifest.models.push(entry);
    let manifest_text = toml::to_string(&manifest).map_err(|e| Error::Invalid(format!("cannot write the manifest: {e}")))?;
    Manifest::parse("the written manifest", &manifest_text)?; // what we write, we read
    let mut outputs: Vec<(String, Vec<u8>)> = files.into_iter().map(|(_, file, bytes)| (file, bytes)).collect();
    outputs.push((format!("{name}.toml"), settings.into_bytes()));
    outputs.push((format!("{name}.md"), card.clone().into_bytes()));
    if !out.join("README.md").exists() {
        outputs.push(("README.md".into(), card.into_bytes()));
    }
    // Nothing of the bundle replaces a file that is there (checked before anything is written).
    if let Some((file, _)) = outputs.iter().find(|(f, _)| out.join(f).exists()) {
        return Err(Error::Invalid(format!("{}: exists; publish under another --name, or into another folder (nothing was written)", out.join(file).display())));
    }
    outputs.push(("manifest.toml".into(), manifest_text.into_bytes()));
    let mut written = Vec::new();
    for (file, bytes) in &outputs {
        let p = out.join(file);
        write_atomic(&p, bytes)?;
        written.push(p);
    }
    Ok(Bundle { name, files: written })
}

/// `OWNER/REPO` as the Hub names repositories (`hf://OWNER/REPO/FILE` URLs).
fn check_hub(hub: &str) -> Result<(), Error> {
    let part_ok = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) && !p.starts_with('.');
    match hub.split_once('/') {
        Some((owner, repo)) if part_ok(owner) && part_ok(repo) => Ok(()),
        _ => Err(Error::Invalid(format!("--hub `{hub}`: expected OWNER/REPO (a Hugging Face Hub repository, e.g. mixco-rs/r18w16-mixco)"))),
    }
}

fn invalid(path: &Path, problem: String) -> Error {
    Error::Import { path: path.into(), problem: crate::ReadError(problem) }
}

/// Top-1 (%) on each dataset of the report's result for the model whose
/// SHA-256 is `sha256`; None if the report has no result for it.
fn metrics(reports: &[mixco_eval::report::Report], sha256: &str) -> Option<Vec<Metric>> {
    let mut out = Vec::new();
    let mut found = false;
    for r in reports {
        let Some(m) = r.results.iter().find(|m| m.sha256 == sha256) else { continue };
        found = true;
        out.push(Metric { dataset: r.dataset.clone(), probe: "linear".into(), top1: round2(100.0 * m.linear.top1) });
        for (k, v) in &m.knn_top1 {
            out.push(Metric { dataset: r.dataset.clone(), probe: format!("knn{k}"), top1: round2(100.0 * v) });
        }
    }
    found.then_some(out)
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// The run's settings as a `mixco train --config` file (unset ones left out).
fn settings_toml(hparams: &serde_json::Value) -> String {
    let mut table = toml::Table::new();
    for (k, v) in hparams.as_object().into_iter().flatten() {
        let value = match v {
            serde_json::Value::Bool(b) => toml::Value::Boolean(*b),
            serde_json::Value::Number(n) if n.is_u64() || n.is_i64() => toml::Value::Integer(n.as_i64().unwrap_or(i64::MAX)),
            serde_json::Value::Number(n) => toml::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => toml::Value::String(s.clone()),
            _ => continue, // null: the default
        };
        table.insert(k.clone(), value);
    }
    toml::to_string(&table).unwrap_or_default()
}

/// The model card: what it is, how it was made, what it measured, its files.
fn card(m: &Model, ck: &Checkpoint, settings: &str, name: &str) -> String {
    let meta = |k: &str| ck.metadata.get(k).cloned().unwrap_or_else(|| "?".into());
    let mut s = format!("# {name}\n\n{}\n\n", if m.description.is_empty() { "A mixco encoder." } else { &m.description });
    s += &format!(
        "- Architecture: {} (base width {}, {} stem), method {}{}\n- Data: {} (training split SHA-256 {}{})\n- mixco {}, seed {}, {} epochs\n\n",
        m.arch,
        m.width,
        m.stem,
        m.method,
        if m.mixco { " + MixCo" } else { "" },
        m.dataset,
        meta("dataset_sha256"),
        ck.metadata.get("dataset_cut").map(|c| format!("; cut: {c}")).unwrap_or_default(),
        meta("mixco_version"),
        meta("seed"),
        m.epochs
    );
    s += &format!("## Reproduce\n\n```sh\nmixco train --config {name}.toml --dataset {} --output runs/{name}\n```\n\n`{name}.toml`:\n\n```toml\n{settings}```\n\n", m.dataset);
    s += "## Measured (`mixco eval`, top-1 %)\n\n| dataset | probe | top-1 |\n|---|---|---|\n";
    for x in &m.metrics {
        s += &format!("| {} | {} | {:.2} |\n", x.dataset, x.probe, x.top1);
    }
    s += "\n## Files\n\n| file | bytes | SHA-256 |\n|---|---|---|\n";
    for f in &m.files {
        s += &format!("| {} | {} | {} |\n", f.urls[0], f.size.unwrap_or(0), f.sha256.as_deref().unwrap_or("?"));
    }
    s += &format!("\nUse: `mixco zoo pull {name} --manifest manifest.toml`, then `mixco eval zoo:{name} ...` with the same `--manifest` (or `MIXCO_ZOO_MANIFEST`).\n");
    s
}
