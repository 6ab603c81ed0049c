use crate::nn::{BnMode, ProjectionHead, ResNet, Store};
use mixco_model::ModelConfig;
use tch::{Device, Tensor};

/// Backbone + projection head, with all tensors in one store (backbone names
/// bare, head under `head.`).
pub struct Encoder {
    pub store: Store,
    pub backbone: ResNet,
    pub head: ProjectionHead,
}

impl Encoder {
    pub fn new(config: &ModelConfig, device: Device) -> Encoder {
        let mut store = Store::new(device);
        let backbone = ResNet::new(&mut store, &config.arch.backbone());
        let head = ProjectionHead::new(&mut store, &config.head);
        Encoder { store, backbone, head }
    }

    /// Pooled features and projections.
    pub fn forward(&self, x: &Tensor, mode: BnMode) -> (Tensor, Tensor) {
        let f = self.backbone.forward(x, mode);
        let z = self.head.forward(&f);
        (f, z)
    }
}
