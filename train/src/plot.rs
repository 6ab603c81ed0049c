//! `curves.svg`: loss (total, contrastive, mix), kNN accuracy and the
//! collapse monitor (mean cosine between images) per epoch, drawn from `log.jsonl` with no plotting dependency.

use crate::trainer::{EpochLog, TrainError};
use std::fmt::Write;
use std::path::Path;

fn panel(svg: &mut String, x0: f64, title: &str, series: &[(&str, &str, Vec<(f64, f64)>)]) {
    let (w, h, pad) = (380.0, 260.0, 40.0);
    let pts: Vec<&(f64, f64)> = series.iter().flat_map(|s| s.2.iter()).collect();
    if pts.is_empty() {
        return;
    }
    let (mut xmin, mut xmax, mut ymin, mut ymax) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in pts.iter().map(|p| (p.0, p.1)) {
        xmin = xmin.min(x);
        xmax = xmax.max(x);
        ymin = ymin.min(y);
        ymax = ymax.max(y);
    }
    if xmax <= xmin {
        xmax = xmin + 1.0;
    }
    if ymax <= ymin {
        ymax = ymin + 1e-3;
    }
    let sx = |x: f64| x0 + pad + (x - xmin) / (xmax - xmin) * (w - 2.0 * pad);
    let sy = |y: f64| 30.0 + (h - pad) - (y - ymin) / (ymax - ymin) * (h - 2.0 * pad);
    let _ = write!(svg, r##"<text x="{}" y="20" font-size="14" text-anchor="middle">{title}</text>"##, x0 + w / 2.0);
    let _ = write!(svg, r##"<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#888"/>"##, x0 + pad, 30.0 + pad, w - 2.0 * pad, h - 2.0 * pad);
    for (v, anchor) in [(ymin, "end"), (ymax, "end")] {
        let _ = write!(svg, r##"<text x="{}" y="{}" font-size="10" text-anchor="{anchor}">{v:.3}</text>"##, x0 + pad - 4.0, sy(v) + 3.0);
    }
    for v in [xmin, xmax] {
        let _ = write!(svg, r##"<text x="{}" y="{}" font-size="10" text-anchor="middle">{v:.0}</text>"##, sx(v), 30.0 + h - pad + 14.0);
    }
    let _ = write!(svg, r##"<text x="{}" y="{}" font-size="10" text-anchor="middle">epoch</text>"##, x0 + w / 2.0, 30.0 + h - 8.0);
    for (i, (name, colour, s)) in series.iter().enumerate() {
        if s.is_empty() {
            continue;
        }
        let points: Vec<String> = s.iter().map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y))).collect();
        let _ = write!(svg, r##"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"##, points.join(" "));
        let _ = write!(svg, r##"<text x="{}" y="{}" font-size="11" fill="{colour}">{name}</text>"##, x0 + pad + 6.0, 30.0 + pad + 14.0 + 13.0 * i as f64);
    }
}

pub fn write_curves(log: &Path, out: &Path) -> Result<(), TrainError> {
    let rows = crate::trainer::read_log(log)?;
    let s = |f: fn(&EpochLog) -> Option<f64>| rows.iter().filter_map(|r| f(r).map(|v| (r.epoch as f64, v))).collect::<Vec<_>>();
    let cos = s(|r| r.query_cosine);
    let width = if cos.is_empty() { 760 } else { 1140 };
    let mut svg = format!(r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="300" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>"##);
    panel(&mut svg, 0.0, "loss", &[
        ("total", "#1f77b4", s(|r| r.loss)),
        ("contrastive", "#2ca02c", s(|r| r.loss_contrastive)),
        ("mix", "#d62728", s(|r| r.loss_mix)),
    ]);
    panel(&mut svg, 380.0, "kNN top-1 (test)", &[("kNN", "#9467bd", s(|r| r.knn_top1))]);
    panel(&mut svg, 760.0, "mean cosine between images", &[("queries", "#ff7f0e", cos)]);
    svg.push_str("</svg>\n");
    mixco_data::fsutil::write_atomic(out, svg.as_bytes())?;
    Ok(())
}
