//! Layers as plain structs with `forward`, holding handles to tensors that
//! live in a [`Store`] (which the optimizer, the momentum update and the
//! checkpoint code walk by name).

mod batch_norm;
mod conv;
mod head;
mod linear;
mod resnet;
pub mod store;

pub use batch_norm::{BatchNorm2d, BnMode};
pub use conv::Conv2d;
pub use head::ProjectionHead;
pub use linear::Linear;
pub use resnet::ResNet;
pub use store::Store;
