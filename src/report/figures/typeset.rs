//! Text for the figures, measured and placed with the embedded font.
//!
//! plotters' own ab_glyph text drops each glyph's left side bearing and
//! truncates the pen position per glyph, so PNG labels get uneven letter
//! gaps ("m imic"), and it scales fonts by line height rather than em size,
//! so text comes out about 15% smaller than its nominal size (and than the
//! same text in SVG). [`Typeset`] wraps a backend: it measures every text
//! with the embedded font at its em size (which both backends then use for
//! layout) and, for bitmaps, rasterises glyphs itself with kerning and
//! sub-pixel positions. SVG keeps its `<text>` elements.

use ab_glyph::{point, Font, FontRef, GlyphId, PxScale};
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};
use std::sync::OnceLock;

/// Roboto Regular (Apache-2.0, see `assets/fonts/LICENSE-Roboto.txt`).
pub static ROBOTO: &[u8] = include_bytes!("../../../assets/fonts/Roboto-Regular.ttf");

/// The parsed embedded font (`None` if the file is not a font, which a unit test rules out).
fn font() -> Option<&'static FontRef<'static>> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(ROBOTO).ok())
        .as_ref()
}

/// A line of text laid out at an em size in pixels.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Each glyph and its pen x position.
    pub glyphs: Vec<(GlyphId, f32)>,
    /// Advance width of the whole line.
    pub width: f32,
    /// Distance from the top of the line box to the baseline.
    pub ascent: f32,
    /// Height of the line box (ascent - descent).
    pub height: f32,
    /// Scale to outline glyphs at.
    pub scale: PxScale,
}

impl Layout {
    /// Lays out `text` at `em` pixels per em.
    pub fn new(font: &FontRef<'_>, text: &str, em: f32) -> Self {
        let units = font.units_per_em().unwrap_or(1000.0);
        let k = em / units;
        let mut glyphs = Vec::with_capacity(text.len());
        let mut pen = 0.0;
        let mut previous: Option<GlyphId> = None;
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = previous {
                pen += font.kern_unscaled(p, id) * k;
            }
            glyphs.push((id, pen));
            pen += font.h_advance_unscaled(id) * k;
            previous = Some(id);
        }
        let ascent = font.ascent_unscaled() * k;
        let height = (font.ascent_unscaled() - font.descent_unscaled()) * k;
        Self {
            glyphs,
            width: pen,
            ascent,
            height,
            scale: PxScale::from(font.height_unscaled() * k),
        }
    }
}

/// A backend whose text is measured (and, if `raster`, drawn) with the embedded font.
pub struct Typeset<B> {
    inner: B,
    raster: bool,
}

impl<B: DrawingBackend> Typeset<B> {
    /// Wraps a bitmap backend: text is rasterised here.
    pub fn raster(inner: B) -> Self {
        Self {
            inner,
            raster: true,
        }
    }

    /// Wraps a vector backend: text stays text, only its measurement changes.
    pub fn vector(inner: B) -> Self {
        Self {
            inner,
            raster: false,
        }
    }

    fn draw_glyphs<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        let color = style.color();
        let Some(font) = font() else {
            return self.inner.draw_text(text, style, pos);
        };
        if color.alpha == 0.0 {
            return Ok(());
        }
        let layout = Layout::new(font, text, style.size() as f32);
        let dx = match style.anchor().h_pos {
            HPos::Left => 0.0,
            HPos::Center => -layout.width / 2.0,
            HPos::Right => -layout.width,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0.0,
            VPos::Center => -layout.height / 2.0,
            VPos::Bottom => -layout.height,
        };
        let transform = style.transform();
        for &(id, x) in &layout.glyphs {
            let glyph = id.with_scale_and_position(layout.scale, point(x + dx, layout.ascent + dy));
            let Some(outline) = font.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outline.px_bounds();
            let mut result = Ok(());
            outline.draw(|gx, gy, coverage| {
                if result.is_err() || coverage <= 0.0 {
                    return;
                }
                let (x, y) = transform.transform(
                    bounds.min.x as i32 + gx as i32,
                    bounds.min.y as i32 + gy as i32,
                );
                let pixel = BackendColor {
                    alpha: color.alpha * f64::from(coverage.min(1.0)),
                    rgb: color.rgb,
                };
                result = self.inner.draw_pixel((pos.0 + x, pos.1 + y), pixel);
            });
            result?;
        }
        Ok(())
    }
}

impl<B: DrawingBackend> DrawingBackend for Typeset<B> {
    type ErrorType = B::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.fill_polygon(vert, style)
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        if self.raster {
            self.draw_glyphs(text, style, pos)
        } else {
            self.inner.draw_text(text, style, pos)
        }
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<B::ErrorType>> {
        match font() {
            Some(font) => {
                let layout = Layout::new(font, text, style.size() as f32);
                Ok((layout.width.ceil() as u32, layout.height.ceil() as u32))
            }
            None => self.inner.estimate_text_size(text, style),
        }
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.blit_bitmap(pos, size, src)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_font_parses_and_measures_by_em() {
        let font = font().expect("assets/fonts/Roboto-Regular.ttf parses");
        let one = Layout::new(font, "mimic", 20.0);
        let two = Layout::new(font, "mimic", 40.0);
        assert!((two.width - 2.0 * one.width).abs() < 1e-3);
        // Roboto's line box is about 1.17 em; lowercase is about half an em wide per letter.
        assert!(one.height > 20.0 && one.height < 25.0, "{}", one.height);
        assert!(one.width > 40.0 && one.width < 70.0, "{}", one.width);
        assert!(one.glyphs.windows(2).all(|w| w[1].1 > w[0].1));
    }
}
