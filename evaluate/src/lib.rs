//! `mixco eval`: ONNX Runtime feature extraction (no libtorch), a linear
//! probe (`linfa-logistic`) and weighted kNN on frozen features, against a
//! randomly initialised encoder of the same architecture.

pub mod baseline;
pub mod cache;
pub mod chart;
pub mod features;
pub mod knn;
pub mod model;
pub mod probe;
pub mod resize;
pub mod runtime;
pub mod session;

pub use model::EncoderModel;
