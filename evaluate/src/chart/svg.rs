//! A [`Figure`] as SVG 1.1. Text is drawn as the font's own outlines (each
//! glyph defined once and placed with `<use>`, as matplotlib writes SVG), so
//! the file looks the same wherever it is opened, with or without DejaVu
//! Sans installed; each text's string stays in its group's `aria-label`, so
//! it can be searched and read by screen readers.

use super::figure::{Figure, Shape};
use super::font;
use ab_glyph::OutlineCurve;
use std::collections::BTreeMap;
use std::fmt::Write;

/// `figure` as an SVG document.
pub fn svg(figure: &Figure) -> String {
    let (w, h) = (num(figure.width), num(figure.height));
    let mut body = String::new();
    let mut defs = BTreeMap::new();
    for shape in &figure.shapes {
        match shape {
            Shape::Rect {
                x0,
                y0,
                x1,
                y1,
                colour,
            } => {
                let _ = writeln!(
                    body,
                    r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{}"/>"#,
                    num(x0.min(*x1)),
                    num(y0.min(*y1)),
                    num((x1 - x0).abs()),
                    num((y1 - y0).abs()),
                    hex(*colour)
                );
            }
            Shape::Line {
                points,
                colour,
                width,
                dash,
            } => {
                let pts: Vec<String> = points
                    .iter()
                    .map(|(x, y)| format!("{},{}", num(*x), num(*y)))
                    .collect();
                let dash = if *dash > 0.0 {
                    format!(r#" stroke-dasharray="{0} {0}""#, num(*dash))
                } else {
                    String::new()
                };
                let _ = writeln!(
                    body,
                    r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="{}"{dash}/>"#,
                    pts.join(" "),
                    hex(*colour),
                    num(*width)
                );
            }
            Shape::Text {
                x,
                y,
                text,
                size,
                colour,
                anchor,
            } => {
                let (glyphs, k) = font::place(text, *size, *x, *anchor);
                let _ = writeln!(
                    body,
                    r#"<g aria-label="{}" fill="{}">"#,
                    escape(text),
                    hex(*colour)
                );
                for (id, gx) in glyphs {
                    // Each glyph's outline once: its path data, empty for a space (no <use>).
                    if defs.entry(id.0).or_insert_with(|| path(&font::outline(id))).is_empty() {
                        continue;
                    }
                    let _ = writeln!(
                        body,
                        r##"<use xlink:href="#g{}" transform="translate({} {}) scale({} {})"/>"##,
                        id.0,
                        num(gx),
                        num(*y),
                        num(k),
                        num(-k)
                    );
                }
                body.push_str("</g>\n");
            }
        }
    }
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" version=\"1.1\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">\n"
    );
    out += "<!-- written by mixco; text in DejaVu Sans (Bitstream Vera licence), as outlines -->\n<defs>\n";
    for (id, d) in defs.iter().filter(|(_, d)| !d.is_empty()) {
        let _ = writeln!(out, r#"<path id="g{id}" d="{d}"/>"#);
    }
    out += "</defs>\n";
    let _ = writeln!(out, r##"<rect width="{w}" height="{h}" fill="#ffffff"/>"##);
    out += &body;
    out += "</svg>\n";
    out
}

/// A glyph outline (font units) as path data: a move wherever a curve does
/// not start where the last one ended (a new contour).
fn path(curves: &[OutlineCurve]) -> String {
    let mut d = String::new();
    let mut at = None;
    for c in curves {
        let (start, end, cmd) = match *c {
            OutlineCurve::Line(a, b) => (a, b, format!("L{} {}", num(b.x as f64), num(b.y as f64))),
            OutlineCurve::Quad(a, b, c) => (
                a,
                c,
                format!(
                    "Q{} {} {} {}",
                    num(b.x as f64),
                    num(b.y as f64),
                    num(c.x as f64),
                    num(c.y as f64)
                ),
            ),
            OutlineCurve::Cubic(a, b, c, e) => (
                a,
                e,
                format!(
                    "C{} {} {} {} {} {}",
                    num(b.x as f64),
                    num(b.y as f64),
                    num(c.x as f64),
                    num(c.y as f64),
                    num(e.x as f64),
                    num(e.y as f64)
                ),
            ),
        };
        if at != Some(start) {
            let _ = write!(d, "M{} {}", num(start.x as f64), num(start.y as f64));
        }
        d += &cmd;
        at = Some(end);
    }
    d
}

/// A coordinate with at most three decimals and no trailing zeros.
fn num(v: f64) -> String {
    let v = if v.is_finite() {
        v.clamp(-1e9, 1e9)
    } else {
        0.0
    };
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

fn hex(c: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// Text for an attribute: markup characters escaped, and characters XML
/// 1.0 forbids (controls) replaced, so any run name gives a valid file.
fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".into(),
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '"' => "&quot;".into(),
            '\'' => "&apos;".into(),
            c if c.is_control() || matches!(c, '\u{FFFE}' | '\u{FFFF}') => "\u{FFFD}".into(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::figure::Anchor;

    #[test]
    fn numbers_are_short_and_finite() {
        assert_eq!(num(1.0), "1");
        assert_eq!(num(0.12345), "0.123");
        assert_eq!(num(-0.0001), "0");
        assert_eq!(num(f64::NAN), "0");
        assert_eq!(num(1e300), "1000000000");
    }

    #[test]
    fn shapes_and_text_are_written() {
        let mut f = Figure::new(100.0, 50.0);
        f.rect(10.0, 20.0, 5.0, 30.0, [255, 0, 0]);
        f.line(vec![(0.0, 1.0), (2.5, 3.0)], [0, 0, 255], 3.0, 9.0);
        f.text(
            50.0,
            40.0,
            "a<b & \"c\"\u{1}",
            12.0,
            [0, 0, 0],
            Anchor::Middle,
        );
        let s = svg(&f);
        assert!(
            s.contains(r##"<rect x="5" y="20" width="5" height="10" fill="#ff0000"/>"##),
            "{s}"
        );
        assert!(s.contains(r##"<polyline points="0,1 2.5,3" fill="none" stroke="#0000ff" stroke-width="3" stroke-dasharray="9 9"/>"##));
        assert!(s.contains("aria-label=\"a&lt;b &amp; &quot;c&quot;\u{FFFD}\""));
        // Five glyphs with outlines (a < b & " c "; one " reused): each defined once, used once per occurrence.
        assert_eq!(s.matches("<use ").count(), 7);
        assert_eq!(s.matches("<path id=").count(), 6);
        assert!(s.starts_with("<?xml") && s.ends_with("</svg>\n"));
    }
}
