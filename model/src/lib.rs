//! Encoder architectures and the checkpoint format, without libtorch: the
//! trainer builds its modules from [`arch`], the exporter and evaluator read
//! checkpoints through [`checkpoint`]; [`run`] is a training run's folder.

pub mod arch;
pub mod checkpoint;
pub mod method;
pub mod names;
pub mod run;

pub use arch::{ArchSpec, Backbone, Depth, HeadSpec, Stem};
pub use checkpoint::{Checkpoint, CheckpointError, HostTensor, ModelConfig};
pub use method::Method;
