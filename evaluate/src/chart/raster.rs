//! A [`Figure`] as pixels: every shape is a filled outline (a rectangle, a
//! stroke's quadrilaterals, a glyph's curves) whose coverage, computed by
//! `ab_glyph_rasterizer`, blends its colour into the image. Edges are
//! antialiased; a pixel inside a shape takes its colour exactly.

use super::figure::{dashes, Figure, Shape};
use super::font;
use ab_glyph::OutlineCurve;
use ab_glyph_rasterizer::{point, Point, Rasterizer};
use image::{Rgb, RgbImage};

/// One piece of an outline, in image pixels.
#[derive(Clone, Copy)]
enum Curve {
    Line(Point, Point),
    Quad(Point, Point, Point),
    Cubic(Point, Point, Point, Point),
}

impl Curve {
    fn points(&self) -> Vec<Point> {
        match *self {
            Curve::Line(a, b) => vec![a, b],
            Curve::Quad(a, b, c) => vec![a, b, c],
            Curve::Cubic(a, b, c, d) => vec![a, b, c, d],
        }
    }

    fn map(&self, f: impl Fn(Point) -> Point) -> Curve {
        match *self {
            Curve::Line(a, b) => Curve::Line(f(a), f(b)),
            Curve::Quad(a, b, c) => Curve::Quad(f(a), f(b), f(c)),
            Curve::Cubic(a, b, c, d) => Curve::Cubic(f(a), f(b), f(c), f(d)),
        }
    }
}

/// The most pixels a chart is drawn with (as many as the largest image
/// `mixco` decodes): a figure that would need more is drawn smaller.
pub const MAX_PIXELS: f64 = 64.0 * 1024.0 * 1024.0;

/// `figure` drawn at `scale` image pixels per figure pixel (less where
/// that would exceed [`MAX_PIXELS`]).
pub fn raster(figure: &Figure, scale: f64) -> RgbImage {
    let area = (figure.width * figure.height).max(1.0);
    let scale = if area * scale * scale > MAX_PIXELS { (MAX_PIXELS / area).sqrt() } else { scale };
    let dim = |v: f64| (v * scale).ceil().clamp(1.0, 65_535.0) as u32;
    let mut img = RgbImage::from_pixel(dim(figure.width), dim(figure.height), Rgb([255, 255, 255]));
    let p = |x: f64, y: f64| point((x * scale) as f32, (y * scale) as f32);
    for shape in &figure.shapes {
        match shape {
            Shape::Rect {
                x0,
                y0,
                x1,
                y1,
                colour,
            } => {
                let c = [p(*x0, *y0), p(*x1, *y0), p(*x1, *y1), p(*x0, *y1)];
                fill(&mut img, &polygon(&c), *colour);
            }
            Shape::Line {
                points,
                colour,
                width,
                dash,
            } => {
                for piece in dashes(points, *dash) {
                    for w in piece.windows(2) {
                        fill(
                            &mut img,
                            &polygon(&stroke(
                                p(w[0].0, w[0].1),
                                p(w[1].0, w[1].1),
                                (width * scale) as f32,
                            )),
                            *colour,
                        );
                    }
                }
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
                for (id, gx) in glyphs {
                    // Font units are y up; the image is y down.
                    let at = |q: Point| p(gx + k * q.x as f64, y - k * q.y as f64);
                    let curves: Vec<Curve> = font::outline(id)
                        .iter()
                        .map(|c| from_font(c).map(at))
                        .collect();
                    fill(&mut img, &curves, *colour);
                }
            }
        }
    }
    img
}

fn from_font(c: &OutlineCurve) -> Curve {
    match *c {
        OutlineCurve::Line(a, b) => Curve::Line(a, b),
        OutlineCurve::Quad(a, b, c) => Curve::Quad(a, b, c),
        OutlineCurve::Cubic(a, b, c, d) => Curve::Cubic(a, b, c, d),
    }
}

/// The closed outline through `corners`.
fn polygon(corners: &[Point]) -> Vec<Curve> {
    (0..corners.len())
        .map(|i| Curve::Line(corners[i], corners[(i + 1) % corners.len()]))
        .collect()
}

/// The quadrilateral a segment from `a` to `b`, `width` wide, covers (butt ends).
fn stroke(a: Point, b: Point, width: f32) -> [Point; 4] {
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    let len = (dx * dx + dy * dy).sqrt().max(1e-6);
    let (nx, ny) = (-dy / len * width / 2.0, dx / len * width / 2.0);
    [
        point(a.x + nx, a.y + ny),
        point(b.x + nx, b.y + ny),
        point(b.x - nx, b.y - ny),
        point(a.x - nx, a.y - ny),
    ]
}

/// Fills the closed outline `curves` with `colour`. The rasteriser covers
/// the outline's bounds within the image; points outside are moved to its
/// edge (coverage inside the image is unchanged, and no shape, however far
/// off, sizes an allocation beyond the image).
fn fill(img: &mut RgbImage, curves: &[Curve], colour: [u8; 3]) {
    let pts: Vec<Point> = curves.iter().flat_map(|c| c.points()).collect();
    if pts.is_empty() || pts.iter().any(|q| !(q.x.is_finite() && q.y.is_finite())) {
        return;
    }
    let (w, h) = (img.width() as f32, img.height() as f32);
    let lo = |f: fn(&Point) -> f32, max: f32| {
        pts.iter()
            .map(f)
            .fold(f32::INFINITY, f32::min)
            .floor()
            .clamp(0.0, max)
    };
    let hi = |f: fn(&Point) -> f32, max: f32| {
        pts.iter()
            .map(f)
            .fold(f32::NEG_INFINITY, f32::max)
            .ceil()
            .clamp(0.0, max)
    };
    let (x0, y0, x1, y1) = (
        lo(|q| q.x, w),
        lo(|q| q.y, h),
        hi(|q| q.x, w),
        hi(|q| q.y, h),
    );
    if x1 <= x0 || y1 <= y0 {
        return;
    }
    let mut r = Rasterizer::new((x1 - x0) as usize, (y1 - y0) as usize);
    let local = |q: Point| point(q.x.clamp(x0, x1) - x0, q.y.clamp(y0, y1) - y0);
    for c in curves {
        match c.map(local) {
            Curve::Line(a, b) => r.draw_line(a, b),
            Curve::Quad(a, b, c) => r.draw_quad(a, b, c),
            Curve::Cubic(a, b, c, d) => r.draw_cubic(a, b, c, d),
        }
    }
    r.for_each_pixel_2d(|x, y, alpha| {
        let a = alpha.min(1.0);
        if a > 0.0 {
            let px = img.get_pixel_mut(x + x0 as u32, y + y0 as u32);
            for (old, new) in px.0.iter_mut().zip(colour) {
                *old = (*old as f32 * (1.0 - a) + new as f32 * a).round() as u8;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::figure::Anchor;

    #[test]
    fn shapes_cover_their_pixels() {
        let mut f = Figure::new(40.0, 30.0);
        f.rect(2.0, 3.0, 12.0, 8.0, [255, 0, 0]);
        f.line(vec![(0.0, 20.0), (40.0, 20.0)], [0, 0, 255], 3.0, 0.0);
        f.rect(-1e30, 25.0, 1e30, 1e30, [0, 255, 0]);
        let img = raster(&f, 1.0);
        assert_eq!((img.width(), img.height()), (40, 30));
        assert_eq!(img.get_pixel(2, 3).0, [255, 0, 0]);
        assert_eq!(img.get_pixel(11, 7).0, [255, 0, 0]);
        assert_eq!(img.get_pixel(12, 7).0, [255, 255, 255]);
        assert_eq!(img.get_pixel(1, 3).0, [255, 255, 255]);
        assert_eq!(
            img.get_pixel(20, 19).0,
            [0, 0, 255],
            "a 3-pixel line from 18.5 to 21.5"
        );
        assert_eq!(img.get_pixel(20, 20).0, [0, 0, 255]);
        assert_ne!(img.get_pixel(20, 17).0, [0, 0, 255]);
        assert_eq!(
            img.get_pixel(39, 29).0,
            [0, 255, 0],
            "a huge rectangle is cut at the image"
        );
        // Twice the scale: the same rectangle twice as large.
        let big = raster(&f, 2.0);
        assert_eq!(big.get_pixel(23, 15).0, [255, 0, 0]);
        assert_eq!(big.get_pixel(24, 15).0, [255, 255, 255]);
    }

    /// A figure of a billion pixels (thousands of runs in one legend, say)
    /// is drawn within the limit, not allocated whole.
    #[test]
    fn huge_figures_are_drawn_smaller() {
        let mut f = Figure::new(40_000.0, 30_000.0);
        f.rect(0.0, 0.0, 20_000.0, 10.0, [255, 0, 0]);
        let img = raster(&f, 2.0);
        let px = img.width() as f64 * img.height() as f64;
        assert!(px <= MAX_PIXELS * 1.01 && px > 0.9 * MAX_PIXELS, "{}x{}", img.width(), img.height());
        assert_eq!(img.get_pixel(img.width() / 2 - 2, 1).0, [255, 0, 0]);
        assert_eq!(img.get_pixel(img.width() / 2 + 2, 1).0, [255, 255, 255]);
    }

    #[test]
    fn text_is_drawn_where_its_anchor_says() {
        let ink = |anchor| {
            let mut f = Figure::new(200.0, 40.0);
            f.text(100.0, 30.0, "MixCo 10", 20.0, [0, 0, 0], anchor);
            let img = raster(&f, 1.0);
            let cols: Vec<u32> = (0..200)
                .filter(|&x| (0..40).any(|y| img.get_pixel(x, y).0[0] < 128))
                .collect();
            (cols[0], *cols.last().unwrap())
        };
        let w = font::width("MixCo 10", 20.0);
        let (a, b) = ink(Anchor::Start);
        assert!(
            (100..=103).contains(&a) && (b as f64) < 100.0 + w + 1.0,
            "{a}..{b}, width {w}"
        );
        let (a, b) = ink(Anchor::End);
        assert!((a as f64) >= 100.0 - w - 1.0 && b <= 100, "{a}..{b}");
        let (a, b) = ink(Anchor::Middle);
        assert!(((a + b) as f64 / 2.0 - 100.0).abs() < 3.0, "{a}..{b}");
    }
}
