//! `mixco export --onnx`: a checkpoint's encoder as a self-contained ONNX
//! model, built from the same architecture description the trainer uses.
//!
//! The graph takes `images` (float32 NCHW in [0, 1], dynamic batch),
//! normalises inside the graph, runs the backbone with batch norm folded into
//! the convolutions and outputs `features` (the pooled feature vector) and,
//! with the head, `projection`. `metadata_props` describe the model.

mod graph;
pub mod proto;

pub use graph::{export, ExportOptions, Exported, ExportError, FORMAT};
