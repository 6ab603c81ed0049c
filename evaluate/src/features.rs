//! Frozen features of a dataset split through an ONNX encoder.

use crate::resize::bilinear;
use crate::session::{OnnxModel, SessionError};
use mixco_data::ImageSet;

/// `n` rows of `dim` features.
pub struct Features {
    pub data: Vec<f32>,
    pub n: usize,
    pub dim: usize,
}

/// The resize policy, recorded with every result.
pub const RESIZE_POLICY: &str = "bilinear (half-pixel, no antialias) to the encoder's input size when sizes differ";

/// How images enter the model and which output is read.
pub struct Feed<'a> {
    pub input_size: usize,
    pub output: &'a str,
    /// (mean, std) applied on the host (foreign models only).
    pub normalise: Option<([f32; 3], [f32; 3])>,
}

/// Runs every image of `set` (scaled to [0, 1], resized bilinearly to
/// `input_size` when it differs) through `model` in batches, calling
/// `progress` with each batch's size. An output of (N, C, H, W) is averaged
/// over H x W, any other (N, ...) flattened per image.
/// A non-finite output is an error naming the model, the output and the image.
pub fn extract_with(model: &mut OnnxModel, set: &ImageSet, feed: &Feed, batch: usize, progress: &mut dyn FnMut(usize)) -> Result<Features, SessionError> {
    let input_size = feed.input_size;
    let (h, w) = (set.height, set.width);
    let per = 3 * input_size * input_size;
    let mut data = Vec::new();
    let mut dim = 0;
    let mut start = 0;
    let mut buf = Vec::new();
    let mut scaled = vec![0f32; 3 * h * w];
    while start < set.len() {
        let n = batch.min(set.len() - start);
        buf.resize(n * per, 0.0);
        for i in 0..n {
            let img = set.image(start + i);
            let dst = &mut buf[i * per..(i + 1) * per];
            if (h, w) == (input_size, input_size) {
                dst.iter_mut().zip(img).for_each(|(d, &p)| *d = p as f32 / 255.0);
            } else {
                scaled.iter_mut().zip(img).for_each(|(d, &p)| *d = p as f32 / 255.0);
                bilinear(&scaled, 3, h, w, input_size, dst);
            }
        }
        if let Some((mean, std)) = feed.normalise {
            let plane = input_size * input_size;
            for (j, v) in buf.iter_mut().enumerate() {
                let c = (j / plane) % 3;
                *v = (*v - mean[c]) / std[c];
            }
        }
        let (shape, mut out) = model.run(&buf, n, input_size, feed.output)?;
        // The output must have the batch as its first axis and at least one
        // value per image (a scalar or rank-1 output once panicked in kNN).
        let per_image = shape.iter().skip(1).try_fold(1usize, |a, &d| a.checked_mul(d));
        if shape.len() < 2 || shape[0] != n || per_image.is_none_or(|p| p == 0 || out.len() != n * p) {
            let message = format!("output `{}` has shape {shape:?} for a batch of {n} images; features need shape (N, D) or (N, C, H, W) with N = {n}", feed.output);
            return Err(SessionError::Ort { what: model.name().to_string(), message });
        }
        let before = dim;
        if let [_, c, h, w] = shape[..] {
            // (N, C, H, W): global average pooling, as encoders' heads do,
            // not C·H·W values in no particular order of importance.
            out = out.chunks_exact((h * w).max(1)).map(|plane| plane.iter().map(|&v| v as f64).sum::<f64>() as f32 / (h * w).max(1) as f32).collect();
            dim = c;
        } else {
            dim = shape.iter().skip(1).product();
        }
        if start > 0 && dim != before {
            let message = format!("output `{}` has {dim} values per image in one batch and {before} in another", feed.output);
            return Err(SessionError::Ort { what: model.name().to_string(), message });
        }
        // A NaN would otherwise surface as a panic in kNN or a meaningless probe.
        if let Some(j) = out.iter().position(|v| !v.is_finite()) {
            let message = format!("output `{}` is {} for image {} (feature {})", feed.output, out[j], start + j / dim.max(1), j % dim.max(1));
            return Err(SessionError::Ort { what: model.name().to_string(), message });
        }
        data.extend_from_slice(&out);
        start += n;
        progress(n);
    }
    Ok(Features { data, n: set.len(), dim })
}
