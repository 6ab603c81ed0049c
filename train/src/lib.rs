//! `mixco train`: MoCo-v2 and SimCLR, each with or without MixCo, on libtorch
//! (CPU or CUDA). The encoders are built from `mixco-model`'s architecture
//! description, so the exporter reads the same tensors.

pub mod augment;
pub mod bench;
pub mod collapse;
pub mod config;
pub mod device;
pub mod dist;
pub mod encoder;
mod error;
pub mod loss;
pub mod methods;
pub mod nn;
pub mod optim;
pub mod queue;
pub mod quick_probe;
pub mod reference;
pub mod run_dir;
mod state;
pub mod train_loop;
pub mod trainer;

pub use config::{Method, TrainConfig};
pub use train_loop::{Event, Observer, RunOptions, RunSummary};
pub use trainer::{Trainer, TrainError};
pub use tch;
