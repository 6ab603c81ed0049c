//! The evaluation pipeline on one dataset: features of both splits (from
//! the cache when it has them), kNN and the linear probe for each model,
//! into a [`Report`]. What it is doing goes to an [`Observer`]; the CLI
//! turns that into progress bars.

use crate::cache;
use crate::features::{extract_with, Features, Feed, RESIZE_POLICY};
use crate::probe::{linear_probe_with, ProbeError, ProbeOptions, ProbeProgress};
use crate::report::{ModelResult, Report, Timings, SCHEMA};
use crate::session::{OnnxModel, SessionError};
use crate::EncoderModel;
use mixco_data::{ImageSet, Splits};
use std::path::PathBuf;
use std::time::Instant;

/// The kNN's neighbourhoods and temperature (InstDisc's, as the monitor's).
pub const KNN_KS: [usize; 2] = [20, 200];
pub const KNN_TEMPERATURE: f32 = 0.1;

#[derive(Clone, Debug, Default)]
pub struct EvalOptions {
    /// ONNX Runtime intra-op threads (0 = its default).
    pub threads: usize,
    /// Images per ONNX Runtime call.
    pub batch_size: usize,
    /// Read and write features here; `None`: always run the encoder.
    pub cache: Option<PathBuf>,
    /// ONNX Runtime's CUDA device, or the CPU.
    pub cuda: Option<i32>,
    /// Also write each model's features and the labels as .npy files here.
    pub dump_features: Option<PathBuf>,
}

/// What the pipeline is doing.
pub enum Progress<'a> {
    CacheHit { model: &'a str, split: &'a str },
    /// The feature cache could not be used or written (the run goes on without it).
    CacheProblem { model: &'a str, split: &'a str, problem: String },
    /// Feature extraction of `images` begins.
    Extracting { model: &'a str, split: &'a str, images: usize },
    /// `images` more went through the encoder.
    Extracted { images: usize },
    ExtractionDone,
    Probe { model: &'a str, progress: &'a ProbeProgress },
    ProbeDone,
}

pub trait Observer {
    fn event(&mut self, progress: Progress<'_>);
}

/// Reports nothing.
impl Observer for () {
    fn event(&mut self, _: Progress<'_>) {}
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{dataset}: the {split} split is empty")]
    EmptySplit { dataset: String, split: &'static str },
    #[error("{source} ({split} split)")]
    Features { split: &'static str, source: SessionError },
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error(transparent)]
    Data(#[from] mixco_data::Error),
    #[error(transparent)]
    Cache(#[from] mixco_model::CheckpointError),
}

/// Every model of `models` on `splits` (`cut`: its files cut on purpose, recorded).
pub fn evaluate(models: &[EncoderModel], splits: &Splits, cut: Vec<String>, opts: &EvalOptions, observer: &mut dyn Observer) -> Result<Report, EvalError> {
    for (split, set) in [("training", &splits.train), ("test", &splits.test)] {
        if set.is_empty() {
            return Err(EvalError::EmptySplit { dataset: splits.name.clone(), split });
        }
    }
    let fingerprints = (splits.train.fingerprint(), splits.test.fingerprint());
    let mut results = Vec::new();
    for m in models {
        let t = Instant::now();
        let mut train = features(m, &splits.train, &fingerprints.0, opts, "train", observer)?;
        let mut test = features(m, &splits.test, &fingerprints.1, opts, "test", observer)?;
        if train.dim != test.dim {
            // Possible only when a cached split's width could not be checked
            // (a foreign model's width is known only from a run): both afresh.
            let fresh = EvalOptions { cache: None, ..opts.clone() };
            let problem = format!("cached features of {} and {} values per image for the two splits; extracted again", train.dim, test.dim);
            observer.event(Progress::CacheProblem { model: &m.name, split: "train and test", problem });
            train = features(m, &splits.train, &fingerprints.0, &fresh, "train", observer)?;
            test = features(m, &splits.test, &fingerprints.1, &fresh, "test", observer)?;
        }
        let t_features = t.elapsed().as_secs_f64();
        if let Some(dir) = &opts.dump_features {
            crate::npy::write_dump(dir, &splits.name, &m.name, (&train, &splits.train.labels), (&test, &splits.test.labels))?;
        }
        let knn = crate::knn::knn_accuracy(&train, &splits.train.labels, &test, &splits.test.labels, splits.train.num_classes(), &KNN_KS, KNN_TEMPERATURE);
        let t_knn = t.elapsed().as_secs_f64() - t_features;
        let linear = linear_probe_with(&train, &splits.train.labels, &test, &splits.test.labels, ProbeOptions::default(), &mut |p| {
            observer.event(Progress::Probe { model: &m.name, progress: p })
        })?;
        observer.event(Progress::ProbeDone);
        let probe = t.elapsed().as_secs_f64() - t_features - t_knn;
        let seconds = Timings { features: t_features, knn: t_knn, probe };
        results.push(ModelResult { model: m.name.clone(), sha256: m.sha256.clone(), feeding: m.feeding(), linear, knn_top1: KNN_KS.iter().copied().zip(knn).collect(), seconds });
    }
    Ok(Report {
        schema: SCHEMA.into(),
        dataset: splits.name.clone(),
        train_images: splits.train.len(),
        test_images: splits.test.len(),
        resize_policy: RESIZE_POLICY.into(),
        cut,
        results,
    })
}

/// One split's features; `fingerprint` is the split's content hash, computed once per split.
fn features(model: &EncoderModel, set: &ImageSet, fingerprint: &str, opts: &EvalOptions, split: &'static str, observer: &mut dyn Observer) -> Result<Features, EvalError> {
    let key = cache::Key {
        model_sha256: model.sha256.clone(),
        split_fingerprint: fingerprint.to_string(),
        input_size: model.input_size,
        resize_policy: format!("{RESIZE_POLICY}{}", model.feeding()),
    };
    if let Some(dir) = &opts.cache {
        match cache::load(dir, &key, set.len(), if model.spatial { 0 } else { model.feature_dim }) {
            cache::Lookup::Hit(f) => {
                observer.event(Progress::CacheHit { model: &model.name, split });
                return Ok(f);
            }
            cache::Lookup::Bad(why) => observer.event(Progress::CacheProblem { model: &model.name, split, problem: format!("{why}; extracted again") }),
            cache::Lookup::Miss => {}
        }
    }
    let mut onnx = OnnxModel::from_parts(&model.name, &model.bytes, &model.external, opts.threads, opts.cuda)?;
    onnx.input = model.input.clone();
    observer.event(Progress::Extracting { model: &model.name, split, images: set.len() });
    let feed = Feed { input_size: model.input_size, output: &model.output, normalise: model.normalise };
    let f = extract_with(&mut onnx, set, &feed, opts.batch_size.max(1), &mut |n| observer.event(Progress::Extracted { images: n }))
        .map_err(|source| EvalError::Features { split, source })?;
    observer.event(Progress::ExtractionDone);
    if let Some(dir) = &opts.cache {
        // The features are good: a cache that cannot be written is no reason to lose them.
        if let Err(e) = cache::store(dir, &key, &f) {
            observer.event(Progress::CacheProblem { model: &model.name, split, problem: format!("cannot write the feature cache: {e}; these features are not cached") });
        }
    }
    Ok(f)
}
