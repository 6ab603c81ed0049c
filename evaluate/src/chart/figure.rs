//! A chart as a list of shapes in pixel coordinates (y down), drawn once
//! and rendered twice: as a PNG ([`super::raster`]) and as an SVG
//! ([`super::svg`]) for papers.

use std::path::{Path, PathBuf};

/// An sRGB colour.
pub type Colour = [u8; 3];

/// Where a text's x position is on it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

/// One drawn thing.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    /// A filled rectangle between two corners.
    Rect {
        x0: f64,
        y0: f64,
        x1: f64,
        y1: f64,
        colour: Colour,
    },
    /// A stroked line through `points`, `width` pixels wide; with `dash` > 0
    /// drawn `dash` pixels on, `dash` off along its length.
    Line {
        points: Vec<(f64, f64)>,
        colour: Colour,
        width: f64,
        dash: f64,
    },
    /// Text whose baseline starts (or is centred, or ends) at (x, y).
    Text {
        x: f64,
        y: f64,
        text: String,
        size: f64,
        colour: Colour,
        anchor: Anchor,
    },
}

/// A picture `width` x `height` pixels on white.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    pub width: f64,
    pub height: f64,
    pub shapes: Vec<Shape>,
}

/// PNG pixels per figure pixel: twice the layout, so that text and lines
/// stay sharp in print (the SVG scales freely).
pub const PNG_SCALE: f64 = 2.0;

impl Figure {
    pub fn new(width: f64, height: f64) -> Self {
        Figure {
            width,
            height,
            shapes: Vec::new(),
        }
    }

    pub fn rect(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, colour: Colour) {
        self.shapes.push(Shape::Rect {
            x0,
            y0,
            x1,
            y1,
            colour,
        });
    }

    pub fn line(&mut self, points: Vec<(f64, f64)>, colour: Colour, width: f64, dash: f64) {
        self.shapes.push(Shape::Line {
            points,
            colour,
            width,
            dash,
        });
    }

    pub fn text(&mut self, x: f64, y: f64, text: &str, size: f64, colour: Colour, anchor: Anchor) {
        self.shapes.push(Shape::Text {
            x,
            y,
            text: text.to_string(),
            size,
            colour,
            anchor,
        });
    }

    /// The PNG, at [`PNG_SCALE`].
    pub fn png(&self) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        self.raster(PNG_SCALE)
            .write_to(&mut out, image::ImageFormat::Png)
            .expect("PNG encoding into memory cannot fail");
        out.into_inner()
    }

    /// Writes the PNG and the SVG beside it (each atomically), returning
    /// both paths: `out` names either (`curves.png` or `curves.svg`), the
    /// other takes its stem.
    pub fn write(&self, out: &Path) -> mixco_data::Result<[PathBuf; 2]> {
        let [png, svg] = paths(out);
        mixco_data::fsutil::write_atomic(&png, &self.png())?;
        mixco_data::fsutil::write_atomic(&svg, self.svg().as_bytes())?;
        Ok([png, svg])
    }
}

/// The PNG and SVG a chart written to `out` lands in: `out` itself, and the
/// same name with the other extension (`x.png` -> `x.svg`; `x.svg` -> `x.png`;
/// any other name is the PNG).
pub fn paths(out: &Path) -> [PathBuf; 2] {
    let is_svg = out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"));
    if is_svg {
        [out.with_extension("png"), out.to_path_buf()]
    } else {
        [out.to_path_buf(), out.with_extension("svg")]
    }
}

/// The pieces of a line that are drawn: the whole polyline when `dash` is
/// 0, else its "on" stretches (the pattern runs on across corners, as an
/// SVG dash array does).
pub(super) fn dashes(points: &[(f64, f64)], dash: f64) -> Vec<Vec<(f64, f64)>> {
    if dash <= 0.0 || !dash.is_finite() {
        return vec![points.to_vec()];
    }
    let mut pieces = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    // Distance along the pattern (period 2 * dash); on while below `dash`.
    let mut phase = 0.0f64;
    for w in points.windows(2) {
        let (a, b) = (w[0], w[1]);
        // Not f64::hypot: glibc's hypot carries a 2.35 symbol version, which would raise the wheels' manylinux tag.
        let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
        let at = |t: f64| {
            if len > 0.0 {
                (a.0 + (b.0 - a.0) * t / len, a.1 + (b.1 - a.1) * t / len)
            } else {
                a
            }
        };
        let mut t = 0.0;
        // At most a few thousand dashes per segment: the chart is a few thousand pixels wide.
        while t < len && pieces.len() < 100_000 {
            let on = phase < dash;
            let step = (if on { dash - phase } else { 2.0 * dash - phase }).min(len - t);
            if on {
                if current.is_empty() {
                    current.push(at(t));
                }
                current.push(at(t + step));
            } else if !current.is_empty() {
                pieces.push(std::mem::take(&mut current));
            }
            t += step;
            phase = (phase + step) % (2.0 * dash);
        }
    }
    if current.len() > 1 {
        pieces.push(current);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_png_and_svg_take_one_stem() {
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(
            paths(&p("r/curves.png")),
            [p("r/curves.png"), p("r/curves.svg")]
        );
        assert_eq!(paths(&p("r/c.SVG")), [p("r/c.png"), p("r/c.SVG")]);
        assert_eq!(paths(&p("chart")), [p("chart"), p("chart.svg")]);
    }

    #[test]
    fn dashes_alternate_along_the_length() {
        let pieces = dashes(&[(0.0, 0.0), (10.0, 0.0), (10.0, 10.0)], 3.0);
        // On 0-3, off 3-6, on 6-9, off 9-12 (turning the corner at 10), on 12-15, off, on 18-20.
        let lens: Vec<f64> = pieces
            .iter()
            .map(|p| {
                p.windows(2)
                    .map(|w| (w[1].0 - w[0].0).hypot(w[1].1 - w[0].1))
                    .sum()
            })
            .collect();
        assert_eq!(lens, [3.0, 3.0, 3.0, 2.0]);
        assert_eq!(pieces[2], [(10.0, 2.0), (10.0, 5.0)]);
        assert_eq!(dashes(&[(0.0, 0.0), (1.0, 1.0)], 0.0).len(), 1);
    }
}
