use super::{Linear, Store};
use mixco_model::HeadSpec;
use tch::Tensor;

/// MoCo-v2 / SimCLR projection MLP: Linear -> ReLU -> Linear, as `head.0`, `head.2`.
pub struct ProjectionHead {
    fc1: Linear,
    fc2: Linear,
}

impl ProjectionHead {
    pub fn new(store: &mut Store, spec: &HeadSpec) -> ProjectionHead {
        ProjectionHead {
            fc1: Linear::new(store, "head.0", spec.in_dim, spec.hidden),
            fc2: Linear::new(store, "head.2", spec.hidden, spec.out_dim),
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.fc2.forward(&self.fc1.forward(x).relu())
    }
}
