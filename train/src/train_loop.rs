//! `Trainer::run`: epochs of steps, the monitor, checkpoints and the log,
//! reported to an [`Observer`] (the CLI draws bars and prints lines; tests
//! and benchmarks pass `&mut ()`). Across ranks, rank 0 alone runs the
//! monitor and writes the folder while the others wait at a barrier; all
//! ranks agree each step on whether to stop.

use crate::collapse::{CollapseWarning, COLLAPSE_COSINE};
use crate::trainer::{StepStats, TrainError, Trainer};
use mixco_model::run::{append_log, epoch_file, read_log, run_name, EpochLog, CURVES_FILE, FINAL_FILE, LAST_FILE, LOG_FILE};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use mixco_eval::tensorboard::EventFile;

/// How long the other ranks wait for rank 0's monitor and checkpoint (at
/// least the collectives' timeout).
const LEADER_WORK: Duration = Duration::from_secs(1800);

pub struct RunOptions {
    pub output: PathBuf,
    /// Set (e.g. by Ctrl-C) to stop after the current step, saving a checkpoint.
    pub interrupt: std::sync::Arc<AtomicBool>,
    /// Stop after this many steps of this call (as if interrupted).
    pub max_steps: Option<usize>,
    /// Also write TensorBoard event files into the output folder (rank 0).
    pub tensorboard: bool,
}

/// What a run reports while it trains.
pub enum Event<'a> {
    /// The monitor on the random initialisation (epoch 0 of the log).
    Initial(&'a EpochLog),
    /// An epoch begins: `done` of its `images` were trained before a resume.
    EpochStarted { epoch: usize, epochs: usize, images: usize, done: usize },
    /// One step of `images` images ended with this loss.
    Step { epoch: usize, epochs: usize, images: usize, loss: f64 },
    /// An epoch ended, was saved, and logged as `log`.
    EpochEnded { epochs: usize, log: &'a EpochLog },
    /// The epoch was left before its end (interrupted, or the loss was not finite).
    EpochLeft,
    Warning(&'a CollapseWarning),
}

pub trait Observer {
    fn event(&mut self, event: Event<'_>);
}

/// An epoch's log line as scalars at its step (the same values as `log.jsonl`).
fn epoch_events(tb: &mut Option<EventFile>, log: &EpochLog) -> Result<(), TrainError> {
    let Some(tb) = tb.as_mut() else { return Ok(()) };
    let fields = [("epoch/loss", log.loss), ("epoch/knn_top1", log.knn_top1), ("epoch/query_cosine", log.query_cosine), ("epoch/probe_top1", log.probe_top1)];
    let values: Vec<(&str, f64)> = fields.iter().filter_map(|(tag, v)| v.map(|v| (*tag, v))).collect();
    tb.scalars(log.step, &values)?;
    tb.flush()?;
    Ok(())
}

/// Reports nothing.
impl Observer for () {
    fn event(&mut self, _: Event<'_>) {}
}

#[derive(Debug)]
pub struct RunSummary {
    pub steps: usize,
    pub interrupted: bool,
    pub checkpoint: PathBuf,
    pub last: Option<EpochLog>,
    /// Warnings reported while training (at most one collapse warning per call).
    pub warnings: Vec<CollapseWarning>,
}

/// Sums of an epoch's step statistics.
#[derive(Default)]
struct EpochSums {
    stats: StepStats,
    steps: usize,
}

impl EpochSums {
    fn add(&mut self, s: &StepStats) {
        self.stats.loss += s.loss;
        self.stats.contrastive += s.contrastive;
        self.stats.mix += s.mix;
        self.stats.query_cosine += s.query_cosine;
        self.steps += 1;
    }
}

/// How an epoch's steps ended.
enum EpochEnd {
    Done(EpochSums),
    Interrupted,
}

impl Trainer {
    /// Trains to the end (or until interrupted), writing checkpoints, the log and the curves.
    pub fn run(&mut self, opts: &RunOptions, observer: &mut dyn Observer) -> Result<RunSummary, TrainError> {
        let out = &opts.output;
        let leader = self.is_leader();
        if leader {
            std::fs::create_dir_all(out).map_err(|e| mixco_data::Error::io(out, e))?;
        }
        let (last_path, log_path) = (out.join(LAST_FILE), out.join(LOG_FILE));
        let started = self.step;
        let mut summary = RunSummary { steps: 0, interrupted: false, checkpoint: last_path.clone(), last: None, warnings: Vec::new() };
        let mut last_good = last_path.exists().then(|| last_path.clone());
        let mut tb = match leader && opts.tensorboard {
            true => Some(self.start_events(out)?),
            false => None,
        };
        if self.step == 0 && self.cfg.knn_every > 0 && leader {
            let log = self.initial_log();
            append_log(&log_path, &log)?;
            epoch_events(&mut tb, &log)?;
            observer.event(Event::Initial(&log));
        }
        self.wait_for_leader()?;
        while self.step < self.total_steps() {
            let t0 = Instant::now();
            let lr = self.lr();
            let sums = match self.epoch_steps(opts, started, observer, &last_good, &mut tb)? {
                EpochEnd::Done(sums) => sums,
                EpochEnd::Interrupted => {
                    observer.event(Event::EpochLeft);
                    if let Some(tb) = tb.as_mut() {
                        tb.flush()?;
                    }
                    if leader {
                        self.checkpoint().save(&last_path)?;
                    }
                    self.wait_for_leader()?;
                    summary.steps = self.step - started;
                    summary.interrupted = true;
                    return Ok(summary);
                }
            };
            let log = self.epoch_log(&sums, lr, t0.elapsed().as_secs_f64());
            if !leader {
                self.wait_for_leader()?;
                continue;
            }
            // The checkpoint first, then the line that describes it: a run
            // killed in between resumes from the checkpoint and the log
            // lacks that line (it is not logged twice).
            let ck = self.checkpoint();
            ck.save(&last_path)?;
            last_good = Some(last_path.clone());
            if self.cfg.save_every > 0 && log.epoch.is_multiple_of(self.cfg.save_every) {
                ck.save(&out.join(epoch_file(log.epoch)))?;
            }
            append_log(&log_path, &log)?;
            epoch_events(&mut tb, &log)?;
            observer.event(Event::EpochEnded { epochs: self.cfg.epochs, log: &log });
            let cos = log.query_cosine.unwrap_or(0.0);
            if cos > COLLAPSE_COSINE && summary.warnings.is_empty() {
                let w = self.collapse_warning(log.epoch, cos);
                observer.event(Event::Warning(&w));
                summary.warnings.push(w);
            }
            summary.last = Some(log);
            self.wait_for_leader()?;
        }
        summary.checkpoint = out.join(FINAL_FILE);
        if leader {
            self.checkpoint().save(&summary.checkpoint)?;
            let curves = mixco_eval::chart::training_curves("training curves", &[(run_name(out), read_log(&log_path)?)]);
            curves.write(&out.join(CURVES_FILE))?;
        }
        self.wait_for_leader()?;
        summary.steps = self.step - started;
        Ok(summary)
    }

    /// The other ranks wait while rank 0 monitors and writes (rank 0 itself,
    /// arriving last, waits only the collectives' timeout: a hung rank is
    /// found as soon).
    fn wait_for_leader(&self) -> Result<(), TrainError> {
        let timeout = if self.is_leader() { self.dist.timeout } else { self.dist.timeout.max(LEADER_WORK) };
        Ok(self.dist.barrier(timeout)?)
    }

    /// Whether every rank stops now: any rank interrupted (Ctrl-C reaches
    /// ranks at different steps), or this call's step limit.
    fn agreed_stop(&self, opts: &RunOptions, started: usize) -> Result<bool, TrainError> {
        let stop = opts.interrupt.load(Ordering::SeqCst) || opts.max_steps.is_some_and(|m| self.step - started >= m);
        if self.dist.is_single() {
            return Ok(stop);
        }
        let flag = tch::Tensor::from_slice(&[stop as i32]);
        self.dist.all_reduce_max(&flag)?;
        Ok(i32::try_from(flag).expect("one flag") > 0)
    }

    /// The log line of the random initialisation: the monitor with the quick probe.
    fn initial_log(&self) -> EpochLog {
        let (knn, probe) = self.monitor(true);
        EpochLog { epoch: 0, step: 0, lr: self.lr(), loss: None, loss_contrastive: None, loss_mix: None, knn_top1: Some(knn), query_cosine: None, probe_top1: probe, images_per_s: 0.0, seconds: 0.0, note: None }
    }

    /// The steps of the current epoch, to its end or to an interruption.
    /// A new event file for this call: the settings as text, and after a
    /// resume a restart at the next step, so that TensorBoard drops what an
    /// earlier process logged past the checkpoint (as `log.jsonl` is cut).
    fn start_events(&self, out: &std::path::Path) -> Result<EventFile, TrainError> {
        let mut tb = EventFile::create(out)?;
        if self.step > 0 {
            tb.restart(self.step + 1)?;
        }
        let settings = toml::to_string(&self.cfg).unwrap_or_default();
        tb.text(self.step, "settings", &format!("```toml\n{settings}```"))?;
        tb.flush()?;
        Ok(tb)
    }

    fn epoch_steps(&mut self, opts: &RunOptions, started: usize, observer: &mut dyn Observer, last_good: &Option<PathBuf>, tb: &mut Option<EventFile>) -> Result<EpochEnd, TrainError> {
        let (epoch, epochs, b) = (self.epoch(), self.cfg.epochs, self.cfg.batch_size);
        let images = self.steps_per_epoch * b;
        observer.event(Event::EpochStarted { epoch, epochs, images, done: (self.step % self.steps_per_epoch) * b });
        let mut sums = EpochSums::default();
        while self.step < self.total_steps() && self.epoch() == epoch {
            if self.agreed_stop(opts, started)? {
                return Ok(EpochEnd::Interrupted);
            }
            let (lr, beta, t) = (self.lr(), self.mix_weight(), Instant::now());
            let s = match self.train_step() {
                Ok(s) => s,
                Err(TrainError::NonFinite { value, step, epoch, .. }) => {
                    observer.event(Event::EpochLeft);
                    return Err(TrainError::NonFinite { value, step, epoch, last_good: last_good.clone() });
                }
                Err(e) => return Err(e),
            };
            sums.add(&s);
            if let Some(tb) = tb.as_mut() {
                let mut values = vec![("train/loss", s.loss), ("train/loss_contrastive", s.contrastive), ("train/lr", lr)];
                if self.cfg.mixco {
                    values.extend([("train/loss_mix", s.mix), ("train/mix_weight", beta)]);
                }
                values.push(("train/images_per_s", b as f64 / t.elapsed().as_secs_f64().max(1e-9)));
                tb.scalars(self.step, &values)?;
            }
            observer.event(Event::Step { epoch, epochs, images: b, loss: s.loss });
        }
        Ok(EpochEnd::Done(sums))
    }

    /// The log line of the epoch just trained, with the monitor when it is due.
    fn epoch_log(&mut self, sums: &EpochSums, lr: f64, seconds: f64) -> EpochLog {
        let done = self.epoch();
        let end = self.step == self.total_steps();
        let (knn, probe) = match self.is_leader() && self.cfg.knn_every > 0 && (done.is_multiple_of(self.cfg.knn_every) || end) {
            true => {
                let (k, p) = self.monitor(end);
                (Some(k), p)
            }
            false => (None, None),
        };
        let (s, n) = (&sums.stats, sums.steps.max(1) as f64);
        EpochLog {
            epoch: done,
            step: self.step,
            lr,
            loss: Some(s.loss / n),
            loss_contrastive: Some(s.contrastive / n),
            loss_mix: self.cfg.mixco.then_some(s.mix / n),
            knn_top1: knn,
            query_cosine: Some(s.query_cosine / n),
            probe_top1: probe,
            images_per_s: n * self.cfg.batch_size as f64 / seconds,
            seconds,
            note: self.note.take(),
        }
    }
}
