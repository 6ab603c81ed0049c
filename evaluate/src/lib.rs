//! `mixco eval`'s foundation: ONNX Runtime, loaded at run time without
//! libtorch.

pub mod runtime;
pub mod session;
