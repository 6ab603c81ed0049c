use crate::features::Features;
use ndarray::{s, Array2, ArrayView2, Axis};

fn normalized(f: &Features) -> Array2<f32> {
    let mut a = ArrayView2::from_shape((f.n, f.dim), &f.data).expect("features shape").to_owned();
    for mut row in a.rows_mut() {
        let norm = row.dot(&row).sqrt().max(1e-12);
        row /= norm;
    }
    a
}

/// Weighted kNN top-1 accuracy for each k in `ks`: cosine similarity, each of
/// the k nearest training features votes for its label with exp(sim / t).
pub fn knn_accuracy(train: &Features, train_y: &[u32], test: &Features, test_y: &[u32], classes: usize, ks: &[usize], t: f32) -> Vec<f64> {
    let a = normalized(train);
    let b = normalized(test);
    let kmax = ks.iter().copied().max().unwrap_or(1).min(train.n).max(1);
    let mut correct = vec![0usize; ks.len()];
    let chunk = 512;
    let mut idx: Vec<usize> = Vec::with_capacity(train.n);
    for start in (0..test.n).step_by(chunk) {
        let end = (start + chunk).min(test.n);
        let sim = b.slice(s![start..end, ..]).dot(&a.t());
        for (r, row) in sim.axis_iter(Axis(0)).enumerate() {
            idx.clear();
            idx.extend(0..train.n);
            let cmp = |x: &usize, y: &usize| row[*y].partial_cmp(&row[*x]).unwrap_or(std::cmp::Ordering::Equal);
            if kmax < train.n {
                idx.select_nth_unstable_by(kmax - 1, cmp);
            }
            idx.truncate(kmax);
            idx.sort_by(cmp);
            for (j, &k) in ks.iter().enumerate() {
                let mut votes = vec![0f32; classes];
                for &i in idx.iter().take(k) {
                    votes[train_y[i] as usize] += (row[i] / t).exp();
                }
                let pred = votes.iter().enumerate().max_by(|x, y| x.1.partial_cmp(y.1).unwrap()).map(|(c, _)| c).unwrap_or(0);
                if pred == test_y[start + r] as usize {
                    correct[j] += 1;
                }
            }
        }
    }
    correct.iter().map(|&c| c as f64 / test.n.max(1) as f64).collect()
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
