//! The training methods, one file each, behind [`Objective`]: the trainer
//! draws λ and the query views, the objective assembles the query encoder's
//! input and computes the losses from its projections, seeing only a
//! [`StepView`] of the step (not the trainer). `bench` times the same input
//! assembly. A new method is a file here, a `Method` variant and its arm in
//! [`objective`].

pub mod moco;
pub mod simclr;

use crate::config::TrainConfig;
use crate::dist::{Dist, Gathered};
use crate::encoder::Encoder;
use crate::error::TrainError;
use crate::nn::BnMode;
use crate::queue::Queue;
use crate::Method;
use mixco_data::rng::Rng;
use tch::{Device, Tensor};

/// What an objective sees of a training step.
pub struct StepView<'a> {
    pub cfg: &'a TrainConfig,
    pub device: Device,
    pub query: &'a Encoder,
    /// MoCo's momentum encoder and queue.
    pub key: Option<&'a Encoder>,
    pub queue: Option<&'a Queue>,
    /// The ranks of this run (a group of one by default).
    pub dist: &'a Dist,
    /// Batch norm in training mode, in this rank's share of the groups.
    pub bn_mode: BnMode,
    /// This rank's positions in the step's global batch.
    pub positions: &'a [i64],
    /// `views(positions, v)`: augmented view `v` (0 or 1) of the images at
    /// `positions` of the step's global batch.
    pub views: &'a dyn Fn(&[i64], u64) -> Tensor,
}

/// A step's losses and what the trainer does with them afterwards.
pub struct Losses {
    pub contrastive: Tensor,
    /// MixCo's loss (unweighted), with `--mixco`.
    pub mix: Option<Tensor>,
    /// Keys to enqueue after the optimiser step (MoCo).
    pub keys: Option<Tensor>,
    /// The collapse monitor, `collapse::mean_cosine` of the queries.
    pub query_cosine: f64,
    /// Projections gathered from every rank with their gradient: the losses
    /// were computed on it, and the backward pass goes through it.
    pub gathered: Option<Gathered>,
}

pub trait Objective {
    /// Whether the query encoder sees both views (else the second is the keys').
    fn second_query_view(&self) -> bool;
    /// The query encoder's input for views `a` and (where it sees it) `b` of
    /// the batch and, with λ, their MixCo mixes.
    fn query_input(&self, a: &Tensor, b: Option<&Tensor>, lam: Option<&Tensor>) -> Tensor;
    /// The key encoder's input from view `b`, for methods that have one (the
    /// benchmark's passes; a step makes its key views in `losses`).
    fn key_input<'a>(&self, b: &'a Tensor) -> Option<&'a Tensor>;
    /// The losses from `z`, the normalised projections of `query_input`
    /// (`batch` queries first) of this rank's share of the batch, against
    /// the whole batch's keys; `rng` is the step's shared stream.
    fn losses(&self, t: &StepView, z: &Tensor, lam: Option<&Tensor>, rng: &mut Rng) -> Result<Losses, TrainError>;
}

pub fn objective(method: Method) -> &'static dyn Objective {
    match method {
        Method::MocoV2 => &moco::Moco,
        Method::Simclr => &simclr::Simclr,
    }
}

pub(crate) fn normalize(z: &Tensor) -> Tensor {
    z / z.norm_scalaropt_dim(2, [1], true).clamp_min(1e-12)
}
