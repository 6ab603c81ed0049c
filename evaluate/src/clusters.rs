//! Synthetic features for probe benchmarks at full dataset sizes: Gaussian
//! class clusters (means drawn from N(0, s²I), samples at unit variance
//! around them, then mixed by a random matrix), whose linear-probe accuracy
//! `separation` (s) sets.

use crate::features::Features;
use mixco_data::rng::Rng;

fn normal(rng: &mut Rng) -> f32 {
    // Box-Muller; 1 - u keeps the logarithm finite.
    let (u, v) = (1.0 - rng.uniform(), rng.uniform());
    (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
}

/// Class means and a mixing matrix, shared by a benchmark's splits.
pub struct Clusters {
    dim: usize,
    means: Vec<f32>,
    /// dim x dim, N(0, 1/dim) entries: correlates the features as an
    /// encoder's are (a linear probe's accuracy is unchanged by an invertible
    /// map; its conditioning, and so the optimiser's work, is not).
    mixing: Vec<f32>,
}

impl Clusters {
    pub fn new(dim: usize, classes: usize, separation: f32, seed: u64) -> Clusters {
        let mut rng = Rng::new(seed);
        let means = (0..dim * classes).map(|_| separation * normal(&mut rng)).collect();
        let scale = 1.0 / (dim as f32).sqrt();
        let mixing = (0..dim * dim).map(|_| scale * normal(&mut rng)).collect();
        Clusters { dim, means, mixing }
    }

    pub fn classes(&self) -> usize {
        self.means.len() / self.dim
    }

    /// `n` samples, labels drawn uniformly: mixing · (mean + N(0, I)).
    pub fn sample(&self, n: usize, seed: u64) -> (Features, Vec<u32>) {
        let d = self.dim;
        let mut rng = Rng::new(seed);
        let mut raw = Vec::with_capacity(n * d);
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let c = rng.below(self.classes() as u64) as usize;
            labels.push(c as u32);
            raw.extend(self.means[c * d..(c + 1) * d].iter().map(|m| m + normal(&mut rng)));
        }
        let mut data = vec![0.0; n * d];
        crate::linalg::mul_nt(&raw, &self.mixing, &mut data, n, d, d);
        (Features { data, n, dim: d }, labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_sit_around_their_means_at_unit_variance() {
        // With the identity as mixing, the raw clusters.
        let mut k = Clusters::new(4, 3, 5.0, 1);
        k.mixing = (0..16).map(|i| (i % 5 == 0) as u8 as f32).collect();
        let (f, y) = k.sample(30_000, 2);
        let mut sq = 0.0f64;
        for (row, &c) in f.data.chunks_exact(4).zip(&y) {
            sq += row.iter().zip(&k.means[c as usize * 4..]).map(|(x, m)| ((x - m) as f64).powi(2)).sum::<f64>();
        }
        let var = sq / (30_000.0 * 4.0);
        assert!((var - 1.0).abs() < 0.03, "variance {var}");
        assert!((0..3).all(|c| y.iter().filter(|&&l| l == c).count() > 9_000));
        // The same seeds give the same features.
        let again = Clusters::new(4, 3, 5.0, 1).sample(10, 2);
        assert_eq!(again.1, y[..10]);
    }
}
