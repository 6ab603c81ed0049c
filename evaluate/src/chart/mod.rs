//! Charts: grouped bars (the evaluation's accuracies) and panels of lines
//! (training curves), laid out once as a [`Figure`] and written as a PNG
//! and an SVG beside it. Text is DejaVu Sans, embedded ([`font`]).

mod figure;
mod font;
mod raster;
mod svg;

pub use figure::{paths, Anchor, Colour, Figure, Shape, PNG_SCALE};
use mixco_model::run::EpochLog;

impl Figure {
    /// The figure as pixels, `scale` pixels per figure pixel.
    pub fn raster(&self, scale: f64) -> image::RgbImage {
        raster::raster(self, scale)
    }

    /// The figure as an SVG document.
    pub fn svg(&self) -> String {
        svg::svg(self)
    }
}

/// One bar series: a label and one value (percent) per group; `None` draws no bar.
pub struct Series {
    pub label: String,
    pub values: Vec<Option<f64>>,
}

// matplotlib's tab10: ten series before a colour repeats.
const PALETTE: [Colour; 10] = [
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
fn line_style(i: usize) -> (Colour, f64) {
    (
        PALETTE[i % PALETTE.len()],
        [0.0, 9.0, 3.0][(i / PALETTE.len()).min(2)],
    )
}

// Font sizes (pixels per em): the chart's title, panel titles, group names
// and legend entries, tick labels, and the values written above bars.
const TITLE: f64 = 18.0;
const LABEL: f64 = 14.0;
const TICK: f64 = 12.0;
const VALUE: f64 = 10.0;
const BLACK: Colour = [0, 0, 0];
const GREY: Colour = [80, 80, 80];
const GRID: Colour = [225, 225, 225];
/// A legend row's height and its colour swatch's side.
const ROW: f64 = 22.0;
const SWATCH: f64 = 14.0;

// The bar chart's geometry: the plot's left edge, top and height; bar and gap widths.
const BAR_LEFT: f64 = 70.0;
const BAR_TOP: f64 = 50.0;
const BAR_H: f64 = 400.0;
const BAR: f64 = 34.0;
const BAR_GAP: f64 = 40.0;

/// Bars of `series` for each of `groups`, on a 0-100% axis, with the values
/// written above the bars and a legend below.
pub fn bar_chart(title: &str, groups: &[String], series: &[Series]) -> Figure {
    let label_w = groups
        .iter()
        .map(|g| font::width(g, LABEL))
        .fold(0.0, f64::max);
    // Wide enough for the bars and for the longest group label.
    let group_w = (BAR * series.len().max(1) as f64 + BAR_GAP).max(label_w + 24.0);
    let legend_w = series
        .iter()
        .map(|s| font::width(&s.label, LABEL))
        .fold(0.0, f64::max)
        + SWATCH
        + 10.0;
    let width = (BAR_LEFT + group_w * groups.len().max(1) as f64 + 20.0)
        .max(font::width(title, TITLE) + 40.0)
        .max(BAR_LEFT + legend_w + 20.0)
        .ceil();
    let height = BAR_TOP + BAR_H + 44.0 + series.len() as f64 * ROW + 10.0;
    let mut fig = Figure::new(width, height);
    fig.text(20.0, 30.0, title, TITLE, BLACK, Anchor::Start);
    let y_of = |v: f64| BAR_TOP + BAR_H - v.clamp(0.0, 100.0) / 100.0 * BAR_H;
    for tick in (0..=100).step_by(20) {
        let y = y_of(tick as f64);
        fig.rect(BAR_LEFT, y, width - 10.0, y + 1.0, GRID);
        fig.text(
            BAR_LEFT - 8.0,
            y + 4.5,
            &tick.to_string(),
            TICK,
            GREY,
            Anchor::End,
        );
    }
    fig.rect(BAR_LEFT, BAR_TOP, BAR_LEFT + 2.0, BAR_TOP + BAR_H, BLACK);
    fig.rect(
        BAR_LEFT,
        BAR_TOP + BAR_H,
        width - 10.0,
        BAR_TOP + BAR_H + 2.0,
        BLACK,
    );
    let bars_w = BAR * series.len() as f64;
    for (g, name) in groups.iter().enumerate() {
        let x0 = BAR_LEFT + ((group_w - bars_w) / 2.0).floor() + g as f64 * group_w;
        for (s, ser) in series.iter().enumerate() {
            let Some(v) = ser.values.get(g).copied().flatten() else {
                continue;
            };
            let x = x0 + s as f64 * BAR;
            fig.rect(
                x + 2.0,
                y_of(v),
                x + BAR - 2.0,
                BAR_TOP + BAR_H,
                PALETTE[s % PALETTE.len()],
            );
            fig.text(
                x + BAR / 2.0,
                y_of(v) - 4.0,
                &format!("{v:.1}"),
                VALUE,
                [40, 40, 40],
                Anchor::Middle,
            );
        }
        fig.text(
            x0 + bars_w / 2.0,
            BAR_TOP + BAR_H + 22.0,
            name,
            LABEL,
            BLACK,
            Anchor::Middle,
        );
    }
    let labels: Vec<&str> = series.iter().map(|s| s.label.as_str()).collect();
    legend(&mut fig, BAR_LEFT, BAR_TOP + BAR_H + 40.0, &labels, |s| {
        (PALETTE[s % PALETTE.len()], 0.0)
    });
    fig
}

/// One legend entry per label, a row each from `top`: its colour as a
/// square, or as a stroke when its line is dashed.
fn legend(
    fig: &mut Figure,
    left: f64,
    top: f64,
    labels: &[&str],
    style: impl Fn(usize) -> (Colour, f64),
) {
    for (i, l) in labels.iter().enumerate() {
        let y = top + i as f64 * ROW;
        match style(i) {
            (c, 0.0) => fig.rect(left, y, left + SWATCH, y + SWATCH, c),
            (c, dash) => fig.line(
                vec![
                    (left - 6.0, y + SWATCH / 2.0),
                    (left + SWATCH + 4.0, y + SWATCH / 2.0),
                ],
                c,
                3.0,
                dash,
            ),
        }
        fig.text(
            left + SWATCH + 10.0,
            y + SWATCH - 2.0,
            l,
            LABEL,
            BLACK,
            Anchor::Start,
        );
    }
}

/// One line: a label and its (x, y) points.
pub struct Line {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

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
    mantissas
        .iter()
        .map(|m| m * p)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * p)
}

/// Whole-number ticks for an integer axis (epochs): a step of 1, 2 or 5
/// times a power of ten, at most about 10 ticks, on multiples of the step.
fn integer_ticks(x0: f64, x1: f64) -> Vec<f64> {
    let step = step_of(((x1 - x0) / 10.0).max(1.0), &[1.0, 2.0, 5.0]);
    let first = (x0 / step).ceil() * step;
    (0..=20)
        .map(|i| first + i as f64 * step)
        .take_while(|x| *x <= x1 + 1e-9)
        .collect()
}

// The line panels' geometry: figure width, plot margins, the first panel's
// top, each panel's height and the space below it (tick labels, next title).
const WIDTH: f64 = 760.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 70.0;
const PANEL_H: f64 = 220.0;
const PANEL_GAP: f64 = 70.0;

/// Panels of lines sharing an x axis, drawn one below the other, each with
/// its own title and y axis; line `i` has the same colour in every panel
/// and appears once in the legend (lines past the tenth are dashed, past
/// the twentieth dotted).
pub fn line_panels(title: &str, x_label: &str, panels: &[(String, Vec<Line>, Axis)]) -> Figure {
    let labels: Vec<&str> = panels.iter().flat_map(|(_, ls, _)| ls.iter().map(|l| l.label.as_str())).fold(Vec::new(), |mut v, l| {
        if !v.contains(&l) {
            v.push(l);
        }
        v
    });
    let legend_top = TOP + panels.len() as f64 * (PANEL_H + PANEL_GAP);
    let mut fig = Figure::new(WIDTH, legend_top + labels.len() as f64 * ROW + 10.0);
    fig.text(20.0, 30.0, title, TITLE, BLACK, Anchor::Start);
    let xs = x_range(panels);
    for (p, (name, lines, axis)) in panels.iter().enumerate() {
        let py = TOP + p as f64 * (PANEL_H + PANEL_GAP);
        let Some(ys) = y_range(lines, *axis) else { continue };
        fig.text(LEFT, py - 10.0, name, LABEL, BLACK, Anchor::Start);
        panel(&mut fig, py, xs, ys, lines, |label| line_style(labels.iter().position(|l| *l == label).unwrap_or(0)));
        if p + 1 == panels.len() {
            fig.text(WIDTH / 2.0, py + PANEL_H + 38.0, x_label, LABEL, BLACK, Anchor::Middle);
        }
    }
    legend(&mut fig, LEFT, legend_top, &labels, line_style);
    fig
}

/// The x range of every panel's points; around the one x there is, or 0..1 without points.
fn x_range(panels: &[(String, Vec<Line>, Axis)]) -> (f64, f64) {
    let xs = panels.iter().flat_map(|(_, ls, _)| ls.iter().flat_map(|l| l.points.iter().map(|p| p.0)));
    let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
    match (x0.is_finite(), x1 > x0) {
        (true, true) => (x0, x1),
        // One epoch: a range around it (the fixed 0..1 once put a far epoch off the image).
        (true, false) => (x0 - 0.5, x0 + 0.5),
        _ => (0.0, 1.0),
    }
}

/// One panel whose top is at `py`: grid, y ticks (`ys`: from, to, step),
/// axes, whole-number x ticks, and the lines with a marker at each point.
fn panel(fig: &mut Figure, py: f64, (x0, x1): (f64, f64), (y0, y1, step): (f64, f64, f64), lines: &[Line], style: impl Fn(&str) -> (Colour, f64)) {
    // Inside the figure whatever the values (pixel arithmetic once overflowed).
    let height = fig.height;
    // 2% of the range inside each end, so the first and last markers sit clear of the axes.
    let (m0, m1) = (x0 - 0.02 * (x1 - x0), x1 + 0.02 * (x1 - x0));
    let to_px = |x: f64, y: f64| {
        let fx = LEFT + (x - m0) / (m1 - m0) * (WIDTH - LEFT - RIGHT);
        let fy = py + PANEL_H - (y - y0) / (y1 - y0) * PANEL_H;
        (fx.clamp(0.0, WIDTH - 5.0), fy.clamp(0.0, height - 5.0))
    };
    let decimals = (0..4).find(|d| ((step * 10f64.powi(*d)) - (step * 10f64.powi(*d)).round()).abs() < 1e-6).unwrap_or(4) as usize;
    for i in 0..=(((y1 - y0) / step).round() as usize).min(20) {
        let y = y0 + step * i as f64;
        let fy = to_px(x0, y).1.round();
        fig.rect(LEFT, fy, WIDTH - RIGHT, fy + 1.0, GRID);
        fig.text(LEFT - 8.0, fy + 4.5, &format!("{y:.decimals$}"), TICK, GREY, Anchor::End);
    }
    fig.rect(LEFT, py, LEFT + 2.0, py + PANEL_H, BLACK);
    fig.rect(LEFT, py + PANEL_H, WIDTH - RIGHT, py + PANEL_H + 2.0, BLACK);
    for x in integer_ticks(x0, x1) {
        fig.text(to_px(x, y0).0, py + PANEL_H + 18.0, &format!("{x:.0}"), TICK, GREY, Anchor::Middle);
    }
    for line in lines {
        let (c, dash) = style(&line.label);
        let pts: Vec<(f64, f64)> = line.points.iter().filter(|p| p.1.is_finite()).map(|&(x, y)| to_px(x, y)).collect();
        fig.line(pts.clone(), c, 3.0, dash);
        for (fx, fy) in pts {
            fig.rect(fx - 3.5, fy - 3.5, fx + 3.5, fy + 3.5, c);
        }
    }
}

/// A panel's y range and tick step: the axis's own range widened by the
/// data (so that noise stays flat), rounded out to a nice step (1, 2, 2.5
/// or 5 x 10^k) so the ticks read as numbers; `None` without finite values.
fn y_range(lines: &[Line], axis: Axis) -> Option<(f64, f64, f64)> {
    let ys = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .filter(|y| y.is_finite());
    let (y0, y1) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
        (a.min(y), b.max(y))
    });
    if !(y0.is_finite() && y1.is_finite()) {
        return None;
    }
    let (y0, y1) = match axis {
        Axis::Fixed(lo, hi) => (y0.min(lo), y1.max(hi)),
        Axis::FromZero => (y0.min(0.0), y1),
    };
    let step = nice_step(((y1 - y0) / 4.0).max(1e-3 * y1.abs().max(1.0)));
    let (y0, y1) = ((y0 / step).floor() * step, (y1 / step).ceil() * step);
    Some((y0, y1.max(y0 + step), step))
}

/// A log line's value for a curve.
type Field = fn(&EpochLog) -> Option<f64>;

/// The panels of training curves: (title, log field, scale, drawn even when no run logged it).
const CURVES: [(&str, Field, f64, bool, Axis); 4] = [
    (
        "contrastive loss",
        |l| l.loss_contrastive,
        1.0,
        true,
        Axis::FromZero,
    ),
    ("MixCo loss", |l| l.loss_mix, 1.0, false, Axis::FromZero),
    (
        "kNN top-1 (%)",
        |l| l.knn_top1,
        100.0,
        true,
        Axis::Fixed(0.0, 100.0),
    ),
    (
        "mean cosine between images",
        |l| l.query_cosine,
        1.0,
        false,
        Axis::Fixed(0.0, 1.0),
    ),
];

/// Whether a run's log holds anything [`training_curves`] draws.
pub fn has_curves(log: &[EpochLog]) -> bool {
    CURVES
        .iter()
        .any(|(_, field, _, always, _)| *always && log.iter().any(|l| field(l).is_some()))
}

/// Training curves of `runs` (a label and its `log.jsonl` each), one colour
/// per run: the contrastive loss, the MixCo loss (when any run has one), the
/// kNN monitor and the collapse monitor (when logged), per epoch. What the
/// trainer draws into `curves.png` and `mixco plot` for several runs.
pub fn training_curves(title: &str, runs: &[(String, Vec<EpochLog>)]) -> Figure {
    let panels: Vec<(String, Vec<Line>, Axis)> = CURVES
        .iter()
        .filter_map(|(name, field, scale, always, axis)| {
            let lines = runs
                .iter()
                .map(|(label, log)| Line {
                    label: label.clone(),
                    points: log
                        .iter()
                        .filter_map(|l| field(l).map(|v| (l.epoch as f64, scale * v)))
                        .collect(),
                })
                .filter(|l| *always || !l.points.is_empty())
                .collect::<Vec<_>>();
            (*always || !lines.is_empty()).then(|| (name.to_string(), lines, *axis))
        })
        .collect();
    line_panels(title, "epoch", &panels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn bars_have_the_right_heights_and_colours() {
        let groups = vec!["a".to_string(), "b".to_string()];
        let series = vec![
            Series {
                label: "m1".into(),
                values: vec![Some(50.0), Some(100.0)],
            },
            Series {
                label: "m2".into(),
                values: vec![Some(25.0), None],
            },
        ];
        let img = bar_chart("t", &groups, &series).raster(1.0);
        // Plot area: top 50, height 400; group 0 starts at 70 + 20; bars 34 px wide.
        let (top, h) = (50u32, 400u32);
        let blue = Rgb(PALETTE[0]);
        let orange = Rgb(PALETTE[1]);
        let x_m1 = 70 + 20 + 17;
        let x_m2 = x_m1 + 34;
        assert_eq!(*img.get_pixel(x_m1, top + h - 1), blue);
        assert_eq!(
            *img.get_pixel(x_m1, top + h / 2 + 1),
            blue,
            "50% reaches half way"
        );
        assert_ne!(
            *img.get_pixel(x_m1, top + h / 2 - 2),
            blue,
            "and no further"
        );
        assert_eq!(*img.get_pixel(x_m2, top + 3 * h / 4 + 1), orange);
        assert_ne!(*img.get_pixel(x_m2, top + 3 * h / 4 - 2), orange);
        // The missing value draws nothing in group 1's second slot.
        let group_w = 34 * 2 + 40;
        let x_missing = x_m2 + group_w;
        assert!((top..top + h).all(|y| *img.get_pixel(x_missing, y) != orange));
        let png = bar_chart("t", &groups, &series).png();
        assert_eq!(&png[1..4], b"PNG");
        let back = image::load_from_memory(&png).unwrap();
        assert_eq!(
            back.width(),
            2 * img.width(),
            "the PNG is drawn at twice the layout"
        );
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
        assert_eq!(
            integer_ticks(0.0, 12.0),
            [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0]
        );
        assert_eq!(integer_ticks(1.0, 5.0), [1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(integer_ticks(3.5, 4.5), [4.0]);
        assert_eq!(integer_ticks(0.0, 1000.0).len(), 11);
        assert!(integer_ticks(0.0, 37.0)
            .iter()
            .all(|x| x.fract() == 0.0 && x % 5.0 == 0.0));
    }

    /// Issue 29, group 16: a log with epoch u64::MAX (alone, or beside
    /// small ones) overflowed the pixel arithmetic of `mixco plot`.
    #[test]
    fn extreme_epochs_stay_inside_the_image() {
        let far = u64::MAX as f64;
        for points in [
            vec![(far, 1.0)],
            vec![(0.0, 0.0), (far, 1.0)],
            vec![(0.0, f64::MAX), (1.0, -f64::MAX)],
        ] {
            let panels = vec![(
                "loss".to_string(),
                vec![Line {
                    label: "a".into(),
                    points,
                }],
                Axis::FromZero,
            )];
            let img = line_panels("t", "epoch", &panels).raster(1.0);
            assert!(img.width() > 0);
        }
    }

    #[test]
    fn lines_pass_through_their_points() {
        let panels = vec![(
            "loss".to_string(),
            vec![Line {
                label: "a".into(),
                points: vec![(0.0, 0.0), (2.0, 1.0)],
            }],
            Axis::FromZero,
        )];
        let img = line_panels("t", "epoch", &panels).raster(1.0);
        // x from 90 to 730, y from 0 at 70 + 220 (bottom) up to 1 (ticks every 0.25).
        let blue = Rgb(PALETTE[0]);
        let (x_mid, y_mid) = (90.0 + 320.0, 70.0 + 220.0 - 0.5 * 220.0);
        assert_eq!(
            *img.get_pixel(x_mid as u32, y_mid as u32),
            blue,
            "the segment's middle"
        );
        assert_ne!(*img.get_pixel(x_mid as u32, (y_mid - 30.0) as u32), blue);
    }

    #[test]
    fn lines_past_the_tenth_are_dashed_in_a_repeated_colour() {
        // Eleven flat lines at y = 1..11: the eleventh (y = 11) is blue like the first, but dashed.
        let lines = (0..11)
            .map(|k| Line {
                label: format!("l{k}"),
                points: vec![(0.0, k as f64 + 1.0), (1.0, k as f64 + 1.0)],
            })
            .collect();
        let img =
            line_panels("t", "epoch", &[("loss".to_string(), lines, Axis::FromZero)]).raster(1.0);
        let blue = Rgb(PALETTE[0]);
        // y from 0 up to 12 (ticks every 5 would be too few: 11 / 4 -> a step of 5, range 0..15).
        let row = |y: f64| (70.0 + 220.0 - y / 15.0 * 220.0) as u32;
        let on = |y: f64| {
            (110..710)
                .filter(|&x| *img.get_pixel(x, row(y)) == blue)
                .count()
        };
        let (solid, dashed) = (on(1.0), on(11.0));
        assert!(solid == 600, "the first line is solid ({solid} of 600 pixels)");
        assert!((240..360).contains(&dashed), "the eleventh is about half drawn ({dashed} of 600)");
        assert_eq!(line_style(10), (PALETTE[0], 9.0));
        assert_eq!(line_style(25).1, 3.0);
    }
}
