//! Bilinear resizing of planar float images (half-pixel centres, no
//! antialiasing: PyTorch's `interpolate(mode="bilinear", align_corners=False)`).

/// Resizes one `[c, h, w]` image to `[c, out, out]`.
pub fn bilinear(src: &[f32], c: usize, h: usize, w: usize, out: usize, dst: &mut [f32]) {
    let axis = |n_in: usize| -> Vec<(usize, usize, f32)> {
        let scale = n_in as f32 / out as f32;
        (0..out)
            .map(|o| {
                let x = ((o as f32 + 0.5) * scale - 0.5).max(0.0);
                let i0 = (x.floor() as usize).min(n_in - 1);
                let i1 = (i0 + 1).min(n_in - 1);
                (i0, i1, x - i0 as f32)
            })
            .collect()
    };
    let (ys, xs) = (axis(h), axis(w));
    for ch in 0..c {
        let plane = &src[ch * h * w..(ch + 1) * h * w];
        for (oy, &(y0, y1, fy)) in ys.iter().enumerate() {
            for (ox, &(x0, x1, fx)) in xs.iter().enumerate() {
                let top = plane[y0 * w + x0] * (1.0 - fx) + plane[y0 * w + x1] * fx;
                let bottom = plane[y1 * w + x0] * (1.0 - fx) + plane[y1 * w + x1] * fx;
                dst[ch * out * out + oy * out + ox] = top * (1.0 - fy) + bottom * fy;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halving_averages_pairs_and_identity_copies() {
        // 4x4 -> 2x2 samples at the centres between pixel pairs.
        let src: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let mut dst = vec![0.0; 4];
        bilinear(&src, 1, 4, 4, 2, &mut dst);
        assert_eq!(dst, vec![2.5, 4.5, 10.5, 12.5]);
        let mut same = vec![0.0; 16];
        bilinear(&src, 1, 4, 4, 4, &mut same);
        assert_eq!(same, src);
    }
}
