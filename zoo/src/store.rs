//! The local model cache: `pull` downloads (resuming through HTTP Range,
//! trying each mirror), checks size and SHA-256, and only then moves the file
//! into place, so a file in the cache is always a verified one.

use crate::manifest::{File, FileKind, Manifest, Model};
use crate::Error;
use mixco_data::download::{download, DownloadOptions};
use mixco_data::fsutil::sha256_file;
use std::fs;
use std::path::{Path, PathBuf};

/// `$MIXCO_CACHE/zoo`, else `$XDG_CACHE_HOME/mixco/zoo`, else `~/.cache/mixco/zoo`.
pub fn default_cache_dir() -> PathBuf {
    mixco_data::fsutil::cache_dir("zoo")
}

pub struct Zoo {
    pub manifest: Manifest,
    /// Where the manifest came from (`embedded`, a path or a URL).
    pub source: String,
    pub dir: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileStatus {
    Missing,
    Verified,
    Corrupt(String),
}

impl Zoo {
    /// The manifest at `manifest` (a path or an http(s) URL), else at
    /// `$MIXCO_ZOO_MANIFEST`, else the embedded one.
    pub fn open(manifest: Option<&str>, dir: PathBuf) -> Result<Zoo, Error> {
        let env = std::env::var("MIXCO_ZOO_MANIFEST").ok().filter(|s| !s.is_empty());
        let (source, text) = match manifest.map(str::to_string).or(env) {
            None => ("embedded".to_string(), crate::manifest::EMBEDDED.to_string()),
            Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
                let text = fetch_text(&u)?;
                (u, text)
            }
            Some(p) => {
                let text = mixco_data::fsutil::read_text(Path::new(&p))?;
                (p, text)
            }
        };
        Ok(Zoo { manifest: Manifest::parse(&source, &text)?, source, dir })
    }

    pub fn path(&self, model: &Model, kind: FileKind) -> PathBuf {
        self.dir.join(&model.name).join(format!("{}.{}", model.name, kind.extension()))
    }

    /// Size and SHA-256 of the cached file against the manifest.
    pub fn status(&self, model: &Model, file: &File) -> Result<FileStatus, Error> {
        let path = self.path(model, file.kind);
        let Ok(meta) = fs::metadata(&path) else { return Ok(FileStatus::Missing) };
        if meta.len() != file.size {
            return Ok(FileStatus::Corrupt(format!("{} bytes, the manifest says {}", meta.len(), file.size)));
        }
        let got = sha256_file(&path)?;
        Ok(if got == file.sha256 { FileStatus::Verified } else { FileStatus::Corrupt(format!("SHA-256 {got}, the manifest says {}", file.sha256)) })
    }

    /// Makes the model's `kinds` files present and verified; returns each
    /// path and whether it was downloaded now. Offline when all are present.
    pub fn pull(&self, name: &str, kinds: &[FileKind], opts: &DownloadOptions) -> Result<Vec<(PathBuf, bool)>, Error> {
        let model = self.manifest.get(name)?;
        let mut out = Vec::new();
        for &kind in kinds {
            let file = model.file(kind).ok_or_else(|| Error::Invalid(format!("zoo model `{name}` has no {kind:?} file")))?;
            let path = self.path(model, kind);
            match self.status(model, file)? {
                FileStatus::Verified => {
                    out.push((path, false));
                    continue;
                }
                FileStatus::Corrupt(why) => {
                    eprintln!("warning: {} is damaged ({why}); downloading it again", path.display());
                    fs::remove_file(&path).map_err(|e| mixco_data::Error::io(&path, e))?;
                }
                FileStatus::Missing => {}
            }
            self.fetch_file(model, file, &path, opts)?;
            out.push((path, true));
        }
        Ok(out)
    }

    fn fetch_file(&self, model: &Model, file: &File, path: &Path, opts: &DownloadOptions) -> Result<(), Error> {
        let staging = self.dir.join(".downloads").join(format!("{}.{}", model.name, file.kind.extension()));
        let part = PathBuf::from(format!("{}.part", staging.display()));
        let discard = || {
            let _ = fs::remove_file(&staging);
            let _ = fs::remove_file(&part);
        };
        let opts = DownloadOptions { expected_size: Some(file.size), ..opts.clone() };
        let mut errors = Vec::new();
        for url in &file.urls {
            match download(url, &staging, &opts) {
                Ok(()) => break,
                Err(e) => errors.push(e.to_string()),
            }
        }
        if !staging.is_file() {
            return Err(Error::Invalid(format!("could not download `{}`: {}", model.name, errors.join("; "))));
        }
        let size = fs::metadata(&staging).map_err(|e| mixco_data::Error::io(&staging, e))?.len();
        let got = sha256_file(&staging)?;
        if size != file.size || got != file.sha256 {
            discard();
            return Err(Error::Checksum {
                name: model.name.clone(),
                url: file.urls.join(", "),
                problem: if size != file.size {
                    format!("got {size} bytes, the manifest says {}", file.size)
                } else {
                    format!("SHA-256 {got}, the manifest says {}", file.sha256)
                },
            });
        }
        let dir = path.parent().expect("cache paths have a parent");
        fs::create_dir_all(dir).map_err(|e| mixco_data::Error::io(dir, e))?;
        fs::rename(&staging, path).map_err(|e| mixco_data::Error::io(path, e))?;
        Ok(())
    }
}

fn fetch_text(url: &str) -> Result<String, Error> {
    let stall = DownloadOptions::default().stall_timeout;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(stall))
        .http_status_as_error(false)
        .build()
        .into();
    let bad = |problem: String| Error::Manifest { origin: url.into(), problem };
    let mut resp = agent.get(url).call().map_err(|e| bad(e.to_string()))?;
    if resp.status() != 200 {
        return Err(bad(format!("HTTP {}", resp.status().as_u16())));
    }
    resp.body_mut().with_config().limit(16 << 20).read_to_string().map_err(|e| bad(e.to_string()))
}

/// `zoo:NAME` to a pulled file (preferring `prefer`, else the model's other
/// file); any other string is a path and is returned as is.
pub fn resolve(spec: &str, prefer: FileKind) -> Result<PathBuf, Error> {
    let Some(name) = spec.strip_prefix("zoo:") else { return Ok(PathBuf::from(spec)) };
    let zoo = Zoo::open(None, default_cache_dir())?;
    let model = zoo.manifest.get(name)?;
    let kind = if model.file(prefer).is_some() { prefer } else { model.files[0].kind };
    let (path, fetched) = zoo.pull(name, &[kind], &DownloadOptions::default())?.remove(0);
    if fetched {
        eprintln!("pulled zoo:{name} into {}", path.display());
    }
    Ok(path)
}
