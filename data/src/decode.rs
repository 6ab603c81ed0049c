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

/// The most pixels an image file may decode to (64 Mpx: 192 MB as RGB).
pub const MAX_PIXELS: u64 = 64 * 1024 * 1024;

/// Beyond this ratio of its sides an image is center-cropped to it before
/// resizing, so that the resize never scales a 10,000,000 x 1 strip to
/// 320,000,000 x 32 (the output is the center square either way).
pub const MAX_ASPECT: u32 = 16;

/// Decodes an image whose header states at most [`MAX_PIXELS`] pixels; the
/// decoder's own allocations are bounded too.
fn decode_limited(path: &Path, bytes: &[u8]) -> Result<image::DynamicImage> {
    let bad = |e: image::ImageError| Error::format(path, format!("cannot decode image: {e}"));
    let reader = || image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| Error::io(path, e));
    let (w, h) = reader()?.into_dimensions().map_err(bad)?;
    if w as u64 * h as u64 > MAX_PIXELS {
        return Err(Error::format(path, format!("image is {w}x{h} ({} pixels), over mixco's limit of {MAX_PIXELS} pixels", w as u64 * h as u64)));
    }
    let mut reader = reader()?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(4 * MAX_PIXELS * 2);
    reader.limits(limits);
    reader.decode().map_err(bad)
}

/// Decodes any supported image and brings it to `size` x `size` planar RGB.
pub fn decode_resized(path: &Path, bytes: &[u8], size: u32, out: &mut [u8]) -> Result<()> {
    let img = decode_limited(path, bytes)?.to_rgb8();
    let (w, h) = img.dimensions();
    let img = if w.max(h) / w.min(h).max(1) > MAX_ASPECT {
        let (cw, ch) = (w.min(h.max(1) * MAX_ASPECT), h.min(w.max(1) * MAX_ASPECT));
        image::imageops::crop_imm(&img, (w - cw) / 2, (h - ch) / 2, cw, ch).to_image()
    } else {
        img
    };
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
    let img = decode_limited(path, bytes)?;
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


#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 251) as u8, (y % 251) as u8, 7]));
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
        out
    }

    /// Issue 29, group 4: a 10,000,000 x 1 PNG (29 KB) asked the resize for
    /// 30.7 GB and aborted; 1,000,000 x 1 took 3.6 GB and 37 s.
    #[test]
    fn tall_thin_images_are_cropped_before_resizing() {
        let mut out = vec![0u8; 3 * 32 * 32];
        for (w, h) in [(10_000_000, 1), (1, 1_000_000), (3, 200)] {
            decode_resized(Path::new("strip.png"), &png(w, h), 32, &mut out).unwrap();
        }
        // Up to 16:1 the image is resized whole, as before.
        let mut a = vec![0u8; 3 * 32 * 32];
        decode_resized(Path::new("wide.png"), &png(160, 10), 32, &mut a).unwrap();
        let img = image::load_from_memory(&png(160, 10)).unwrap().to_rgb8();
        let resized = image::imageops::resize(&img, 512, 32, FilterType::Triangle);
        let mut b = vec![0u8; 3 * 32 * 32];
        interleaved_to_planar(image::imageops::crop_imm(&resized, 240, 0, 32, 32).to_image().as_raw(), 32 * 32, &mut b);
        assert_eq!(a, b);
    }

    /// A header stating more than MAX_PIXELS is refused before decoding.
    #[test]
    fn huge_headers_are_refused_before_decoding() {
        let mut bytes = png(2, 2);
        // IHDR's width and height (bytes 16..24): 100,000 x 100,000.
        bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        // The chunk's CRC-32 (over type and data) made right again.
        let crc = bytes[12..29].iter().fold(!0u32, |c, &b| (0..8).fold(c ^ b as u32, |c, _| if c & 1 == 1 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 }));
        bytes[29..33].copy_from_slice(&(!crc).to_be_bytes());
        let e = decode_resized(Path::new("bomb.png"), &bytes, 32, &mut [0u8; 3 * 32 * 32]).unwrap_err().to_string();
        assert!(e.contains("bomb.png: image is 100000x100000 (10000000000 pixels), over mixco's limit"), "{e}");
    }
}
