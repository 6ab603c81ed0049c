//! Image files to the planar RGB bytes of an `ImageSet`, shared by the
//! readers of Tiny ImageNet (fixed-size JPEGs) and of image folders (any
//! size, resized and cropped).

use crate::{Error, ImageSet, Result};
use image::imageops::FilterType;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `rgb` interleaved (HWC) -> `out` planar (CHW), for `pixels` pixels.
pub fn interleaved_to_planar(rgb: &[u8], pixels: usize, out: &mut [u8]) {
    let (r, rest) = out.split_at_mut(pixels);
    let (g, b) = rest.split_at_mut(pixels);
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        r[i] = px[0];
        g[i] = px[1];
        b[i] = px[2];
    }
}

/// Decodes any supported image and brings it to `size` x `size` planar RGB.
pub fn decode_resized(path: &Path, bytes: &[u8], size: u32, out: &mut [u8]) -> Result<()> {
    let img = image::load_from_memory(bytes)
        .map_err(|e| Error::format(path, format!("cannot decode image: {e}")))?
        .to_rgb8();
    let (w, h) = img.dimensions();
    let img = if (w, h) == (size, size) {
        img
    } else {
        let scale = size as f64 / w.min(h) as f64;
        let (nw, nh) = (((w as f64 * scale).round() as u32).max(size), ((h as f64 * scale).round() as u32).max(size));
        let resized = image::imageops::resize(&img, nw, nh, FilterType::Triangle);
        image::imageops::crop_imm(&resized, (nw - size) / 2, (nh - size) / 2, size, size).to_image()
    };
    interleaved_to_planar(img.as_raw(), (size * size) as usize, out);
    Ok(())
}

/// Decodes one JPEG (grayscale and CMYK included) into planar RGB bytes of
/// `size` x `size`, which it must already have.
pub fn decode_rgb_planar(path: &Path, bytes: &[u8], size: usize, out: &mut [u8]) -> Result<()> {
    let img = image::load_from_memory(bytes)
        .map_err(|e| Error::format(path, format!("cannot decode image: {e}")))?;
    if img.width() as usize != size || img.height() as usize != size {
        return Err(Error::format(
            path,
            format!("image is {}x{}, expected {size}x{size}", img.width(), img.height()),
        ));
    }
    interleaved_to_planar(img.to_rgb8().as_raw(), size * size, out);
    Ok(())
}

/// Reads and decodes `files` in parallel into one image set.
pub fn decode_all(
    files: Vec<(PathBuf, u32)>,
    size: usize,
    classes: Arc<Vec<String>>,
    decode: impl Fn(&Path, &[u8], &mut [u8]) -> Result<()> + Sync,
) -> Result<ImageSet> {
    let n = 3 * size * size;
    let mut pixels = vec![0u8; files.len() * n];
    pixels.par_chunks_mut(n).zip(files.par_iter()).try_for_each(|(out, (path, _))| {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        decode(path, &bytes, out)
    })?;
    let labels = files.iter().map(|(_, l)| *l).collect();
    Ok(ImageSet { pixels, labels, height: size, width: size, classes })
}

