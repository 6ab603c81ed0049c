//! `mixco eval`: ONNX Runtime feature extraction (no libtorch), a linear
//! probe (multinomial logistic regression, L-BFGS) and weighted kNN on frozen features, against a
//! randomly initialised encoder of the same architecture.

pub mod baseline;
pub mod cache;
pub mod chart;
pub mod clusters;
pub mod evaluation;
pub mod features;
pub mod knn;
pub mod lbfgs;
pub mod linalg;
pub mod model;
pub mod npy;
pub mod probe;
pub mod report;
pub mod resize;
pub mod runtime;
pub mod session;
pub mod softmax_loss;
pub mod tensorboard;

pub use model::EncoderModel;
