//! The one font of every chart: DejaVu Sans, embedded in the binary (its
//! licence: `evaluate/fonts/LICENSE-DejaVu.txt`). The PNG and the SVG place
//! glyphs by the same layout, so both show the same picture.

use super::figure::Anchor;
use ab_glyph::{Font, FontRef, GlyphId, OutlineCurve};
use std::sync::OnceLock;

static BYTES: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");

fn font() -> &'static FontRef<'static> {
    static FONT: OnceLock<FontRef<'static>> = OnceLock::new();
    // The bytes are part of the binary: a test parses them, so this cannot fail at run time.
    FONT.get_or_init(|| FontRef::try_from_slice(BYTES).expect("the embedded DejaVu Sans parses"))
}

/// Pixels per font unit at a font size of `size` pixels per em.
pub fn px_per_unit(size: f64) -> f64 {
    size / font().units_per_em().unwrap_or(2048.0) as f64
}

/// Glyphs of `text` at `size`: each glyph's id and its x offset in pixels
/// from the start, and the width of the whole. Characters the font lacks
/// show its box glyph; control characters are left out.
pub fn layout(text: &str, size: f64) -> (Vec<(GlyphId, f64)>, f64) {
    let (f, k) = (font(), px_per_unit(size));
    let mut caret = 0.0;
    let mut prev: Option<GlyphId> = None;
    let mut glyphs = Vec::new();
    for ch in text.chars().filter(|c| !c.is_control()) {
        let id = f.glyph_id(ch);
        if let Some(p) = prev {
            caret += k * f.kern_unscaled(p, id) as f64;
        }
        glyphs.push((id, caret));
        caret += k * f.h_advance_unscaled(id) as f64;
        prev = Some(id);
    }
    (glyphs, caret)
}

/// The glyphs of `text` at `size` placed so that `anchor` is at `x`: each
/// glyph's id and x, and the pixels per font unit to scale its outline by.
pub fn place(text: &str, size: f64, x: f64, anchor: Anchor) -> (Vec<(GlyphId, f64)>, f64) {
    let (glyphs, width) = layout(text, size);
    let start = match anchor {
        Anchor::Start => x,
        Anchor::Middle => x - width / 2.0,
        Anchor::End => x - width,
    };
    (glyphs.into_iter().map(|(id, dx)| (id, start + dx)).collect(), px_per_unit(size))
}

/// The width of `text` at `size`, in pixels.
pub fn width(text: &str, size: f64) -> f64 {
    layout(text, size).1
}

/// A glyph's outline in font units (y up); empty for a space.
pub fn outline(id: GlyphId) -> Vec<OutlineCurve> {
    font().outline(id).map(|o| o.curves).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_font_lays_out_text() {
        assert_eq!(font().units_per_em(), Some(2048.0));
        let (glyphs, w) = layout("epoch 10", 20.0);
        assert_eq!(glyphs.len(), 8);
        // DejaVu Sans is proportional: "i" is narrower than "m".
        assert!(width("iiii", 20.0) < width("mmmm", 20.0));
        assert!(
            (w - width("epoch 10", 20.0)).abs() < 1e-9 && w > 60.0 && w < 100.0,
            "{w}"
        );
        assert!(width("x", 40.0) > 1.99 * width("x", 20.0));
        assert!(
            !outline(glyphs[0].0).is_empty() && outline(glyphs[5].0).is_empty(),
            "e has an outline, a space none"
        );
        assert_eq!(
            layout("a\u{7}b", 12.0).0.len(),
            2,
            "control characters are left out"
        );
    }
}
