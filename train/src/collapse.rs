//! A collapse monitor: the mean cosine similarity between the projections of
//! different images. A randomly initialised encoder maps all images close
//! together; training spreads them out, and the value falls (on CIFAR-10
//! with ResNet-18 width 16, MoCo-v2 averages 0.76 over its first epoch). It
//! stays near 1 when every image maps to the same point, the failure of
//! MixCo at mix temperature 0.05 with small encoders (0.999, 0.974, 0.944
//! over three epochs; docs/RESULTS.md).

use tch::{Kind, Tensor};

/// Above this epoch mean the trainer warns that the projections are collapsing:
/// midway between the highest first-epoch mean of a run that trained well
/// (0.884, MoCo-v2 + MixCo at mix T 0.1) and the collapsed run's (0.999).
pub const COLLAPSE_COSINE: f64 = 0.94;

/// An epoch whose projections collapsed (mean cosine above [`COLLAPSE_COSINE`]).
#[derive(Clone, Debug, PartialEq)]
pub struct CollapseWarning {
    pub epoch: usize,
    pub cosine: f64,
    /// MixCo's temperature and β when MixCo at a temperature under 0.1 is
    /// the known cause; `None` when the contrastive settings are the suspects
    /// (learning rate too high, temperature too low).
    pub mixco: Option<(f64, f64)>,
}

impl std::fmt::Display for CollapseWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the projections are collapsing: different images have mean cosine similarity {:.2} over epoch {} \
             (above {COLLAPSE_COSINE}; training normally brings it below within the first epoch)",
            self.cosine, self.epoch
        )?;
        if let Some((t, beta)) = self.mixco {
            write!(f, "; the MixCo term at mix temperature {t} (its gradient scaled by β / T_mix = {:.0}) is the known cause with small encoders", beta / t)?;
        }
        Ok(())
    }
}

/// Mean cosine similarity over all pairs of different rows of `z`, whose rows
/// are L2-normalised: with s the sum of the rows, |s|² = n + Σ_{i≠j} z_i·z_j.
///
/// ```
/// use tch::Tensor;
/// // (1, 0), (0, 1) and (0.6, 0.8): pair similarities 0, 0.6 and 0.8.
/// let z = Tensor::from_slice(&[1f32, 0., 0., 1., 0.6, 0.8]).view([3, 2]);
/// let c = mixco_train::collapse::mean_cosine(&z);
/// assert!((c - 1.4 / 3.0).abs() < 1e-6);
/// ```
pub fn mean_cosine(z: &Tensor) -> f64 {
    let n = z.size()[0] as f64;
    if n < 2.0 {
        return f64::NAN;
    }
    tch::no_grad(|| {
        let s = z.to_kind(Kind::Float).sum_dim_intlist(0, false, Kind::Float);
        let sq = f64::try_from(s.dot(&s)).unwrap();
        (sq - n) / (n * (n - 1.0))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_rows_are_fully_collapsed() {
        let z = Tensor::from_slice(&[0.6f32, 0.8]).view([1, 2]).repeat([5, 1]);
        assert!((mean_cosine(&z) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn orthonormal_and_opposite_rows() {
        assert!(mean_cosine(&Tensor::eye(4, (Kind::Float, tch::Device::Cpu))).abs() < 1e-6);
        // (1, 0) and (-1, 0): one pair at -1.
        let z = Tensor::from_slice(&[1f32, 0., -1., 0.]).view([2, 2]);
        assert!((mean_cosine(&z) + 1.0).abs() < 1e-6);
    }

    #[test]
    fn matches_pairwise_loop() {
        let z = Tensor::randn([7, 5], (Kind::Float, tch::Device::Cpu));
        let z = &z / z.norm_scalaropt_dim(2, [1], true);
        let g: Vec<Vec<f32>> = Vec::try_from(z.matmul(&z.transpose(0, 1))).unwrap();
        let mut sum = 0.0;
        for (i, row) in g.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                if i != j {
                    sum += *v as f64;
                }
            }
        }
        assert!((mean_cosine(&z) - sum / 42.0).abs() < 1e-5);
    }
}
