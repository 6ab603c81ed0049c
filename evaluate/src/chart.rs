//! A grouped bar chart as a PNG (no fonts needed: labels use the public-domain
//! 8x8 bitmap font of the `font8x8` crate).

use font8x8::UnicodeFonts;
use image::{Rgb, RgbImage};
use mixco_model::run::EpochLog;

/// One bar series: a label and one value (percent) per group; `None` draws no bar.
pub struct Series {
    pub label: String,
    pub values: Vec<Option<f64>>,
}

// matplotlib's tab10: ten series before a colour repeats.
const PALETTE: [[u8; 3]; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];
/// Line `i`'s colour and dash length in pixels (0 = solid): after ten lines
/// the colours repeat dashed, then dotted, so no two lines look alike.
fn line_style(i: usize) -> ([u8; 3], usize) {
    (PALETTE[i % PALETTE.len()], [0, 9, 3][(i / PALETTE.len()).min(2)])
}

const SCALE: u32 = 2; // font pixels per glyph pixel
const GLYPH: u32 = 8 * SCALE;

/// One pixel, if it falls inside the image.
fn dot(img: &mut RgbImage, x: i64, y: i64, colour: [u8; 3]) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, Rgb(colour));
    }
}

/// `s` in the 8x8 font, each glyph pixel `scale` pixels wide, glyphs
/// `advance` pixels apart; characters the font lacks draw `fallback`.
fn glyphs(img: &mut RgbImage, x: i64, y: i64, s: &str, colour: [u8; 3], scale: i64, advance: i64, fallback: [u8; 8]) {
    for (i, ch) in s.chars().enumerate() {
        let glyph = font8x8::BASIC_FONTS.get(ch).unwrap_or(fallback);
        for (row, bits) in glyph.iter().enumerate() {
            for col in (0..8).filter(|c| bits >> c & 1 == 1) {
                for dy in 0..scale {
                    for dx in 0..scale {
                        dot(img, x + i as i64 * advance + col * scale + dx, y + row as i64 * scale + dy, colour);
                    }
                }
            }
        }
    }
}

fn text(img: &mut RgbImage, x: i64, y: i64, s: &str, colour: [u8; 3]) {
    let question = font8x8::BASIC_FONTS.get('?').unwrap();
    glyphs(img, x, y, s, colour, SCALE as i64, GLYPH as i64, question);
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
    glyphs(img, x, y, s, [40, 40, 40], 1, 6, [0; 8]);
}

/// One line: a label and its (x, y) points.
pub struct Line {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// A panel of lines sharing axes: `panels` are drawn one below the other,
/// each with its own title and y range; line `i` has the same colour in
/// every panel and appears once in the legend (lines past the tenth are
/// dashed, past the twentieth dotted).
/// How a panel's y axis is scaled: never zoomed into noise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Axis {
    /// A fixed range (a percentage: 0 to 100), widened if data falls outside.
    Fixed(f64, f64),
    /// From zero (or the lowest value, if below) to the highest value.
    FromZero,
}

/// The smallest of 1, 2, 2.5, 5 (times a power of ten) at least `raw`.
fn nice_step(raw: f64) -> f64 {
    step_of(raw, &[1.0, 2.0, 2.5, 5.0])
}

/// The smallest `m` x 10^k (m from `mantissas`) at least `raw`.
fn step_of(raw: f64, mantissas: &[f64]) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    mantissas.iter().map(|m| m * p).find(|s| *s >= raw * (1.0 - 1e-9)).unwrap_or(10.0 * p)
}

/// Whole-number ticks for an integer axis (epochs): a step of 1, 2 or 5
/// times a power of ten, at most about 10 ticks, on multiples of the step.
fn integer_ticks(x0: f64, x1: f64) -> Vec<f64> {
    let step = step_of(((x1 - x0) / 10.0).max(1.0), &[1.0, 2.0, 5.0]);
    let first = (x0 / step).ceil() * step;
    (0..=20).map(|i| first + i as f64 * step).take_while(|x| *x <= x1 + 1e-9).collect()
}

pub fn line_panels(title: &str, x_label: &str, panels: &[(String, Vec<Line>, Axis)]) -> RgbImage {
    let (left, right, panel_h, gap) = (90u32, 30u32, 220u32, 60u32);
    let width = 760u32;
    let labels: Vec<&str> = panels.iter().flat_map(|(_, ls, _)| ls.iter().map(|l| l.label.as_str())).fold(Vec::new(), |mut v, l| {
        if !v.contains(&l) {
            v.push(l);
        }
        v
    });
    let top = 50u32;
    let height = top + panels.len() as u32 * (panel_h + gap) + labels.len() as u32 * (GLYPH + 8) + 30;
    let mut img = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    text(&mut img, 20, 14, title, [0, 0, 0]);
    let xs: Vec<f64> = panels.iter().flat_map(|(_, ls, _)| ls.iter().flat_map(|l| l.points.iter().map(|p| p.0))).collect();
    let (x0, x1) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
    let (x0, x1) = match (x0.is_finite(), x1 > x0) {
        (true, true) => (x0, x1),
        // One epoch: a range around it (the fixed 0..1 once put a far epoch off the image).
        (true, false) => (x0 - 0.5, x0 + 0.5),
        _ => (0.0, 1.0),
    };
    for (p, (name, lines, axis)) in panels.iter().enumerate() {
        let py = top + p as u32 * (panel_h + gap);
        let ys: Vec<f64> = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)).filter(|y| y.is_finite()).collect();
        let (mut y0, mut y1) = ys.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &y| (a.min(y), b.max(y)));
        if !(y0.is_finite() && y1.is_finite()) {
            continue;
        }
        // The axis's own range (widened by the data), so that noise stays flat.
        (y0, y1) = match *axis {
            Axis::Fixed(lo, hi) => (y0.min(lo), y1.max(hi)),
            Axis::FromZero => (y0.min(0.0), y1),
        };
        // Round the range out to a nice step (1, 2, 2.5 or 5 x 10^k) so the ticks read as numbers.
        let step = nice_step(((y1 - y0) / 4.0).max(1e-3 * y1.abs().max(1.0)));
        (y0, y1) = ((y0 / step).floor() * step, (y1 / step).ceil() * step);
        if y1 - y0 < step {
            y1 = y0 + step;
        }
        small_text(&mut img, left as i64, py as i64 - 12, name);
        // Pixels inside the image whatever the values (pixel arithmetic once overflowed).
        let to_px = |x: f64, y: f64| {
            let fx = left as f64 + (x - x0) / (x1 - x0) * (width - left - right) as f64;
            let fy = (py + panel_h) as f64 - (y - y0) / (y1 - y0) * panel_h as f64;
            (fx.clamp(0.0, width as f64 - 5.0), fy.clamp(0.0, height as f64 - 5.0))
        };
        let decimals = (0..4).find(|d| ((step * 10f64.powi(*d)) - (step * 10f64.powi(*d)).round()).abs() < 1e-6).unwrap_or(4) as usize;
        let ticks = (((y1 - y0) / step).round() as usize).min(20);
        for i in 0..=ticks {
            let y = y0 + step * i as f64;
            let (_, fy) = to_px(x0, y);
            rect(&mut img, left, fy as u32, width - right, fy as u32 + 1, [230, 230, 230]);
            let label = format!("{y:.decimals$}");
            small_text(&mut img, left as i64 - 8 - label.len() as i64 * 6, fy as i64 - 4, &label);
        }
        rect(&mut img, left, py, left + 2, py + panel_h, [0, 0, 0]);
        rect(&mut img, left, py + panel_h, width - right, py + panel_h + 2, [0, 0, 0]);
        for x in integer_ticks(x0, x1) {
            let (fx, _) = to_px(x, y0);
            let label = format!("{x:.0}");
            small_text(&mut img, fx as i64 - label.len() as i64 * 3, (py + panel_h + 6) as i64, &label);
        }
        for line in lines {
            let (c, dash) = line_style(labels.iter().position(|l| *l == line.label).unwrap_or(0));
            let pts: Vec<(f64, f64)> = line.points.iter().filter(|p| p.1.is_finite()).map(|&(x, y)| to_px(x, y)).collect();
            for w in pts.windows(2) {
                segment(&mut img, w[0], w[1], c, dash);
            }
            for &(fx, fy) in &pts {
                rect(&mut img, (fx as u32).saturating_sub(3), (fy as u32).saturating_sub(3), fx as u32 + 4, fy as u32 + 4, c);
            }
        }
        if p + 1 == panels.len() {
            small_text(&mut img, (width / 2) as i64 - x_label.len() as i64 * 3, (py + panel_h + 20) as i64, x_label);
        }
    }
    let ly = top + panels.len() as u32 * (panel_h + gap);
    for (i, l) in labels.iter().enumerate() {
        let y = ly + i as u32 * (GLYPH + 8);
        match line_style(i) {
            (c, 0) => rect(&mut img, left, y, left + GLYPH, y + GLYPH, c),
            (c, dash) => {
                let mid = (y + GLYPH / 2) as f64;
                segment(&mut img, (left as f64 - 6.0, mid), ((left + GLYPH) as f64 + 4.0, mid), c, dash);
            }
        }
        text(&mut img, (left + GLYPH + 10) as i64, y as i64, l, [0, 0, 0]);
    }
    img
}

/// A 3-pixel-wide segment between two points; with `dash` > 0, drawn
/// `dash` pixels on, `dash` off.
fn segment(img: &mut RgbImage, a: (f64, f64), b: (f64, f64), c: [u8; 3], dash: usize) {
    let steps = ((b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil() as usize).max(1);
    for i in (0..=steps).filter(|i| dash == 0 || (i / dash) % 2 == 0) {
        let t = i as f64 / steps as f64;
        let (x, y) = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
        for dy in -1..=1i64 {
            for dx in -1..=1i64 {
                dot(img, x as i64 + dx, y as i64 + dy, c);
            }
        }
    }
}

/// A log line's value for a curve.
type Field = fn(&EpochLog) -> Option<f64>;

/// The panels of training curves: (title, log field, scale, drawn even when no run logged it).
const CURVES: [(&str, Field, f64, bool, Axis); 4] = [
    ("contrastive loss", |l| l.loss_contrastive, 1.0, true, Axis::FromZero),
    ("MixCo loss", |l| l.loss_mix, 1.0, false, Axis::FromZero),
    ("kNN top-1 (%)", |l| l.knn_top1, 100.0, true, Axis::Fixed(0.0, 100.0)),
    ("mean cosine between images", |l| l.query_cosine, 1.0, false, Axis::Fixed(0.0, 1.0)),
];

/// Whether a run's log holds anything [`training_curves`] draws.
pub fn has_curves(log: &[EpochLog]) -> bool {
    CURVES.iter().any(|(_, field, _, always, _)| *always && log.iter().any(|l| field(l).is_some()))
}

/// Training curves of `runs` (a label and its `log.jsonl` each), one colour
/// per run: the contrastive loss, the MixCo loss (when any run has one), the
/// kNN monitor and the collapse monitor (when logged), per epoch. What the
/// trainer draws into `curves.png` and `mixco plot` for several runs.
pub fn training_curves(title: &str, runs: &[(String, Vec<EpochLog>)]) -> RgbImage {
    let panels: Vec<(String, Vec<Line>, Axis)> = CURVES
        .iter()
        .filter_map(|(name, field, scale, always, axis)| {
            let lines = runs
                .iter()
                .map(|(label, log)| Line { label: label.clone(), points: log.iter().filter_map(|l| field(l).map(|v| (l.epoch as f64, scale * v))).collect() })
                .filter(|l| *always || !l.points.is_empty())
                .collect::<Vec<_>>();
            (*always || !lines.is_empty()).then(|| (name.to_string(), lines, *axis))
        })
        .collect();
    line_panels(title, "epoch", &panels)
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

    #[test]
    fn y_steps_are_nice_numbers() {
        assert_eq!(nice_step(1.6), 2.0);
        assert_eq!(nice_step(25.0), 25.0);
        assert_eq!(nice_step(0.25), 0.25);
        assert_eq!(nice_step(0.07), 0.1);
        assert_eq!(nice_step(3.0), 5.0);
    }

    /// Issue 32: epochs are whole numbers (ticks were once at 1.2, 2.4, ...).
    #[test]
    fn epoch_ticks_are_whole_numbers() {
        assert_eq!(integer_ticks(0.0, 12.0), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0]);
        assert_eq!(integer_ticks(1.0, 5.0), [1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(integer_ticks(3.5, 4.5), [4.0]);
        assert_eq!(integer_ticks(0.0, 1000.0).len(), 11);
        assert!(integer_ticks(0.0, 37.0).iter().all(|x| x.fract() == 0.0 && x % 5.0 == 0.0));
    }

    /// Issue 29, group 16: a log with epoch u64::MAX (alone, or beside
    /// small ones) overflowed the pixel arithmetic of `mixco plot`.
    #[test]
    fn extreme_epochs_stay_inside_the_image() {
        let far = u64::MAX as f64;
        for points in [vec![(far, 1.0)], vec![(0.0, 0.0), (far, 1.0)], vec![(0.0, f64::MAX), (1.0, -f64::MAX)]] {
            let panels = vec![("loss".to_string(), vec![Line { label: "a".into(), points }], Axis::FromZero)];
            let img = line_panels("t", "epoch", &panels);
            assert!(img.width() > 0);
        }
    }

    #[test]
    fn lines_pass_through_their_points() {
        let panels = vec![("loss".to_string(), vec![Line { label: "a".into(), points: vec![(0.0, 0.0), (2.0, 1.0)] }], Axis::FromZero)];
        let img = line_panels("t", "epoch", &panels);
        // x from 90 to 730, y from 0 at 50 + 220 (bottom) up to 1 (ticks every 0.25).
        let blue = Rgb(PALETTE[0]);
        let (x_mid, y_mid) = (90.0 + 320.0, 50.0 + 220.0 - 0.5 * 220.0);
        assert_eq!(*img.get_pixel(x_mid as u32, y_mid as u32), blue, "the segment's middle");
        assert_ne!(*img.get_pixel(x_mid as u32, (y_mid - 30.0) as u32), blue);
    }

    #[test]
    fn lines_past_the_tenth_are_dashed_in_a_repeated_colour() {
        // Eleven flat lines at y = 1..11: the eleventh (y = 11) is blue like the first, but dashed.
        let lines = (0..11).map(|k| Line { label: format!("l{k}"), points: vec![(0.0, k as f64 + 1.0), (1.0, k as f64 + 1.0)] }).collect();
        let img = line_panels("t", "epoch", &[("loss".to_string(), lines, Axis::FromZero)]);
        let blue = Rgb(PALETTE[0]);
        // y from 0 up to 12 (ticks every 5 would be too few: 11 / 4 -> a step of 5, range 0..15).
        let row = |y: f64| (50.0 + 220.0 - y / 15.0 * 220.0) as u32;
        let on = |y: f64| (100..720).filter(|&x| *img.get_pixel(x, row(y)) == blue).count();
        let (solid, dashed) = (on(1.0), on(11.0));
        assert!(solid > 600, "the first line is solid ({solid} of 620 pixels)");
        assert!((250..450).contains(&dashed), "the eleventh is about half drawn ({dashed} of 620)");
        assert_eq!(line_style(10), (PALETTE[0], 9));
        assert_eq!(line_style(25).1, 3);
    }
}
