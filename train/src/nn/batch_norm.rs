use super::store::{Init, Store};
use mixco_model::arch::{BnSpec, TensorKind, TensorSpec, BN_EPS, BN_MOMENTUM};
use tch::Tensor;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BnMode {
    /// Running statistics.
    Eval,
    /// Batch statistics, computed separately over `splits` interleaved groups
    /// of the batch (sample n is in group n % splits). One device's stand-in
    /// for MoCo's shuffle-BN across GPUs: BN statistics are never shared by
    /// the whole batch, so they cannot leak which key matches which query.
    Train { splits: i64 },
}

pub struct BatchNorm2d {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    num_batches_tracked: Tensor,
}

impl BatchNorm2d {
    pub fn new(store: &mut Store, spec: &BnSpec) -> BatchNorm2d {
        let c = spec.channels;
        let mut t = |suffix: &str, kind, init| {
            store.add(&TensorSpec { name: format!("{}.{suffix}", spec.name), shape: if kind == TensorKind::Counter { vec![] } else { vec![c] }, kind }, init)
        };
        BatchNorm2d {
            weight: t("weight", TensorKind::Param, Init::Ones),
            bias: t("bias", TensorKind::Param, Init::Zeros),
            running_mean: t("running_mean", TensorKind::Buffer, Init::Zeros),
            running_var: t("running_var", TensorKind::Buffer, Init::Ones),
            num_batches_tracked: t("num_batches_tracked", TensorKind::Counter, Init::Zeros),
        }
    }

    pub fn forward(&self, x: &Tensor, mode: BnMode) -> Tensor {
        match mode {
            BnMode::Eval => x.batch_norm(
                Some(&self.weight), Some(&self.bias), Some(&self.running_mean), Some(&self.running_var),
                false, BN_MOMENTUM, BN_EPS, true,
            ),
            BnMode::Train { splits } if splits <= 1 => {
                let _ = tch::no_grad(|| self.num_batches_tracked.shallow_clone().g_add_scalar_(1));
                x.batch_norm(
                    Some(&self.weight), Some(&self.bias), Some(&self.running_mean), Some(&self.running_var),
                    true, BN_MOMENTUM, BN_EPS, true,
                )
            }
            BnMode::Train { splits } => {
                let _ = tch::no_grad(|| self.num_batches_tracked.shallow_clone().g_add_scalar_(1));
                let (n, c, h, w) = x.size4().expect("NCHW input");
                assert!(n % splits == 0, "batch {n} is not divisible by {splits} BN splits");
                // Fold the groups into channels: [N, C, H, W] -> [N/G, G*C, H, W].
                let rm = self.running_mean.repeat([splits]);
                let rv = self.running_var.repeat([splits]);
                // Channels-last input ([N/G, G, H, W, C] in memory) needs a copy
                // to [N/G, H, W, G, C]; NCHW folds by a view.
                let cl = x.stride()[1] == 1 && c > 1;
                let xg = if cl {
                    x.permute([0, 2, 3, 1]).reshape([n / splits, splits, h, w, c]).permute([0, 2, 3, 1, 4]).contiguous().view([n / splits, h, w, splits * c]).permute([0, 3, 1, 2])
                } else {
                    x.reshape([n / splits, splits * c, h, w])
                };
                let y = xg.batch_norm(
                    Some(&self.weight.repeat([splits])), Some(&self.bias.repeat([splits])), Some(&rm), Some(&rv),
                    true, BN_MOMENTUM, BN_EPS, true,
                );
                tch::no_grad(|| {
                    self.running_mean.shallow_clone().copy_(&rm.view([splits, c]).mean_dim(0, false, None));
                    self.running_var.shallow_clone().copy_(&rv.view([splits, c]).mean_dim(0, false, None));
                });
                if cl {
                    y.permute([0, 2, 3, 1]).reshape([n / splits, h, w, splits, c]).permute([0, 3, 1, 2, 4]).contiguous().view([n, h, w, c]).permute([0, 3, 1, 2])
                } else {
                    y.reshape([n, c, h, w])
                }
            }
        }
    }
}
