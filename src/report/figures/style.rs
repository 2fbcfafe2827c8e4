//! The look shared by all figures: embedded font, sizes readable at paper
//! size, a colour-blind-safe palette (Okabe & Ito) with one fixed colour per
//! strategy, a title and legend strip above the panels (so a legend never
//! covers data), panel grids, error bars and markers.

use super::axis::AxisRange;
use super::DrawResult;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;
use std::sync::OnceLock;

/// Font family of every text element. The embedded Roboto is registered
/// under this name for PNGs; SVG viewers read it as a CSS font list and fall
/// back to fonts of similar width.
pub const FONT: &str = "Roboto, Arial, Helvetica, sans-serif";
/// Figure width in pixels.
pub const WIDTH: u32 = 1600;
/// Default figure height in pixels.
pub const HEIGHT: u32 = 1000;
/// Figure title size.
pub const TITLE_SIZE: u32 = 38;
/// Subtitle (how to read the figure) size.
pub const SUBTITLE_SIZE: u32 = 24;
/// Panel title size.
pub const CAPTION_SIZE: u32 = 30;
/// Axis description size.
pub const LABEL_SIZE: u32 = 26;
/// Tick label size.
pub const TICK_SIZE: u32 = 23;
/// Legend text size.
pub const LEGEND_SIZE: u32 = 25;

/// Registers the embedded font once per process.
pub fn register_fonts() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FONT, FontStyle::Normal, super::typeset::ROBOTO).map_err(
                |_| {
                    "the embedded font assets/fonts/Roboto-Regular.ttf is not a valid TrueType file"
                        .to_string()
                },
            )
        })
        .clone()
}

/// Okabe-Ito blue.
pub const BLUE: RGBColor = RGBColor(0, 114, 178);
/// Okabe-Ito orange.
pub const ORANGE: RGBColor = RGBColor(230, 159, 0);
/// Okabe-Ito vermillion.
pub const VERMILLION: RGBColor = RGBColor(213, 94, 0);
/// Okabe-Ito bluish green.
pub const GREEN: RGBColor = RGBColor(0, 158, 115);
/// Okabe-Ito reddish purple.
pub const PURPLE: RGBColor = RGBColor(204, 121, 167);
/// Okabe-Ito sky blue.
pub const SKY: RGBColor = RGBColor(86, 180, 233);
/// Neutral grey for the baseline (no mining, weak model).
pub const GREY: RGBColor = RGBColor(100, 100, 100);
/// Text and frame colour.
pub const INK: RGBColor = RGBColor(20, 20, 20);

/// Colours for series that are not strategies, in order.
pub const PALETTE: [RGBColor; 8] = [BLUE, VERMILLION, GREEN, ORANGE, PURPLE, SKY, GREY, INK];

/// The fixed colour of a strategy, so it looks the same in every figure.
pub fn strategy_color(strategy: &str) -> RGBColor {
    match strategy {
        "none" => GREY,
        "knn-l2" => BLUE,
        "knn-cosine" => ORANGE,
        "random" => VERMILLION,
        "score" => PURPLE,
        "all" => GREEN,
        other => PALETTE[other.bytes().map(usize::from).sum::<usize>() % PALETTE.len()],
    }
}

/// Marker shapes, so series stay apart in greyscale print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// Filled circle.
    Circle,
    /// Filled triangle.
    Triangle,
    /// Filled square.
    Square,
    /// Diagonal cross.
    Cross,
    /// Hollow circle.
    Ring,
}

/// Markers for series, in order.
pub const MARKERS: [Marker; 4] = [
    Marker::Circle,
    Marker::Triangle,
    Marker::Square,
    Marker::Cross,
];

/// What a legend entry shows before its label.
#[derive(Debug, Clone, Copy)]
pub enum Swatch {
    /// A solid line with an optional marker.
    Line(RGBColor, Option<Marker>),
    /// A dashed line.
    Dashed(RGBColor),
    /// A filled box.
    Bar(RGBColor),
    /// A marker alone.
    Point(RGBColor, Marker),
}

/// One legend entry.
#[derive(Debug, Clone)]
pub struct LegendEntry {
    /// Text.
    pub label: String,
    /// Sample drawn before it.
    pub swatch: Swatch,
}

/// Width of a legend swatch.
const SWATCH_WIDTH: i32 = 52;

/// Width a swatch takes: a marker alone needs less room than a line.
fn swatch_width(swatch: Swatch) -> i32 {
    match swatch {
        Swatch::Point(..) | Swatch::Bar(..) => 30,
        Swatch::Line(..) | Swatch::Dashed(..) => SWATCH_WIDTH,
    }
}

/// Clears the figure, draws the title, an optional subtitle and the legend
/// rows (wrapped to the width), and returns the area left for panels.
pub fn header<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    subtitle: Option<&str>,
    legend: &[LegendEntry],
) -> Result<DrawingArea<DB, Shift>, String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (width, _) = root.dim_in_pixel();
    let center = Pos::new(HPos::Center, VPos::Top);
    // A long title is set smaller rather than cut off at the edges.
    let mut title_size = TITLE_SIZE;
    while title_size > 22 {
        let (w, _) = root
            .estimate_text_size(title, &TextStyle::from((FONT, title_size).into_font()))
            .map_err(|e| e.to_string())?;
        if w + 60 <= width {
            break;
        }
        title_size -= 2;
    }
    let title_style = TextStyle::from((FONT, title_size).into_font())
        .color(&INK)
        .pos(center);
    root.draw_text(title, &title_style, (width as i32 / 2, 14))
        .map_err(|e| e.to_string())?;
    // Line boxes are about 1.2 em high.
    let mut y = 14 + TITLE_SIZE as i32 * 6 / 5 + 8;
    if let Some(subtitle) = subtitle {
        let style = TextStyle::from((FONT, SUBTITLE_SIZE).into_font())
            .color(&GREY)
            .pos(center);
        root.draw_text(subtitle, &style, (width as i32 / 2, y))
            .map_err(|e| e.to_string())?;
        y += SUBTITLE_SIZE as i32 * 6 / 5 + 10;
    }
    for row in legend_rows(root, legend, width)? {
        draw_legend_row(root, &row, width, y + LEGEND_SIZE as i32 * 3 / 5)?;
        y += LEGEND_SIZE as i32 * 6 / 5 + 12;
    }
    Ok(root.split_vertically(y + 6).1)
}

/// Legend entries with their widths, wrapped into rows that fit `width`.
fn legend_rows<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    legend: &[LegendEntry],
    width: u32,
) -> Result<Vec<Vec<(LegendEntry, i32)>>, String> {
    let font = TextStyle::from((FONT, LEGEND_SIZE).into_font());
    let available = width as i32 - 80;
    let mut rows: Vec<Vec<(LegendEntry, i32)>> = Vec::new();
    let mut used = 0;
    for entry in legend {
        let (text_width, _) = root
            .estimate_text_size(&entry.label, &font)
            .map_err(|e| e.to_string())?;
        let w = swatch_width(entry.swatch) + 12 + text_width as i32;
        let gap = if used == 0 { 0 } else { 44 };
        if rows.is_empty() || used + gap + w > available {
            rows.push(Vec::new());
            used = w;
        } else {
            used += gap + w;
        }
        rows.last_mut()
            .expect("a row was pushed")
            .push((entry.clone(), w));
    }
    Ok(rows)
}

/// Draws one centred legend row with its vertical centre at `y`.
fn draw_legend_row<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    row: &[(LegendEntry, i32)],
    width: u32,
    y: i32,
) -> DrawResult {
    let total: i32 = row.iter().map(|(_, w)| w).sum::<i32>() + 44 * (row.len() as i32 - 1);
    let mut x = (width as i32 - total) / 2;
    let text_style = TextStyle::from((FONT, LEGEND_SIZE).into_font())
        .color(&INK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (entry, w) in row {
        draw_swatch(root, entry.swatch, x, y)?;
        root.draw_text(
            &entry.label,
            &text_style,
            (x + swatch_width(entry.swatch) + 12, y),
        )
        .map_err(|e| e.to_string())?;
        x += w + 44;
    }
    Ok(())
}

/// Draws a legend sample with its left end at (x, y).
fn draw_swatch<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    swatch: Swatch,
    x: i32,
    y: i32,
) -> DrawResult {
    let mid = (x + swatch_width(swatch) / 2, y);
    match swatch {
        Swatch::Line(color, marker) => {
            root.draw(&PathElement::new(
                vec![(x, y), (x + SWATCH_WIDTH, y)],
                color.stroke_width(4),
            ))
            .map_err(|e| e.to_string())?;
            match marker {
                Some(m) => draw_pixel_marker(root, mid, m, color, 8),
                None => Ok(()),
            }
        }
        Swatch::Dashed(color) => {
            for start in [0, 20, 40] {
                root.draw(&PathElement::new(
                    vec![(x + start, y), (x + start + 12, y)],
                    color.stroke_width(4),
                ))
                .map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        Swatch::Bar(color) => root
            .draw(&Rectangle::new(
                [(x + 2, y - 12), (x + 28, y + 12)],
                color.filled(),
            ))
            .map_err(|e| e.to_string()),
        Swatch::Point(color, marker) => draw_pixel_marker(root, mid, marker, color, 9),
    }
}

/// A marker in pixel coordinates.
fn draw_pixel_marker<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    at: (i32, i32),
    marker: Marker,
    color: RGBColor,
    size: i32,
) -> DrawResult {
    let filled = color.filled();
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    match marker {
        Marker::Circle => root.draw(&Circle::new(at, size, filled)).map_err(e),
        Marker::Ring => root
            .draw(&Circle::new(at, size, color.stroke_width(3)))
            .map_err(e),
        Marker::Triangle => root
            .draw(&TriangleMarker::new(at, size + 2, filled))
            .map_err(e),
        Marker::Square => root
            .draw(&Rectangle::new(
                [
                    (at.0 - size + 1, at.1 - size + 1),
                    (at.0 + size - 1, at.1 + size - 1),
                ],
                filled,
            ))
            .map_err(e),
        Marker::Cross => root
            .draw(&Cross::new(at, size, color.stroke_width(4)))
            .map_err(e),
    }
}

/// Splits the panel area into a grid for `n` panels: two columns from two
/// panels on, as many rows as needed.
pub fn panels<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    n: usize,
) -> Vec<DrawingArea<DB, Shift>> {
    let cols = if n >= 2 { 2 } else { 1 };
    let rows = n.div_ceil(cols).max(1);
    area.split_evenly((rows, cols))
        .into_iter()
        .take(n)
        .collect()
}

/// A figure of `count` panels under one [`header`]: `draw_panel(panel, i)`
/// draws panel `i` of the grid of [`panels`].
pub fn header_and_panels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    subtitle: Option<&str>,
    legend: &[LegendEntry],
    count: usize,
    mut draw_panel: impl FnMut(&DrawingArea<DB, Shift>, usize) -> DrawResult,
) -> DrawResult {
    let area = header(root, title, subtitle, legend)?;
    for (i, panel) in panels(&area, count).iter().enumerate() {
        draw_panel(panel, i)?;
    }
    Ok(())
}

/// Figure height for `n` panels in the grid of [`panels`].
pub fn height_for_panels(n: usize) -> u32 {
    let rows = n.div_ceil(2).max(1) as u32;
    HEIGHT.max(200 + rows * 430)
}

/// An f64 axis with ticks exactly where asked (plotters' own key-point
/// wrapper loses the ability to take a label formatter for f64).
#[derive(Clone)]
pub struct Ticked {
    inner: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    // Labels always come from a formatter passed to the mesh.
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // No light (minor) grid lines: only the chosen ticks.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }
}

/// The coordinate system of every chart: f64 on both axes, ticks where asked.
pub type Coords = Cartesian2d<Ticked, Ticked>;

/// A chart in a panel.
pub type Chart<'a, DB> = ChartContext<'a, DB, Coords>;

/// One axis: its range and tick positions.
#[derive(Debug, Clone)]
pub struct Axis {
    /// Drawn range.
    pub low: f64,
    /// Drawn range.
    pub high: f64,
    /// Tick positions.
    pub ticks: Vec<f64>,
}

impl Axis {
    /// An axis from a nice range, with its ticks.
    pub fn from_range(range: &AxisRange) -> Self {
        Self {
            low: range.low,
            high: range.high,
            ticks: range.ticks(),
        }
    }
}

/// How a panel's chart is framed: title, axes, labels and grid.
pub struct Frame<'f> {
    /// Panel title ("" for none).
    pub caption: &'f str,
    /// Horizontal axis.
    pub x: &'f Axis,
    /// Vertical axis.
    pub y: &'f Axis,
    /// Horizontal axis description ("" for none).
    pub x_desc: &'f str,
    /// Vertical axis description ("" for none).
    pub y_desc: &'f str,
    /// Tick labels of x.
    pub x_format: &'f dyn Fn(&f64) -> String,
    /// Tick labels of y.
    pub y_format: &'f dyn Fn(&f64) -> String,
    /// Vertical grid lines at the x ticks (off for bars).
    pub x_grid: bool,
}

/// Builds a chart in `area` and draws its frame. The label areas are sized
/// from the tick labels, so axis descriptions sit next to the numbers.
pub fn chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    frame: &Frame<'_>,
) -> Result<Chart<'a, DB>, String> {
    let tick_style = TextStyle::from((FONT, TICK_SIZE).into_font());
    let mut widest = 0;
    for tick in &frame.y.ticks {
        let (w, _) = area
            .estimate_text_size(&(frame.y_format)(tick), &tick_style)
            .map_err(|e| e.to_string())?;
        widest = widest.max(w as i32);
    }
    let desc = |text: &str| {
        if text.is_empty() {
            0
        } else {
            LABEL_SIZE as i32 * 3 / 2
        }
    };
    let y_area = widest + 22 + desc(frame.y_desc);
    let x_area = TICK_SIZE as i32 * 3 / 2 + 14 + desc(frame.x_desc);
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(12)
        .margin_right(34)
        .x_label_area_size(x_area)
        .y_label_area_size(y_area);
    if !frame.caption.is_empty() {
        builder.caption(frame.caption, (FONT, CAPTION_SIZE).into_font().color(&INK));
    }
    let mut chart = builder
        .build_cartesian_2d(
            Ticked {
                inner: (frame.x.low..frame.x.high).into(),
                ticks: frame.x.ticks.clone(),
            },
            Ticked {
                inner: (frame.y.low..frame.y.high).into(),
                ticks: frame.y.ticks.clone(),
            },
        )
        .map_err(|e| e.to_string())?;
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(frame.x_desc)
        .y_desc(frame.y_desc)
        .label_style((FONT, TICK_SIZE).into_font().color(&INK))
        .axis_desc_style((FONT, LABEL_SIZE).into_font().color(&INK))
        .x_label_formatter(frame.x_format)
        .y_label_formatter(frame.y_format)
        .bold_line_style(INK.mix(0.1))
        .light_line_style(TRANSPARENT)
        .axis_style(INK.mix(0.7));
    if !frame.x_grid {
        mesh.disable_x_mesh();
    }
    mesh.draw().map_err(|e| e.to_string())?;
    Ok(chart)
}

/// A polyline of `width` pixels. The bitmap rasteriser fills wide lines as
/// polygons and can leave a faint seam along shallow segments; a 1-pixel
/// line along the centre covers it.
pub fn polyline<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    points: &[(f64, f64)],
    color: RGBAColor,
    width: u32,
) -> DrawResult {
    chart
        .draw_series(LineSeries::new(
            points.iter().copied(),
            color.stroke_width(width),
        ))
        .map_err(|e| e.to_string())?;
    if width > 1 {
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(1),
            ))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A vertical error bar from `low` to `high` at `x`, with caps.
pub fn error_bar<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    x: f64,
    low: f64,
    high: f64,
    color: RGBColor,
) -> DrawResult {
    let style = color.stroke_width(3);
    let caps = [low, high]
        .map(|y| EmptyElement::at((x, y)) + PathElement::new(vec![(-9, 0), (9, 0)], style));
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(x, low), (x, high)],
            style,
        )))
        .map_err(|e| e.to_string())?;
    chart.draw_series(caps).map_err(|e| e.to_string())?;
    Ok(())
}

/// A marker at a data point.
pub fn marker<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    at: (f64, f64),
    marker: Marker,
    color: ShapeStyle,
    size: i32,
) -> DrawResult {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    match marker {
        Marker::Circle => chart
            .draw_series(std::iter::once(Circle::new(at, size, color)))
            .map(|_| ())
            .map_err(e),
        Marker::Ring => chart
            .draw_series(std::iter::once(Circle::new(at, size, color)))
            .map(|_| ())
            .map_err(e),
        Marker::Triangle => chart
            .draw_series(std::iter::once(TriangleMarker::new(at, size + 2, color)))
            .map(|_| ())
            .map_err(e),
        Marker::Square => chart
            .draw_series(std::iter::once(
                EmptyElement::at(at)
                    + Rectangle::new([(-size + 1, -size + 1), (size - 1, size - 1)], color),
            ))
            .map(|_| ())
            .map_err(e),
        Marker::Cross => chart
            .draw_series(std::iter::once(Cross::new(at, size, color)))
            .map(|_| ())
            .map_err(e),
    }
}

/// Text anchored at its bottom centre at a data point, `lift` pixels up.
pub fn label_above<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    text: &str,
    at: (f64, f64),
    lift: i32,
    size: u32,
) -> DrawResult {
    let style = TextStyle::from((FONT, size).into_font())
        .color(&INK)
        .pos(Pos::new(HPos::Center, VPos::Bottom));
    chart
        .draw_series(std::iter::once(
            EmptyElement::at(at) + Text::new(text.to_string(), (0, -lift), style),
        ))
        .map(|_| ())
        .map_err(|e| e.to_string())
}
