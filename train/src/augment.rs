//! MoCo-v2's "aug+" (and SimCLR's stronger jitter) as batched tensor ops on
//! the training device. Random parameters come from our own seeded RNG: each
//! image's from its own stream, what is drawn once per batch from a shared
//! one, so that an image's view does not depend on which rank draws it.
//!
//! Pipeline: random resized crop + horizontal flip (one `grid_sample`),
//! colour jitter with probability p (brightness, contrast, saturation, hue;
//! the order is drawn once per batch, torchvision draws it per image),
//! grayscale, Gaussian blur (images of 64 px and more), normalisation.

use mixco_data::rng::Rng;
use tch::{Device, Kind, Tensor};

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AugConfig {
    pub crop_scale: (f64, f64),
    /// Brightness, contrast, saturation, hue.
    pub jitter: [f64; 4],
    pub jitter_p: f64,
    pub gray_p: f64,
    pub blur_p: f64,
    pub flip_p: f64,
}

impl AugConfig {
    pub fn moco_v2() -> AugConfig {
        AugConfig { crop_scale: (0.2, 1.0), jitter: [0.4, 0.4, 0.4, 0.1], jitter_p: 0.8, gray_p: 0.2, blur_p: 0.5, flip_p: 0.5 }
    }
    pub fn simclr() -> AugConfig {
        AugConfig { jitter: [0.8, 0.8, 0.8, 0.2], ..AugConfig::moco_v2() }
    }
}

pub struct Augment {
    pub cfg: AugConfig,
    pub out_size: i64,
    mean: Tensor,
    std: Tensor,
    device: Device,
}

const GRAY: [f64; 3] = [0.2989, 0.587, 0.114];

fn gray(x: &Tensor) -> Tensor {
    let w = Tensor::from_slice(&GRAY.map(|v| v as f32)).to_device(x.device()).view([1, 3, 1, 1]);
    (x * w).sum_dim_intlist(1, true, None)
}

/// Per-image column vector `[N, 1, 1, 1]`.
fn col(v: &[f32], device: Device) -> Tensor {
    Tensor::from_slice(v).to_device(device).view([-1, 1, 1, 1])
}

impl Augment {
    pub fn new(cfg: AugConfig, out_size: usize, mean: [f32; 3], std: [f32; 3], device: Device) -> Augment {
        Augment {
            cfg,
            out_size: out_size as i64,
            mean: Tensor::from_slice(&mean).to_device(device).view([1, 3, 1, 1]),
            std: Tensor::from_slice(&std).to_device(device).view([1, 3, 1, 1]),
            device,
        }
    }

    pub fn normalize(&self, x01: &Tensor) -> Tensor {
        (x01 - &self.mean) / &self.std
    }

    /// Evaluation view: [0, 1], resized (bilinear) to the model's input size, normalised.
    pub fn plain(&self, x_u8: &Tensor) -> Tensor {
        let x = x_u8.to_kind(Kind::Float) / 255.0;
        let s = x.size();
        let x = if s[2] != self.out_size || s[3] != self.out_size {
            x.upsample_bilinear2d([self.out_size, self.out_size], false, None, None)
        } else {
            x
        };
        self.normalize(&x)
    }

    /// One random view of each image of a uint8 batch `[N, 3, H, W]`: image
    /// i's parameters from `images[i]`, the jitter order from `batch`.
    pub fn apply(&self, x_u8: &Tensor, images: &mut [Rng], batch: &mut Rng) -> Tensor {
        let x = x_u8.to_kind(Kind::Float) / 255.0;
        assert_eq!(x.size()[0] as usize, images.len(), "one random stream per image");
        let x = self.crop_flip(&x, images);
        let x = self.jitter(&x, images, batch);
        let x = self.grayscale(&x, images);
        let x = if self.out_size >= 64 && self.cfg.blur_p > 0.0 { self.blur(&x, images) } else { x };
        self.normalize(&x)
    }

    fn crop_flip(&self, x: &Tensor, images: &mut [Rng]) -> Tensor {
        let (h, w) = (x.size()[2] as f64, x.size()[3] as f64);
        let n = images.len();
        let mut theta = Vec::with_capacity(n * 6);
        for rng in images.iter_mut() {
            let (cx, cy, cw, ch) = crop_box(rng, w, h, self.cfg.crop_scale);
            let flip = if (rng.uniform() as f64) < self.cfg.flip_p { -1.0 } else { 1.0 };
            // Output coords in [-1, 1] map to the crop box (align_corners = false).
            let sx = cw / w * flip;
            let sy = ch / h;
            let tx = (2.0 * cx + cw) / w - 1.0;
            let ty = (2.0 * cy + ch) / h - 1.0;
            theta.extend_from_slice(&[sx as f32, 0.0, tx as f32, 0.0, sy as f32, ty as f32]);
        }
        let theta = Tensor::from_slice(&theta).to_device(self.device).view([n as i64, 2, 3]);
        let grid = Tensor::affine_grid_generator(&theta, [n as i64, 3, self.out_size, self.out_size], false);
        // Bilinear, border padding.
        x.grid_sampler(&grid, 0, 1, false)
    }

    fn jitter(&self, x: &Tensor, images: &mut [Rng], batch: &mut Rng) -> Tensor {
        let [b, c, s, hue] = self.cfg.jitter;
        let n = images.len();
        let mut f = [vec![1f32; n], vec![1f32; n], vec![1f32; n], vec![0f32; n]];
        for (i, rng) in images.iter_mut().enumerate() {
            if (rng.uniform() as f64) < self.cfg.jitter_p {
                f[0][i] = rng.range((1.0 - b).max(0.0) as f32, (1.0 + b) as f32);
                f[1][i] = rng.range((1.0 - c).max(0.0) as f32, (1.0 + c) as f32);
                f[2][i] = rng.range((1.0 - s).max(0.0) as f32, (1.0 + s) as f32);
                f[3][i] = rng.range(-hue as f32, hue as f32);
            }
        }
        let mut order = [0usize, 1, 2, 3];
        batch.shuffle(&mut order);
        let mut x = x.shallow_clone();
        for op in order {
            let v = col(&f[op], self.device);
            x = match op {
                0 => (&x * &v).clamp(0.0, 1.0),
                1 => {
                    let m: Tensor = gray(&x).mean_dim(&[1i64, 2, 3][..], true, None);
                    let y: Tensor = &v * &x + (1.0 - &v) * m;
                    y.clamp(0.0, 1.0)
                }
                2 => {
                    let y: Tensor = &v * &x + (1.0 - &v) * gray(&x);
                    y.clamp(0.0, 1.0)
                }
                _ => shift_hue(&x, &v),
            };
        }
        x
    }

    fn grayscale(&self, x: &Tensor, images: &mut [Rng]) -> Tensor {
        let m: Vec<f32> = images.iter_mut().map(|rng| if (rng.uniform() as f64) < self.cfg.gray_p { 1.0 } else { 0.0 }).collect();
        let m = col(&m, self.device);
        &m * gray(x) + (1.0 - &m) * x
    }

    fn blur(&self, x: &Tensor, images: &mut [Rng]) -> Tensor {
        let n = images.len();
        // Kernel of about 10% of the image, odd, as SimCLR.
        let k = ((self.out_size as f64 * 0.1) as i64 / 2 * 2 + 1).max(3);
        let r = k / 2;
        let mut weights = Vec::with_capacity(n * 3 * k as usize);
        for rng in images.iter_mut() {
            let kern: Vec<f32> = if (rng.uniform() as f64) < self.cfg.blur_p {
                let sigma = rng.range(0.1, 2.0);
                let g: Vec<f32> = (-r..=r).map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp()).collect();
                let sum: f32 = g.iter().sum();
                g.into_iter().map(|v| v / sum).collect()
            } else {
                (-r..=r).map(|i| if i == 0 { 1.0 } else { 0.0 }).collect()
            };
            for _ in 0..3 {
                weights.extend_from_slice(&kern);
            }
        }
        let c = 3 * n as i64;
        let wk = Tensor::from_slice(&weights).to_device(self.device);
        let size = x.size();
        let xs = x.reshape([1, c, size[2], size[3]]);
        let xs = xs.reflection_pad2d([r, r, 0, 0]).conv2d(&wk.view([c, 1, 1, k]), None::<Tensor>, [1, 1], [0, 0], [1, 1], c);
        let xs = xs.reflection_pad2d([0, 0, r, r]).conv2d(&wk.view([c, 1, k, 1]), None::<Tensor>, [1, 1], [0, 0], [1, 1], c);
        xs.reshape(size.as_slice())
    }
}

/// The random streams of `view` (0 or 1) of the images at `positions` of a
/// step's global batch, from the step's seed: the same on whichever rank
/// holds the image.
pub fn image_streams(step_seed: u64, positions: &[i64], view: u64) -> Vec<Rng> {
    positions.iter().map(|&p| Rng::new(mixco_data::rng::mix_seed(step_seed, 2 * p as u64 + view + 1))).collect()
}

/// torchvision's RandomResizedCrop.get_params: (left, top, width, height).
pub fn crop_box(rng: &mut Rng, w: f64, h: f64, scale: (f64, f64)) -> (f64, f64, f64, f64) {
    let area = w * h;
    let (lo, hi) = ((3f64 / 4.0).ln(), (4f64 / 3.0).ln());
    for _ in 0..10 {
        let target = area * (scale.0 + (scale.1 - scale.0) * rng.uniform() as f64);
        let aspect = (lo + (hi - lo) * rng.uniform() as f64).exp();
        let cw = (target * aspect).sqrt().round();
        let ch = (target / aspect).sqrt().round();
        if cw > 0.0 && ch > 0.0 && cw <= w && ch <= h {
            let left = rng.below((w - cw) as u64 + 1) as f64;
            let top = rng.below((h - ch) as u64 + 1) as f64;
            return (left, top, cw, ch);
        }
    }
    (0.0, 0.0, w, h)
}

/// Shifts the hue of RGB images in [0, 1] by `shift` (per image, in turns).
fn shift_hue(x: &Tensor, shift: &Tensor) -> Tensor {
    let r = x.narrow(1, 0, 1);
    let g = x.narrow(1, 1, 1);
    let b = x.narrow(1, 2, 1);
    let maxc = x.amax([1], true);
    let minc = x.amin([1], true);
    let delta = &maxc - &minc;
    let eq = delta.eq(0.0);
    let safe = delta.masked_fill(&eq, 1.0);
    let sat = &delta / maxc.masked_fill(&maxc.eq(0.0), 1.0);
    let rc = (&maxc - &r) / &safe;
    let gc = (&maxc - &g) / &safe;
    let bc = (&maxc - &b) / &safe;
    let h_r = &bc - &gc;
    let h_g: Tensor = 2.0 + &rc - &bc;
    let h_b: Tensor = 4.0 + &gc - &rc;
    let h = h_b.where_self(&maxc.eq_tensor(&b), &h_g);
    let h = h_r.where_self(&maxc.eq_tensor(&r), &h);
    let h = (h / 6.0 + shift).remainder(1.0).masked_fill(&eq, 0.0);
    // HSV -> RGB.
    let v = maxc;
    let h6 = h * 6.0;
    let i = h6.floor();
    let f = &h6 - &i;
    let i = i.remainder(6.0);
    let p = &v * (1.0 - &sat);
    let q = &v * (1.0 - &sat * &f);
    let t = &v * (1.0 - &sat * (1.0 - &f));
    let pick = |cands: [&Tensor; 6]| {
        let mut out = cands[5].shallow_clone();
        for k in (0..5).rev() {
            out = cands[k].where_self(&i.eq(k as f64), &out);
        }
        out
    };
    let r = pick([&v, &q, &p, &p, &t, &v]);
    let g = pick([&t, &v, &v, &q, &p, &p]);
    let b = pick([&p, &p, &t, &v, &v, &q]);
    Tensor::cat(&[r, g, b], 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(vals: &[f32], n: i64) -> Tensor {
        Tensor::from_slice(vals).view([n, 3, 1, 1])
    }

    #[test]
    fn hue_shift_by_hand() {
        // Pure red shifted by 1/3 turn is pure green; by 0 it is unchanged.
        let x = img(&[1., 0., 0., 0.2, 0.5, 0.8], 2);
        let y = shift_hue(&x, &col(&[1.0 / 3.0, 0.0], Device::Cpu));
        let v = Vec::<f32>::try_from(y.view(-1)).unwrap();
        let want = [0., 1., 0., 0.2, 0.5, 0.8];
        for (a, b) in v.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{v:?}");
        }
    }

    #[test]
    fn identity_when_everything_is_off() {
        let cfg = AugConfig { crop_scale: (1.0, 1.0), jitter: [0.0; 4], jitter_p: 0.0, gray_p: 0.0, blur_p: 0.0, flip_p: 0.0 };
        let aug = Augment::new(cfg, 8, [0.0; 3], [1.0; 3], Device::Cpu);
        let x = Tensor::randint(256, [2, 3, 8, 8], (Kind::Uint8, Device::Cpu));
        // At scale 1 on 8x8 every non-square draw rounds outside the image and
        // is rejected, so the crop is the whole image: the identity.
        for seed in 0..5 {
            let y = aug.apply(&x, &mut image_streams(seed, &[0, 1], 0), &mut Rng::new(seed));
            assert_eq!(y.size(), vec![2, 3, 8, 8]);
            let d = f64::try_from((y - aug.plain(&x)).abs().max()).unwrap();
            assert!(d < 1e-5, "{d}");
        }
    }

    #[test]
    fn output_size_range_and_determinism() {
        let aug = Augment::new(AugConfig::moco_v2(), 64, [0.5; 3], [0.25; 3], Device::Cpu);
        let x = Tensor::randint(256, [4, 3, 32, 32], (Kind::Uint8, Device::Cpu));
        let view = |seed| aug.apply(&x, &mut image_streams(seed, &[0, 1, 2, 3], 0), &mut Rng::new(seed));
        let (a, b, c) = (view(7), view(7), view(8));
        // An image's view depends on its position, not on the batch it is drawn in.
        let pair = aug.apply(&x.narrow(0, 2, 2), &mut image_streams(7, &[2, 3], 0), &mut Rng::new(7));
        assert_eq!(f64::try_from((&pair - a.narrow(0, 2, 2)).abs().max()).unwrap(), 0.0);
        assert_eq!(a.size(), vec![4, 3, 64, 64]);
        assert_eq!(f64::try_from((&a - &b).abs().max()).unwrap(), 0.0);
        assert!(f64::try_from((&a - &c).abs().max()).unwrap() > 0.1);
        // Values stay within the normalised [0, 1] range: [-2, 2].
        assert!(f64::try_from(a.max()).unwrap() <= 2.0 + 1e-5);
        assert!(f64::try_from(a.min()).unwrap() >= -2.0 - 1e-5);
    }

    #[test]
    fn crop_boxes_follow_scale_and_ratio() {
        let mut rng = Rng::new(3);
        for _ in 0..1000 {
            let (l, t, w, h) = crop_box(&mut rng, 32.0, 32.0, (0.2, 1.0));
            assert!(l + w <= 32.0 && t + h <= 32.0 && w >= 1.0 && h >= 1.0);
            let area = w * h / 1024.0;
            assert!(area > 0.15 && area <= 1.0, "{area}");
        }
    }
}
