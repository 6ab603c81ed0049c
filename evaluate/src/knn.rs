//! Weighted kNN on frozen features: the one kNN for `mixco eval` (the
//! training monitor keeps its own on libtorch tensors, where its features live).

use crate::features::Features;
use crate::linalg;
use rayon::prelude::*;

fn normalized(f: &Features) -> Vec<f32> {
    let mut a = f.data.clone();
    for row in a.chunks_exact_mut(f.dim.max(1)) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        row.iter_mut().for_each(|v| *v /= norm);
    }
    a
}

/// Similarity entries per block of test rows (64 MB of f32).
const BLOCK: usize = 16 << 20;

/// Weighted kNN top-1 accuracy for each k in `ks`: cosine similarity, each of
/// the k nearest training features votes for its label with exp(sim / t).
/// One blocked matrix product per block of test rows, then a top-k per row.
pub fn knn_accuracy(train: &Features, train_y: &[u32], test: &Features, test_y: &[u32], classes: usize, ks: &[usize], t: f32) -> Vec<f64> {
    let (a, b) = (normalized(train), normalized(test));
    let kmax = ks.iter().copied().max().unwrap_or(1).min(train.n).max(1);
    let rows = (BLOCK / train.n.max(1)).clamp(1, 1024);
    let mut sim = vec![0f32; rows * train.n];
    let mut correct = vec![0usize; ks.len()];
    for start in (0..test.n).step_by(rows) {
        let end = (start + rows).min(test.n);
        let block = &mut sim[..(end - start) * train.n];
        linalg::mul_nt(&b[start * test.dim..end * test.dim], &a, block, end - start, test.dim, train.n);
        // One index buffer per rayon task, not one allocation per test row.
        let hits = block
            .par_chunks(train.n)
            .zip(&test_y[start..end])
            .map_init(|| Vec::with_capacity(train.n), |idx, (row, &label)| votes_right(row, idx, train_y, label, classes, ks, kmax, t))
            .reduce(|| vec![0; ks.len()], |x, y| x.iter().zip(&y).map(|(a, b)| a + b).collect());
        correct.iter_mut().zip(&hits).for_each(|(c, h)| *c += h);
    }
    correct.iter().map(|&c| c as f64 / test.n.max(1) as f64).collect()
}

/// For each k: 1 if the k nearest (by `row`'s similarities) vote for `label`.
#[allow(clippy::too_many_arguments)]
fn votes_right(row: &[f32], idx: &mut Vec<usize>, train_y: &[u32], label: u32, classes: usize, ks: &[usize], kmax: usize, t: f32) -> Vec<usize> {
    idx.clear();
    idx.extend(0..row.len());
    let cmp = |x: &usize, y: &usize| row[*y].partial_cmp(&row[*x]).unwrap_or(std::cmp::Ordering::Equal);
    if kmax < row.len() {
        idx.select_nth_unstable_by(kmax - 1, cmp);
    }
    idx.truncate(kmax);
    idx.sort_by(cmp);
    ks.iter()
        .map(|&k| {
            let mut votes = vec![0f32; classes];
            for &i in idx.iter().take(k) {
                votes[train_y[i] as usize] += (row[i] / t).exp();
            }
            let pred = votes.iter().enumerate().max_by(|x, y| x.1.total_cmp(y.1)).map(|(c, _)| c).unwrap_or(0);
            (pred == label as usize) as usize
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_made_points() {
        let f = |v: &[f32]| Features { data: v.to_vec(), n: v.len() / 2, dim: 2 };
        // Class 0 near +x, class 1 near +y.
        let train = f(&[1., 0., 0.96, 0.28, 0., 1., 0.28, 0.96]);
        let test = f(&[0.8, 0.6, 0.6, 0.8, 0.96, -0.28]);
        let acc = knn_accuracy(&train, &[0, 0, 1, 1], &test, &[0, 1, 1], 2, &[1, 4], 0.01);
        assert!((acc[0] - 2.0 / 3.0).abs() < 1e-9 && (acc[1] - 2.0 / 3.0).abs() < 1e-9, "{acc:?}");
    }
}
