use super::store::{Init, Store};
use mixco_model::arch::{ConvSpec, TensorKind, TensorSpec};
use tch::Tensor;

/// A 2-D convolution without bias (every one in ResNet is followed by BN).
pub struct Conv2d {
    pub weight: Tensor,
    stride: i64,
    padding: i64,
}

impl Conv2d {
    /// torchvision's init: kaiming normal, fan_out, ReLU gain.
    pub fn new(store: &mut Store, spec: &ConvSpec) -> Conv2d {
        let fan_out = (spec.out_ch * spec.kernel * spec.kernel) as f64;
        let weight = store.add(
            &TensorSpec { name: format!("{}.weight", spec.name), shape: spec.weight_shape(), kind: TensorKind::Param },
            Init::Normal { std: (2.0 / fan_out).sqrt() },
        );
        Conv2d { weight, stride: spec.stride as i64, padding: spec.padding as i64 }
    }

    /// Runs in the input's precision: a bfloat16 input gets a bfloat16 copy
    /// of the (float32) weight, whose gradient flows back to the float32 one.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let w = if x.kind() == self.weight.kind() { self.weight.shallow_clone() } else { self.weight.to_kind(x.kind()) };
        x.conv2d(&w, None::<Tensor>, [self.stride; 2], [self.padding; 2], [1, 1], 1)
    }
}
