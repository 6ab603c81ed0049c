//! `mixco train`: MoCo-v2 and SimCLR, each with or without MixCo, on libtorch
//! (CPU or CUDA). The encoders are built from `mixco-model`'s architecture
//! description, so the exporter reads the same tensors.

pub mod augment;
pub mod collapse;
pub mod bench;
pub mod config;
pub mod device;
pub mod encoder;
pub mod knn;
pub mod loss;
pub mod nn;
pub mod optim;
pub mod plot;
pub mod probe;
pub mod queue;
pub mod reference;
pub mod run_dir;
pub mod trainer;

pub use config::{Method, TrainConfig};
pub use trainer::{RunOptions, RunSummary, Trainer, TrainError};
pub use tch;
