//! A picture of the synthetic world: a contact sheet with one row per patch
//! kind, each example shown at the generated size and enlarged.
//!
//! The examples are the first patches of each kind in the dataset's own order
//! (hard-labeled set first, then the pool), drawn by the same function that
//! writes the dataset's files, so the sheet shows patches the dataset holds.

use super::{plan, render_planned, slide_stains, SynthConfig, SynthError};
use crate::data::{PatchKind, Source};
use crate::report::figures::style::{register_fonts, FONT, INK};
use crate::report::figures::typeset::Typeset;
use image::RgbImage;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// File name of the contact sheet written beside every generated dataset.
pub const PREVIEW_FILE: &str = "preview.png";
/// Examples shown per kind.
pub const EXAMPLES_PER_KIND: usize = 5;
/// Side the enlarged copies are scaled up to, at least (nearest neighbour,
/// whole multiples of the generated size).
const ENLARGED_SIDE: u32 = 192;
/// Space around and between the parts of the sheet, in pixels.
const GAP: u32 = 6;
const MARGIN: u32 = 16;
/// Width of the column holding each row's kind name and description.
const LABEL_WIDTH: u32 = 250;
/// Height of the column titles.
const HEADER: u32 = 40;

/// Rows of the sheet, top to bottom: the positive, its mimic, then the other negatives.
const ROWS: [PatchKind; 5] = [
    PatchKind::Invasion,
    PatchKind::Mimic,
    PatchKind::EmptyVessel,
    PatchKind::TumourNest,
    PatchKind::Stroma,
];

/// What a row shows, in a few words.
fn description(kind: PatchKind) -> &'static str {
    match kind {
        PatchKind::Invasion => "tumour in a lined lumen (LI)",
        PatchKind::Mimic => "nest in a retraction cleft",
        PatchKind::EmptyVessel => "lined lumen, no tumour",
        PatchKind::TumourNest => "nest in stroma, no space",
        PatchKind::Stroma => "plain stroma",
    }
}

/// Integer scale of the enlarged copies.
fn enlargement(size: u32) -> u32 {
    ENLARGED_SIDE.div_ceil(size).max(1)
}

/// The examples of each row: up to [`EXAMPLES_PER_KIND`] patches per kind,
/// the first of that kind in the dataset.
fn examples(config: &SynthConfig) -> Result<Vec<Vec<RgbImage>>, SynthError> {
    let planned = plan(config)?;
    let hard_stains = slide_stains(config, Source::Hard);
    let pool_stains = slide_stains(config, Source::Weak);
    let style = config.scene_style();
    Ok(ROWS
        .iter()
        .map(|&kind| {
            planned
                .iter()
                .filter(|p| p.kind == kind)
                .take(EXAMPLES_PER_KIND)
                .map(|p| render_planned(config, &style, &hard_stains, &pool_stains, p))
                .collect()
        })
        .collect())
}

/// Draws the contact sheet of the dataset `config` describes. Patches larger
/// than [`ENLARGED_SIDE`] are drawn at that size (drawings scale, so they
/// look alike) and shown once, without an enlarged copy.
pub fn contact_sheet(config: &SynthConfig) -> Result<RgbImage, SynthError> {
    let shown = SynthConfig {
        size: config.size.min(ENLARGED_SIDE),
        ..config.clone()
    };
    let rows = examples(&shown)?;
    let size = shown.size;
    let scale = enlargement(size);
    let big = size * scale;
    let n = EXAMPLES_PER_KIND as u32;
    let native_x = MARGIN + LABEL_WIDTH;
    let enlarged_x = native_x + n * (size + GAP) + 3 * GAP;
    let width = if scale > 1 {
        enlarged_x + n * (big + GAP) - GAP + MARGIN
    } else {
        enlarged_x - 3 * GAP - GAP + MARGIN
    };
    let row_height = big.max(size) + 2 * GAP;
    let height = MARGIN + HEADER + ROWS.len() as u32 * row_height + MARGIN;
    let mut sheet = RgbImage::from_pixel(width, height, image::Rgb([255, 255, 255]));
    for (r, images) in rows.iter().enumerate() {
        let top = MARGIN + HEADER + r as u32 * row_height + GAP;
        for (i, patch) in images.iter().enumerate() {
            let i = i as u32;
            blit(&mut sheet, patch, native_x + i * (size + GAP), top, 1);
            if scale > 1 {
                blit(&mut sheet, patch, enlarged_x + i * (big + GAP), top, scale);
            }
        }
    }
    let heading = if config.size == size {
        format!("as generated ({size} px)")
    } else {
        format!("as generated ({} px), drawn at {size} px", config.size)
    };
    let columns = Columns {
        heading,
        native_x,
        enlarged: (scale > 1).then_some((scale, enlarged_x)),
    };
    label(&mut sheet, size, scale, &columns, row_height)?;
    Ok(sheet)
}

/// Copies `patch` into `sheet` at (`x`, `y`), each pixel as a `scale` x `scale` block.
fn blit(sheet: &mut RgbImage, patch: &RgbImage, x: u32, y: u32, scale: u32) {
    for (px, py, pixel) in patch.enumerate_pixels() {
        for dy in 0..scale {
            for dx in 0..scale {
                sheet.put_pixel(x + px * scale + dx, y + py * scale + dy, *pixel);
            }
        }
    }
}

/// The sheet's columns: the first one's title and place, and the enlarged
/// copies' scale and place (none when the patches are not enlarged).
struct Columns {
    heading: String,
    native_x: u32,
    enlarged: Option<(u32, u32)>,
}

/// Writes the column titles and each row's kind name onto the sheet.
fn label(
    sheet: &mut RgbImage,
    size: u32,
    scale: u32,
    columns: &Columns,
    row_height: u32,
) -> Result<(), SynthError> {
    let text_error = |message: String| SynthError::Preview { message };
    register_fonts().map_err(text_error)?;
    let (width, height) = sheet.dimensions();
    let area = Typeset::raster(BitMapBackend::with_buffer(sheet.as_mut(), (width, height)))
        .into_drawing_area();
    let title = TextStyle::from((FONT, 22).into_font()).color(&INK);
    let name = TextStyle::from((FONT, 24).into_font()).color(&INK);
    let note = TextStyle::from((FONT, 19).into_font()).color(&RGBColor(90, 90, 90));
    let draw = |text: &str, style: &TextStyle, x: u32, y: u32| {
        area.draw(&Text::new(
            text.to_string(),
            (x as i32, y as i32),
            style.clone(),
        ))
        .map_err(|e| text_error(e.to_string()))
    };
    draw(&columns.heading, &title, columns.native_x, MARGIN + 8)?;
    if let Some((scale, enlarged_x)) = columns.enlarged {
        draw(
            &format!("enlarged {scale}x"),
            &title,
            enlarged_x,
            MARGIN + 8,
        )?;
    }
    for (r, &kind) in ROWS.iter().enumerate() {
        let top = MARGIN + HEADER + r as u32 * row_height + GAP;
        let centre = top + (size * scale).max(size) / 2;
        let above = name.pos(Pos::new(HPos::Left, VPos::Bottom));
        let below = note.pos(Pos::new(HPos::Left, VPos::Top));
        draw(kind.name(), &above, MARGIN, centre - 2)?;
        draw(description(kind), &below, MARGIN, centre + 4)?;
    }
    area.present().map_err(|e| text_error(e.to_string()))
}

/// Draws the contact sheet and writes it as PNG to `path` (atomically).
pub fn write_preview(config: &SynthConfig, path: &Path) -> Result<(), SynthError> {
    let sheet = contact_sheet(config)?;
    let mut bytes = Vec::new();
    sheet
        .write_with_encoder(image::codecs::png::PngEncoder::new(&mut bytes))
        .map_err(|source| SynthError::Encode {
            path: path.to_path_buf(),
            source,
        })?;
    crate::io::write_atomic(path, &bytes).map_err(|source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> SynthConfig {
        SynthConfig {
            hard_patches: 60,
            hard_slides: 4,
            pool_patches: 40,
            pool_slides: 3,
            ..SynthConfig::default()
        }
    }

    #[test]
    fn large_patches_are_drawn_at_the_enlarged_side_once() {
        let large = SynthConfig {
            size: 400,
            ..tiny()
        };
        let sheet = contact_sheet(&large).unwrap();
        let side = SynthConfig {
            size: ENLARGED_SIDE,
            ..tiny()
        };
        let rows = examples(&side).unwrap();
        let n = EXAMPLES_PER_KIND as u32;
        let native_x = MARGIN + LABEL_WIDTH;
        assert_eq!(
            sheet.width(),
            native_x + n * (ENLARGED_SIDE + GAP) - GAP + MARGIN
        );
        let top = MARGIN + HEADER + GAP;
        let patch = &rows[0][0];
        for (px, py) in [(0, 0), (50, 120), (191, 191)] {
            assert_eq!(
                sheet.get_pixel(native_x + px, top + py),
                patch.get_pixel(px, py)
            );
        }
    }

    #[test]
    fn every_kind_gets_a_full_row_of_dataset_patches() {
        let config = tiny();
        let rows = examples(&config).unwrap();
        assert_eq!(rows.len(), PatchKind::ALL.len());
        for (kind, images) in ROWS.iter().zip(&rows) {
            assert_eq!(images.len(), EXAMPLES_PER_KIND, "{kind:?}");
        }
        // The first invasion example is the first invasion patch of the dataset, byte for byte.
        let dir = tempfile::tempdir().unwrap();
        super::super::generate(&config, dir.path()).unwrap();
        let first = plan(&config)
            .unwrap()
            .into_iter()
            .find(|p| p.kind == PatchKind::Invasion)
            .unwrap();
        let on_disk = image::open(dir.path().join(first.path()))
            .unwrap()
            .to_rgb8();
        assert!(rows[0][0] == on_disk);
        assert!(dir.path().join(PREVIEW_FILE).exists());
    }

    #[test]
    fn sheet_shows_each_patch_native_and_enlarged_with_labels() {
        let config = tiny();
        let rows = examples(&config).unwrap();
        let sheet = contact_sheet(&config).unwrap();
        let scale = enlargement(config.size);
        assert_eq!(scale, 3);
        let native_x = MARGIN + LABEL_WIDTH;
        let enlarged_x = native_x + EXAMPLES_PER_KIND as u32 * (config.size + GAP) + 3 * GAP;
        let row_height = config.size * scale + 2 * GAP;
        for (r, images) in rows.iter().enumerate() {
            let top = MARGIN + HEADER + r as u32 * row_height + GAP;
            let patch = &images[1];
            let x0 = native_x + config.size + GAP;
            let x1 = enlarged_x + config.size * scale + GAP;
            for (px, py) in [(0, 0), (17, 40), (63, 63)] {
                let want = patch.get_pixel(px, py);
                assert_eq!(sheet.get_pixel(x0 + px, top + py), want);
                assert_eq!(
                    sheet.get_pixel(x1 + px * scale + 2, top + py * scale + 1),
                    want
                );
            }
            // The label column holds dark text pixels in every row.
            let dark = (MARGIN..MARGIN + LABEL_WIDTH)
                .flat_map(|x| (top..top + row_height - GAP).map(move |y| (x, y)))
                .filter(|&(x, y)| sheet.get_pixel(x, y).0.iter().all(|&c| c < 100))
                .count();
            assert!(dark > 50, "row {r}: {dark} text pixels");
        }
    }
}
