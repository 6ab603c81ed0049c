//! Contrastive losses, one per file. Inputs are L2-normalised embeddings.

mod mixco;
mod moco;
mod nt_xent;

pub use mixco::{mix_images, mixco_loss, mixco_loss_at, mixco_targets, mixco_targets_at};
pub use moco::moco_loss;
pub use nt_xent::{nt_xent_loss, nt_xent_rows};

use tch::Tensor;

/// Cross-entropy with soft targets, `-Σ target · log_softmax(logits)` averaged
/// over rows; log_softmax keeps it finite for large logits.
pub fn soft_cross_entropy(logits: &Tensor, targets: &Tensor) -> Tensor {
    -(targets * logits.log_softmax(1, tch::Kind::Float)).sum_dim_intlist(1, false, None).mean(None)
}

#[cfg(test)]
pub(crate) fn t(rows: &[&[f32]]) -> Tensor {
    let n = rows.len() as i64;
    let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::from_slice(&flat).view([n, -1])
}
