//! An embedded dataset that needs no files: ten classes of shapes, each image
//! holding a few copies of its class's shape with random positions, sizes and
//! colours on a random background. The class is the shape alone, so an
//! encoder that has learnt to ignore colour and position (what contrastive
//! augmentations teach) separates the classes, while a random encoder sees
//! mostly colour.
//!
//! Image `i` of a split depends only on `(seed, split, i)`: the set is
//! identical on every machine and any prefix of it is a smaller copy.

use crate::{ImageSet, Splits};
use rayon::prelude::*;
use std::sync::Arc;

pub const CLASSES: [&str; 10] =
    ["disc", "square", "triangle", "ring", "plus", "cross", "h-stripes", "v-stripes", "diamond", "frame"];

#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticConfig {
    pub seed: u64,
    pub train: usize,
    pub test: usize,
    pub size: usize,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig { seed: 0, train: 10_000, test: 2_000, size: 32 }
    }
}

use crate::rng::Rng;

/// Whether the point (u, v), in units of the shape's radius, is inside shape `class`.
fn inside(class: u32, u: f32, v: f32) -> bool {
    let (au, av) = (u.abs(), v.abs());
    let box_ = au.max(av);
    match class {
        0 => u * u + v * v <= 1.0,
        1 => box_ <= 0.85,
        2 => (-0.8..=0.8).contains(&v) && au <= (v + 0.8) / 1.6 * 0.95,
        3 => (0.3..=1.0).contains(&(u * u + v * v)),
        4 => (au <= 0.3 && av <= 1.0) || (av <= 0.3 && au <= 1.0),
        5 => ((u - v).abs() <= 0.38 || (u + v).abs() <= 0.38) && box_ <= 0.9,
        6 => box_ <= 0.9 && ((v + 1.0) * 2.5).floor() as i32 % 2 == 0,
        7 => box_ <= 0.9 && ((u + 1.0) * 2.5).floor() as i32 % 2 == 0,
        8 => au + av <= 1.0,
        9 => (0.6..=0.95).contains(&box_),
        _ => unreachable!("synthetic classes are 0..10"),
    }
}

fn colour(rng: &mut Rng) -> [f32; 3] {
    [rng.range(0.0, 255.0), rng.range(0.0, 255.0), rng.range(0.0, 255.0)]
}

fn distance(a: [f32; 3], b: [f32; 3]) -> f32 {
    a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>().sqrt()
}

/// Draws one image of `class` into `out` (planar RGB, `size` x `size`): two
/// to four copies of the class's shape, each with its own position, size and
/// colour, on a low-saturation background with a gradient and pixel noise.
/// Any crop of the image tends to hold part of a shape, so the shape is what
/// two augmented views share; colours differ between copies.
pub fn draw(rng: &mut Rng, class: u32, size: usize, out: &mut [u8]) {
    let s = size as f32;
    let level = rng.range(20.0, 235.0);
    let bg = [0, 1, 2].map(|_| (level + rng.range(-15.0, 15.0)).clamp(0.0, 255.0));
    let bg2 = bg.map(|c| (c + rng.range(-40.0, 40.0)).clamp(0.0, 255.0));
    let angle = rng.range(0.0, std::f32::consts::TAU);
    let (gx, gy) = (angle.cos(), angle.sin());
    let copies = 2 + rng.below(3) as usize;
    let shapes: Vec<(f32, f32, f32, [f32; 3])> = (0..copies)
        .map(|_| {
            let r = s * rng.range(0.14, 0.26);
            let cx = rng.range(r, s - r);
            let cy = rng.range(r, s - r);
            let mut fg = colour(rng);
            while distance(fg, bg) < 100.0 {
                fg = colour(rng);
            }
            (r, cx, cy, fg)
        })
        .collect();
    let noise = rng.range(2.0, 12.0);
    let plane = size * size;
    // 2x2 supersampling for soft edges.
    const SUB: [(f32, f32); 4] = [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)];
    for y in 0..size {
        for x in 0..size {
            let t = (((x as f32 / s - 0.5) * gx + (y as f32 / s - 0.5) * gy) + 0.71) / 1.42;
            let mut px = [0, 1, 2].map(|c| bg[c] * (1.0 - t) + bg2[c] * t);
            for &(r, cx, cy, fg) in &shapes {
                let cover = SUB
                    .iter()
                    .filter(|(dx, dy)| inside(class, (x as f32 + dx - cx) / r, (y as f32 + dy - cy) / r))
                    .count() as f32
                    / 4.0;
                if cover > 0.0 {
                    px = [0, 1, 2].map(|c| px[c] * (1.0 - cover) + fg[c] * cover);
                }
            }
            for c in 0..3 {
                out[c * plane + y * size + x] = (px[c] + rng.range(-noise, noise)).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

fn split(cfg: &SyntheticConfig, which: u64, n: usize, classes: &Arc<Vec<String>>) -> ImageSet {
    let per = 3 * cfg.size * cfg.size;
    let mut pixels = vec![0u8; n * per];
    let labels: Vec<u32> = (0..n)
        .into_par_iter()
        .zip(pixels.par_chunks_mut(per))
        .map(|(i, out)| {
            let mut rng = Rng::new(cfg.seed ^ which.wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            rng.next_u64();
            let class = rng.below(CLASSES.len() as u64) as u32;
            draw(&mut rng, class, cfg.size, out);
            class
        })
        .collect();
    ImageSet { pixels, labels, height: cfg.size, width: cfg.size, classes: classes.clone() }
}

/// The most images the synthetic set is made with (3 GB of pixels; a count
/// of 10^10 once asked for 30 TB).
pub const MAX_IMAGES: usize = 1_000_000;

/// Generates both splits.
pub fn generate(cfg: &SyntheticConfig) -> Splits {
    let classes = Arc::new(CLASSES.iter().map(|s| s.to_string()).collect());
    Splits {
        name: "synthetic".into(),
        train: split(cfg, 1, cfg.train, &classes),
        test: split(cfg, 2, cfg.test, &classes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_prefix_stable() {
        let a = generate(&SyntheticConfig { train: 50, test: 10, ..Default::default() });
        let b = generate(&SyntheticConfig { train: 20, test: 10, ..Default::default() });
        assert_eq!(a.train.image(7), b.train.image(7));
        assert_eq!(a.train.labels[..20], b.train.labels[..]);
        let c = generate(&SyntheticConfig { seed: 1, train: 20, test: 10, ..Default::default() });
        assert_ne!(b.train.pixels, c.train.pixels);
        assert_ne!(a.train.pixels[..a.test.pixels.len()], a.test.pixels[..]);
    }

    #[test]
    fn classes_are_balanced_and_drawn() {
        let s = generate(&SyntheticConfig { train: 2000, test: 10, ..Default::default() });
        for c in s.train.class_counts() {
            assert!((150..250).contains(&c), "{:?}", s.train.class_counts());
        }
        // Every image has a visible shape: its pixels are far from uniform.
        for i in 0..s.train.len() {
            let img = s.train.image(i);
            let (lo, hi) = (img.iter().min().unwrap(), img.iter().max().unwrap());
            assert!(hi - lo > 60, "image {i} looks blank");
        }
    }

    #[test]
    fn shapes_differ_in_mask() {
        // Rasterised masks of the ten classes at a fixed pose are pairwise distinct.
        let masks: Vec<Vec<bool>> = (0..10)
            .map(|c| {
                (0..32 * 32)
                    .map(|i| inside(c, ((i % 32) as f32 - 15.5) / 12.0, ((i / 32) as f32 - 15.5) / 12.0))
                    .collect()
            })
            .collect();
        for a in 0..10 {
            for b in a + 1..10 {
                let diff = masks[a].iter().zip(&masks[b]).filter(|(x, y)| x != y).count();
                assert!(diff > 40, "classes {a} and {b} differ in only {diff} pixels");
            }
        }
    }
}
