//! The local model cache: `pull` downloads (resuming through HTTP Range,
//! trying each mirror), checks size and SHA-256, and only then moves the file
//! into place, so a file in the cache is always a verified one.

use crate::locate::{drive_confirm_url, locate, mirrored, parse_mirrors, Base, Location};
use crate::manifest::{Check, File, FileKind, Manifest, Model};
use crate::Error;
use mixco_data::download::{download, DownloadOptions};
use mixco_data::fsutil::{md5_file, sha256_file};
use std::fs;
use std::path::{Path, PathBuf};

/// `$MIXCO_CACHE/zoo`, else `$XDG_CACHE_HOME/mixco/zoo`, else `~/.cache/mixco/zoo`.
pub fn default_cache_dir() -> PathBuf {
    mixco_data::fsutil::cache_dir("zoo")
}

/// What the zoo did that a user should hear of (the CLI prints them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// A cached file failed its check and is downloaded again.
    Damaged { path: PathBuf, why: String },
    /// A file verified by something weaker than its full SHA-256 was pinned.
    Pinned { name: String, check: Check, sha256: String },
    Pulled { name: String, path: PathBuf },
    Imported { name: String, from: PathBuf, layout: String, tensors: usize, to: PathBuf },
    /// Another process is pulling the same file: this one waits for it.
    Waiting { name: String },
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::Damaged { path, why } => write!(f, "warning: {} is damaged ({why}); downloading it again", path.display()),
            Notice::Pinned { name, check, sha256 } => {
                let how = if *check == Check::Unverified { "trusted on first use (no published hash)".to_string() } else { format!("verified by the publisher's {check}") };
                write!(f, "zoo:{name}: {how}; its SHA-256 {sha256} is pinned, and every later use checks it")
            }
            Notice::Pulled { name, path } => write!(f, "pulled zoo:{name} into {}", path.display()),
            Notice::Imported { name, from, layout, tensors, to } => write!(f, "zoo:{name}: imported {} ({layout}, {tensors} tensors) into {}", from.display(), to.display()),
            Notice::Waiting { name } => write!(f, "zoo:{name}: another mixco process is pulling it; waiting for it ..."),
        }
    }
}

pub struct Zoo {
    pub manifest: Manifest,
    /// Where the manifest came from (`embedded`, a path or a URL).
    pub source: String,
    pub dir: PathBuf,
    /// Where relative URLs of the manifest resolve.
    pub base: Base,
    /// URL prefix rewrites (`$MIXCO_ZOO_MIRROR`, and the CLI's `--mirror`).
    pub mirrors: Vec<(String, String)>,
    /// Pull files that have no published hash (trusting them on first use).
    pub trust_unverified: bool,
    /// Told of what the zoo does (nothing by default).
    pub notify: Box<dyn Fn(&Notice)>,
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
        let (source, text, base) = match manifest.map(str::to_string).or(env) {
            None => ("embedded".to_string(), crate::manifest::EMBEDDED.to_string(), Base::None),
            Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
                let text = fetch_text(&u)?;
                let base = Base::Url(u[..u.rfind('/').map(|i| i + 1).unwrap_or(u.len())].to_string());
                (u, text, base)
            }
            Some(p) => {
                let text = mixco_data::fsutil::read_text(Path::new(&p))?;
                let base = Base::Folder(Path::new(&p).parent().map(Path::to_path_buf).unwrap_or_default());
                (p, text, base)
            }
        };
        let mirrors = parse_mirrors(&std::env::var("MIXCO_ZOO_MIRROR").unwrap_or_default())?;
        Ok(Zoo { manifest: Manifest::parse(&source, &text)?, source, dir, base, mirrors, trust_unverified: false, notify: Box::new(|_| {}) })
    }

    pub fn path(&self, model: &Model, kind: FileKind) -> PathBuf {
        self.dir.join(&model.name).join(format!("{}.{}", model.name, kind.extension()))
    }

    /// The full SHA-256 recorded at the file's first pull.
    fn pin_path(&self, model: &Model, kind: FileKind) -> PathBuf {
        let mut p = self.path(model, kind).into_os_string();
        p.push(".sha256");
        p.into()
    }

    /// The file's pinned SHA-256, if it has been pinned. A pin that exists
    /// but cannot be read (truncated, emptied, a folder) is an error, never
    /// "no pin": that would let a tampered file verify.
    fn pinned(&self, model: &Model, kind: FileKind) -> Result<Option<String>, Error> {
        let path = self.pin_path(model, kind);
        let text = match fs::read_to_string(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && fs::symlink_metadata(&path).is_err() => return Ok(None),
            Err(e) => return Err(damaged_pin(&path, &model.name, &e.to_string())),
            Ok(t) => t,
        };
        let pin = text.trim();
        if pin.len() != 64 || !pin.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(damaged_pin(&path, &model.name, "not a SHA-256 in hex"));
        }
        Ok(Some(pin.to_string()))
    }

    /// The cached file against its pinned SHA-256, else the manifest's hash.
    pub fn status(&self, model: &Model, file: &File) -> Result<FileStatus, Error> {
        let path = self.path(model, file.kind);
        let Ok(meta) = fs::metadata(&path) else { return Ok(FileStatus::Missing) };
        if let Some(size) = file.size.filter(|&s| s != meta.len()) {
            return Ok(FileStatus::Corrupt(format!("{} bytes, the manifest says {size}", meta.len())));
        }
        let pin = self.pinned(model, file.kind)?;
        Ok(match self.problem(model, file, &path, &sha256_file(&path)?, pin.as_deref()) {
            None => FileStatus::Verified,
            Some(why) => FileStatus::Corrupt(why),
        })
    }

    /// What is wrong with the file at `path`, whose SHA-256 is `got`: its
    /// pin when it has one (the pin replaces weaker checks), else the
    /// manifest's check. Its size is checked by the caller; `pin` is its
    /// [`pinned`](Self::pinned) SHA-256.
    fn problem(&self, model: &Model, file: &File, path: &Path, got: &str, pin: Option<&str>) -> Option<String> {
        if let Some(pin) = pin {
            let unpin = self.pin_path(model, file.kind);
            return (got != pin).then(|| {
                format!("SHA-256 {got}, pinned at its first pull as {pin}: the file changed since (if you trust the new file, delete {} and pull again)", unpin.display())
            });
        }
        let check = file.check();
        (!check.passes(got, || md5_file(path).unwrap_or_default())).then(|| format!("SHA-256 {got}; the manifest asks for {check}"))
    }

    /// The full SHA-256 the file was verified by: the manifest's, else its pin.
    fn known_sha256(&self, model: &Model, file: &File) -> Result<Option<String>, Error> {
        Ok(match &file.sha256 {
            Some(s) => Some(s.clone()),
            None => self.pinned(model, file.kind)?,
        })
    }

    /// Makes the model's `kinds` files present and verified; returns each
    /// path and whether it was downloaded now. Offline when all are present.
    pub fn pull(&self, name: &str, kinds: &[FileKind], opts: &DownloadOptions) -> Result<Vec<(PathBuf, bool)>, Error> {
        let model = self.manifest.get(name)?;
        let mut out = Vec::new();
        for &kind in kinds {
            let file = model.file(kind).ok_or_else(|| Error::Invalid(format!("zoo model `{name}` has no {kind:?} file")))?;
            let path = self.path(model, kind);
            // One pull of a file at a time: a second waits, then finds it verified.
            let lock = self.dir.join(".downloads").join(format!("{}.{}.lock", model.name, kind.extension()));
            let _lock = mixco_data::fsutil::FileLock::wait(&lock, || (self.notify)(&Notice::Waiting { name: name.into() }))?;
            match self.status(model, file)? {
                FileStatus::Verified => {
                    out.push((path, false));
                    continue;
                }
                FileStatus::Corrupt(why) => {
                    (self.notify)(&Notice::Damaged { path: path.clone(), why });
                    fs::remove_file(&path).map_err(|e| mixco_data::Error::io(&path, e))?;
                }
                FileStatus::Missing => {}
            }
            let pin = self.pinned(model, kind)?;
            if file.check() == Check::Unverified && !self.trust_unverified && pin.is_none() {
                return Err(Error::Untrusted { name: name.into(), url: file.urls.join(", ") });
            }
            self.fetch_file(model, file, &path, opts, pin)?;
            out.push((path, true));
        }
        Ok(out)
    }

    /// Downloads `file` to `path` and checks it (against its hash, else its
    /// `pin`, else its form; an unpinned file is pinned).
    fn fetch_file(&self, model: &Model, file: &File, path: &Path, opts: &DownloadOptions, pin: Option<String>) -> Result<(), Error> {
        let staging = self.dir.join(".downloads").join(format!("{}.{}", model.name, file.kind.extension()));
        let part = PathBuf::from(format!("{}.part", staging.display()));
        let discard = || {
            let _ = fs::remove_file(&staging);
            let _ = fs::remove_file(&part);
        };
        let opts = DownloadOptions { expected_size: file.size, ..opts.clone() };
        let mut errors = Vec::new();
        for url in &file.urls {
            match self.fetch_one(url, &staging, &opts) {
                Ok(()) => break,
                Err(e) => errors.push(e.to_string()),
            }
        }
        if !staging.is_file() {
            return Err(Error::Invalid(format!("could not download `{}`: {}", model.name, errors.join("; "))));
        }
        let size = fs::metadata(&staging).map_err(|e| mixco_data::Error::io(&staging, e))?.len();
        let got = sha256_file(&staging)?;
        let check = file.check();
        // With no published hash, only the content's form vouches for it
        // before it is pinned for ever (a portal's page once was).
        let mut head = Vec::new();
        if let Ok(f) = fs::File::open(&staging) {
            let _ = std::io::Read::read_to_end(&mut std::io::Read::take(f, 64), &mut head);
        }
        let form = match check == Check::Unverified && pin.is_none() {
            true => file.kind.check_content(&head).err(),
            false => None,
        };
        let problem = match (file.size, form) {
            (Some(want), _) if want != size => Some(format!("got {size} bytes, the manifest says {want}")),
            (_, Some(what)) => Some(what),
            _ => self.problem(model, file, &staging, &got, pin.as_deref()),
        };
        if let Some(problem) = problem {
            discard();
            return Err(Error::Checksum { name: model.name.clone(), url: file.urls.join(", "), problem });
        }
        let dir = path.parent().expect("cache paths have a parent");
        fs::create_dir_all(dir).map_err(|e| mixco_data::Error::io(dir, e))?;
        fs::rename(&staging, path).map_err(|e| mixco_data::Error::io(path, e))?;
        if !matches!(check, Check::Sha256(_)) && pin.is_none() {
            mixco_data::fsutil::write_atomic(&self.pin_path(model, file.kind), format!("{got}\n").as_bytes())?;
            (self.notify)(&Notice::Pinned { name: model.name.clone(), check, sha256: got });
        }
        Ok(())
    }

    /// One URL of the manifest into `staging`: copied from a folder, or
    /// downloaded (through Google Drive's confirmation page for its links).
    fn fetch_one(&self, url: &str, staging: &Path, opts: &DownloadOptions) -> Result<(), Error> {
        let url = match locate(url, &self.base, &self.mirrors)? {
            Location::File(p) => {
                if let Some(dir) = staging.parent() {
                    fs::create_dir_all(dir).map_err(|e| mixco_data::Error::io(dir, e))?;
                }
                fs::copy(&p, staging).map_err(|e| mixco_data::Error::io(&p, e))?;
                return Ok(());
            }
            Location::Url(u) if is_google_drive(url) => self.drive_download_url(&u)?,
            Location::Url(u) => u,
        };
        Ok(download(&url, staging, opts)?)
    }

    /// Google Drive answers a large file's link with a page asking to
    /// confirm; the file is behind that page's form.
    fn drive_download_url(&self, url: &str) -> Result<String, Error> {
        let Some(page) = html_page(url)? else {
            return Ok(url.to_string()); // the file itself (a small one)
        };
        let confirm = drive_confirm_url(&page).ok_or_else(|| Error::Invalid(format!("{url}: Google Drive answered with a page that has no download form (quota exceeded, or the file is not shared)")))?;
        let confirm = if confirm.starts_with('/') { format!("{}{confirm}", origin(url)) } else { confirm };
        Ok(mirrored(&confirm, &self.mirrors))
    }
}

/// The body of `url` if the server answers with an HTML page (at most 4 MiB).
fn html_page(url: &str) -> Result<Option<String>, Error> {
    let bad = |problem: String| Error::Invalid(format!("{url}: {problem}"));
    let mut resp = get(url).map_err(bad)?;
    let html = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|t| t.starts_with("text/html"));
    if !html {
        return Ok(None);
    }
    resp.body_mut().with_config().limit(4 << 20).read_to_string().map(Some).map_err(|e| bad(e.to_string()))
}

fn is_google_drive(url: &str) -> bool {
    url.starts_with("https://drive.google.com/") || url.starts_with("https://drive.usercontent.google.com/")
}

/// `scheme://host[:port]` of `url`.
fn origin(url: &str) -> &str {
    let after = url.find("://").map(|i| i + 3).unwrap_or(0);
    &url[..url[after..].find('/').map(|i| i + after).unwrap_or(url.len())]
}

/// A small GET (a manifest, a confirmation page): the whole answer within
/// the stall timeout, status 200.
fn get(url: &str) -> Result<ureq::http::Response<ureq::Body>, String> {
    let stall = DownloadOptions::default().stall_timeout;
    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(stall)).http_status_as_error(false).build().into();
    let resp = agent.get(url).call().map_err(|e| e.to_string())?;
    match resp.status().as_u16() {
        200 => Ok(resp),
        s => Err(format!("HTTP {s}")),
    }
}

fn fetch_text(url: &str) -> Result<String, Error> {
    let bad = |problem: String| Error::Manifest { origin: url.into(), problem };
    let mut resp = get(url).map_err(bad)?;
    resp.body_mut().with_config().limit(16 << 20).read_to_string().map_err(|e| bad(e.to_string()))
}

/// `zoo:NAME` to a pulled file (preferring `prefer`, else the model's
/// checkpoint, else its imported publisher file), telling `notify` what it
/// did; any other string is a path and is returned as is.
pub fn resolve(spec: &str, prefer: FileKind, notify: impl Fn(&Notice) + 'static) -> Result<PathBuf, Error> {
    let Some(name) = spec.strip_prefix("zoo:") else { return Ok(PathBuf::from(spec)) };
    let mut zoo = Zoo::open(None, default_cache_dir())?;
    zoo.notify = Box::new(notify);
    zoo.local(name, prefer, &DownloadOptions::default())
}

impl Zoo {
    /// A usable local file of model `name`: its `prefer` file, else its
    /// checkpoint, else its publisher's file imported into a checkpoint
    /// (once, next to it in the cache).
    pub fn local(&self, name: &str, prefer: FileKind, opts: &DownloadOptions) -> Result<PathBuf, Error> {
        let model = self.manifest.get(name)?;
        let kind = [prefer, FileKind::Checkpoint, FileKind::Pytorch].into_iter().find(|&k| model.file(k).is_some()).unwrap_or(model.files[0].kind);
        let (path, fetched) = self.pull(name, &[kind], opts)?.remove(0);
        if fetched {
            (self.notify)(&Notice::Pulled { name: name.into(), path: path.clone() });
        }
        if kind != FileKind::Pytorch {
            return Ok(path);
        }
        let imported = self.path(model, FileKind::Checkpoint);
        // The pull verified the file by its full SHA-256 (manifest or pin): no second hash of it.
        let file = model.file(kind).expect("pulled above");
        let source = match self.known_sha256(model, file)? {
            Some(sha) => sha,
            None => mixco_data::fsutil::sha256_file(&path)?,
        };
        let current = mixco_model::Checkpoint::load(&imported).ok().is_some_and(|ck| ck.metadata.get("source_sha256") == Some(&source));
        if !current {
            let opts = crate::import::ImportOptions { method: Some(model.method.clone()), mixco: model.mixco, input_size: model.input_size, ..Default::default() };
            let imp = crate::import::import_file(&path, &opts)?;
            imp.checkpoint.save(&imported)?;
            (self.notify)(&Notice::Imported { name: name.into(), from: path.clone(), layout: format!("{} layout, {} format", imp.layout, imp.format), tensors: imp.mapped.len(), to: imported.clone() });
        }
        Ok(imported)
    }
}

fn damaged_pin(path: &Path, name: &str, why: &str) -> Error {
    Error::Invalid(format!(
        "{}: the pin of zoo:{name} is damaged ({why}); it is the check that keeps the cached file honest. \
         Delete it (and the cached file) only if you trust the file's source again, then pull again",
        path.display()
    ))
}
