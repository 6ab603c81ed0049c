use super::store::{Init, Store};
use mixco_model::arch::{TensorKind, TensorSpec};
use tch::Tensor;

/// y = x Wᵀ + b, with PyTorch's default init U(±1/√fan_in).
pub struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    pub fn new(store: &mut Store, name: &str, in_dim: usize, out_dim: usize) -> Linear {
        let bound = 1.0 / (in_dim as f64).sqrt();
        let p = |n: &str, shape| TensorSpec { name: format!("{name}.{n}"), shape, kind: TensorKind::Param };
        Linear {
            weight: store.add(&p("weight", vec![out_dim, in_dim]), Init::Uniform { bound }),
            bias: store.add(&p("bias", vec![out_dim]), Init::Uniform { bound }),
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.weight, Some(&self.bias))
    }
}
