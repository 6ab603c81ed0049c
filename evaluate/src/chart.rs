//! A grouped bar chart as a PNG (no fonts needed: labels use the public-domain
//! 8x8 bitmap font of the `font8x8` crate).

use font8x8::UnicodeFonts;
use image::{Rgb, RgbImage};

/// One bar series: a label and one value (percent) per group; `None` draws no bar.
pub struct Series {
    pub label: String,
    pub values: Vec<Option<f64>>,
}

const PALETTE: [[u8; 3]; 8] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
];
const SCALE: u32 = 2; // font pixels per glyph pixel
const GLYPH: u32 = 8 * SCALE;

fn text(img: &mut RgbImage, x: i64, y: i64, s: &str, colour: [u8; 3]) {
    for (i, ch) in s.chars().enumerate() {
        let glyph = font8x8::BASIC_FONTS.get(ch).or_else(|| font8x8::BASIC_FONTS.get('?')).unwrap();
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                if bits >> col & 1 == 1 {
                    for dy in 0..SCALE as i64 {
                        for dx in 0..SCALE as i64 {
                            let (px, py) = (x + i as i64 * GLYPH as i64 + col * SCALE as i64 + dx, y + row as i64 * SCALE as i64 + dy);
                            if px >= 0 && py >= 0 && (px as u32) < img.width() && (py as u32) < img.height() {
                                img.put_pixel(px as u32, py as u32, Rgb(colour));
                            }
                        }
                    }
                }
            }
        }
    }
}

fn rect(img: &mut RgbImage, x0: u32, y0: u32, x1: u32, y1: u32, colour: [u8; 3]) {
    for y in y0.min(y1)..y0.max(y1).min(img.height()) {
        for x in x0.min(x1)..x0.max(x1).min(img.width()) {
            img.put_pixel(x, y, Rgb(colour));
        }
    }
}

/// Bars of `series` for each of `groups`, on a 0-100% axis, with the values
/// written above the bars and a legend below.
pub fn bar_chart(title: &str, groups: &[String], series: &[Series]) -> RgbImage {
    let bar = 34u32;
    let gap = 40u32;
    let label_w = groups.iter().map(|g| g.len() as u32 * GLYPH).max().unwrap_or(0);
    // Wide enough for the bars and for the longest group label.
    let group_w = (bar * series.len().max(1) as u32 + gap).max(label_w + 24);
    let (left, top, plot_h) = (70u32, 50u32, 400u32);
    let legend_rows = series.len() as u32;
    let width = (left + group_w * groups.len().max(1) as u32 + 20).max(title.len() as u32 * GLYPH + 40).max(label_w + left + 20);
    let height = top + plot_h + 40 + legend_rows * (GLYPH + 8) + 20;
    let mut img = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    text(&mut img, 20, 14, title, [0, 0, 0]);
    let y_of = |v: f64| top + plot_h - ((v.clamp(0.0, 100.0) / 100.0) * plot_h as f64).round() as u32;
    for tick in (0..=100).step_by(20) {
        let y = y_of(tick as f64);
        rect(&mut img, left, y, width - 10, y + 1, [225, 225, 225]);
        let label = format!("{tick}");
        text(&mut img, left as i64 - 8 - (label.len() as u32 * GLYPH) as i64, y as i64 - GLYPH as i64 / 2, &label, [80, 80, 80]);
    }
    rect(&mut img, left, top, left + 2, top + plot_h, [0, 0, 0]);
    rect(&mut img, left, top + plot_h, width - 10, top + plot_h + 2, [0, 0, 0]);
    for (g, name) in groups.iter().enumerate() {
        let bars_w = bar * series.len() as u32;
        let x0 = left + (group_w - bars_w) / 2 + g as u32 * group_w;
        for (s, ser) in series.iter().enumerate() {
            let Some(v) = ser.values.get(g).copied().flatten() else { continue };
            let x = x0 + s as u32 * bar;
            rect(&mut img, x + 2, y_of(v), x + bar - 2, top + plot_h, PALETTE[s % PALETTE.len()]);
            // Values sit above their bars in the 8x8 font at scale 1 so that they fit.
            let label = format!("{v:.1}");
            let lx = x as i64 + (bar as i64 - label.len() as i64 * 6) / 2;
            small_text(&mut img, lx, y_of(v) as i64 - 11, &label);
        }
        let w = name.len() as u32 * GLYPH;
        let cx = x0 + bars_w / 2;
        text(&mut img, cx as i64 - w as i64 / 2, (top + plot_h + 12) as i64, name, [0, 0, 0]);
    }
    for (s, ser) in series.iter().enumerate() {
        let y = top + plot_h + 44 + s as u32 * (GLYPH + 8);
        rect(&mut img, left, y, left + GLYPH, y + GLYPH, PALETTE[s % PALETTE.len()]);
        text(&mut img, (left + GLYPH + 10) as i64, y as i64, &ser.label, [0, 0, 0]);
    }
    img
}

/// 8x8 glyphs at scale 1, drawn 6 px apart (the font leaves the right columns blank).
fn small_text(img: &mut RgbImage, x: i64, y: i64, s: &str) {
    for (i, ch) in s.chars().enumerate() {
        let glyph = font8x8::BASIC_FONTS.get(ch).unwrap_or([0; 8]);
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                let (px, py) = (x + i as i64 * 6 + col, y + row as i64);
                if bits >> col & 1 == 1 && px >= 0 && py >= 0 && (px as u32) < img.width() && (py as u32) < img.height() {
                    img.put_pixel(px as u32, py as u32, Rgb([40, 40, 40]));
                }
            }
        }
    }
}

/// Encodes as PNG.
pub fn png_bytes(img: &RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).expect("PNG encoding into memory cannot fail");
    out.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_have_the_right_heights_and_colours() {
        let groups = vec!["a".to_string(), "b".to_string()];
        let series = vec![
            Series { label: "m1".into(), values: vec![Some(50.0), Some(100.0)] },
            Series { label: "m2".into(), values: vec![Some(25.0), None] },
        ];
        let img = bar_chart("t", &groups, &series);
        // Plot area: top 50, height 400; group 0 starts at 70 + 20; bars 34 px wide.
        let (top, h) = (50u32, 400u32);
        let blue = Rgb(PALETTE[0]);
        let orange = Rgb(PALETTE[1]);
        let x_m1 = 70 + 20 + 17;
        let x_m2 = x_m1 + 34;
        assert_eq!(*img.get_pixel(x_m1, top + h - 1), blue);
        assert_eq!(*img.get_pixel(x_m1, top + h / 2 + 1), blue, "50% reaches half way");
        assert_ne!(*img.get_pixel(x_m1, top + h / 2 - 2), blue, "and no further");
        assert_eq!(*img.get_pixel(x_m2, top + 3 * h / 4 + 1), orange);
        assert_ne!(*img.get_pixel(x_m2, top + 3 * h / 4 - 2), orange);
        // The missing value draws nothing in group 1's second slot.
        let group_w = 34 * 2 + 40;
        let x_missing = x_m2 + group_w;
        assert!((top..top + h).all(|y| *img.get_pixel(x_missing, y) != orange));
        let png = png_bytes(&img);
        assert_eq!(&png[1..4], b"PNG");
    }
}
