//! A PNG contact sheet of a split's first images, to look at what a model sees.

use crate::{Error, ImageSet, Result};

/// Encodes the first `count` images of `set` as a square grid (1 px gaps).
pub fn grid_png(set: &ImageSet, count: usize) -> Result<Vec<u8>> {
    let n = count.min(set.len());
    if n == 0 {
        return Err(Error::Invalid("the split holds no images to preview".into()));
    }
    let cols = (n as f64).sqrt().ceil() as usize;
    let rows = n.div_ceil(cols);
    let (h, w) = (set.height, set.width);
    let (gw, gh) = (cols * (w + 1) + 1, rows * (h + 1) + 1);
    let mut img = image::RgbImage::from_pixel(gw as u32, gh as u32, image::Rgb([255, 255, 255]));
    let plane = h * w;
    for i in 0..n {
        let src = set.image(i);
        let (ox, oy) = (1 + (i % cols) * (w + 1), 1 + (i / cols) * (h + 1));
        for y in 0..h {
            for x in 0..w {
                let p = y * w + x;
                img.put_pixel((ox + x) as u32, (oy + y) as u32, image::Rgb([src[p], src[plane + p], src[2 * plane + p]]));
            }
        }
    }
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).map_err(|e| Error::Invalid(format!("PNG encoding failed: {e}")))?;
    Ok(out.into_inner())
}
