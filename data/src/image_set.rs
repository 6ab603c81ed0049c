use std::sync::Arc;

/// A split of a dataset: `len` uint8 RGB images of `height` x `width` in NCHW
/// order (planes R, G, B per image), one label per image.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageSet {
    pub pixels: Vec<u8>,
    pub labels: Vec<u32>,
    pub height: usize,
    pub width: usize,
    pub classes: Arc<Vec<String>>,
}

/// The training and test splits of one dataset (Tiny ImageNet's labelled
/// `val` split serves as its test split).
#[derive(Clone, Debug, PartialEq)]
pub struct Splits {
    pub name: String,
    pub train: ImageSet,
    pub test: ImageSet,
}

pub const CHANNELS: usize = 3;

impl ImageSet {
    pub fn empty(height: usize, width: usize, classes: Arc<Vec<String>>) -> ImageSet {
        ImageSet { pixels: Vec::new(), labels: Vec::new(), height, width, classes }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes per image (3 x height x width).
    pub fn image_size(&self) -> usize {
        CHANNELS * self.height * self.width
    }

    /// Image `i` as planar CHW bytes.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_size();
        &self.pixels[i * n..(i + 1) * n]
    }

    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }

    /// Number of images of each class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes()];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }

    /// Keeps the first `n` images (all if fewer).
    pub fn truncate(&mut self, n: usize) {
        let n = n.min(self.len());
        self.pixels.truncate(n * self.image_size());
        self.labels.truncate(n);
    }

    /// Per-channel mean and standard deviation of the pixels, scaled to [0, 1]:
    /// the normalisation a model trained on this split uses. A std is at least
    /// 1/255 (one grey level).
    pub fn channel_stats(&self) -> ([f32; 3], [f32; 3]) {
        let plane = self.height * self.width;
        let mut sum = [0u64; 3];
        let mut sq = [0u64; 3];
        for img in self.pixels.chunks_exact(3 * plane) {
            for c in 0..3 {
                for &p in &img[c * plane..(c + 1) * plane] {
                    sum[c] += p as u64;
                    sq[c] += (p as u64) * (p as u64);
                }
            }
        }
        let n = (self.len() * plane).max(1) as f64;
        let mut mean = [0f32; 3];
        let mut std = [0f32; 3];
        for c in 0..3 {
            let m = sum[c] as f64 / n;
            mean[c] = (m / 255.0) as f32;
            // At least one grey level: a constant channel (a grey or one-colour
            // set) once gave std 0, NaN features and a panic in the kNN monitor.
            std[c] = ((sq[c] as f64 / n - m * m).max(0.0).sqrt().max(1.0) / 255.0) as f32;
        }
        (mean, std)
    }

    /// SHA-256 over shape, labels and pixels: identifies the exact data a model saw.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update((self.len() as u64).to_le_bytes());
        h.update((self.height as u64).to_le_bytes());
        h.update((self.width as u64).to_le_bytes());
        for l in &self.labels {
            h.update(l.to_le_bytes());
        }
        h.update(&self.pixels);
        crate::fsutil::hex(&h.finalize())
    }
}
