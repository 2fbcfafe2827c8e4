//! Scene description and rasteriser.
//!
//! A patch is described in continuous coordinates, the unit square `[0, 1]^2`,
//! as a [`Scene`]: stroma texture, optional clear space (vessel lumen or
//! retraction cleft), optional tumour cell cluster, and lists of nuclei and
//! red cells. The rasteriser evaluates the scene at pixel centres and only then
//! knows the pixel size, so one scene drawn at 64 px and at 224 px looks the
//! same, only finer. Edges are smoothed over the larger of one pixel and a
//! fixed optical blur, which anti-aliases small patches and keeps large ones
//! from looking artificially sharp.
//!
//! Every layer writes stain concentrations (haematoxylin, eosin); colour is
//! applied once at the end by [`Stain::colour`].

use super::noise::ValueNoise;
use super::stain::Stain;
use image::RgbImage;
use rand::Rng;
use std::f32::consts::TAU;

/// Optical blur radius in unit coordinates (about 1 px at 224 px).
const OPTICAL_BLUR: f32 = 0.004;
/// Sensor noise: half-width of a triangular distribution in 0..255 units
/// (standard deviation 4.9 / sqrt(6) = 2).
const SENSOR_NOISE: f32 = 4.9;
/// Distance from an outline beyond which [`Blob::sdf`] may return a bound.
pub const FAR: f32 = 0.05;

/// A point in unit coordinates.
pub type Point = [f32; 2];

/// One Fourier term of a blob's radius: `amp * cos(k * theta + phase)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Harmonic {
    /// Angular frequency (number of lobes).
    pub k: f32,
    /// Amplitude in unit coordinates.
    pub amp: f32,
    /// Phase in radians.
    pub phase: f32,
}

/// A star-shaped region: radius as a function of angle around a centre.
/// Low harmonics make ovals (vessels), higher ones lobulated outlines (nests).
#[derive(Debug, Clone, PartialEq)]
pub struct Blob {
    /// Centre.
    pub centre: Point,
    /// Mean radius.
    pub radius: f32,
    /// Deviations from a circle.
    pub terms: Vec<Harmonic>,
}

impl Blob {
    /// Radius in direction `theta`.
    pub fn radius_at(&self, theta: f32) -> f32 {
        self.radius
            + self
                .terms
                .iter()
                .map(|t| t.amp * (t.k * theta + t.phase).cos())
                .sum::<f32>()
    }

    /// Approximate signed distance: negative inside. Exact for circles; for
    /// wobbly outlines it is the radial distance, which is enough for smooth
    /// edges and bands a few pixels wide. More than [`FAR`] from the outline
    /// only a bound is returned (still beyond `FAR`), which saves the angle
    /// and the harmonics for most pixels; every use of the distance treats
    /// all points that far away alike.
    pub fn sdf(&self, p: Point) -> f32 {
        let (dx, dy) = (p[0] - self.centre[0], p[1] - self.centre[1]);
        let d = (dx * dx + dy * dy).sqrt();
        let spread: f32 = self.terms.iter().map(|t| t.amp.abs()).sum();
        if d - (self.radius + spread) > FAR {
            return d - (self.radius + spread);
        }
        if d - (self.radius - spread) < -FAR {
            return d - (self.radius - spread);
        }
        d - self.radius_at(dy.atan2(dx))
    }

    /// The outline point in direction `theta`.
    pub fn boundary(&self, theta: f32) -> Point {
        let r = self.radius_at(theta);
        [
            self.centre[0] + r * theta.cos(),
            self.centre[1] + r * theta.sin(),
        ]
    }

    /// Outward unit normal of the outline in direction `theta` (from the
    /// polar-curve derivative, so it is correct for non-circular outlines).
    pub fn normal(&self, theta: f32) -> Point {
        let eps = 1e-3;
        let (a, b) = (self.boundary(theta - eps), self.boundary(theta + eps));
        let (tx, ty) = (b[0] - a[0], b[1] - a[1]);
        let len = (tx * tx + ty * ty).sqrt().max(1e-9);
        [ty / len, -tx / len]
    }

    /// Outline length, by summing `segments` chords.
    pub fn perimeter(&self, segments: usize) -> f32 {
        let mut last = self.boundary(0.0);
        let mut sum = 0.0;
        for i in 1..=segments {
            let next = self.boundary(TAU * i as f32 / segments as f32);
            sum += ((next[0] - last[0]).powi(2) + (next[1] - last[1]).powi(2)).sqrt();
            last = next;
        }
        sum
    }
}

/// Collagen texture of the stroma: wavy parallel fibres with pale gaps.
#[derive(Debug, Clone, PartialEq)]
pub struct Stroma {
    /// Main fibre direction, radians.
    pub angle: f32,
    /// Eosin concentration of the fibres.
    pub density: f32,
    /// Fibres per unit length across the fibre direction.
    pub across: f32,
    /// Frequency along the fibres (low: long fibres).
    pub along: f32,
    /// Strength of the large-scale waviness.
    pub warp: f32,
    /// Texture field.
    pub noise: ValueNoise,
}

impl Stroma {
    /// Haematoxylin and eosin concentrations of stroma at `p`.
    pub fn at(&self, p: Point) -> (f32, f32) {
        self.at_oriented(p, self.angle.sin_cos())
    }

    /// [`Stroma::at`] with `(sin, cos)` of the main angle computed once per patch.
    fn at_oriented(&self, p: Point, (as_, ac): (f32, f32)) -> (f32, f32) {
        // Fibres bend slowly: the local direction drifts around the main one,
        // and a small displacement across the fibres makes them wavy.
        // The drift is at most 0.3 rad, so its cosine and sine are computed by
        // their Taylor series (error < 4e-4) and rotated onto the main angle.
        let drift = 0.6 * (self.noise.sample(p[0] * 1.5 + 11.0, p[1] * 1.5) - 0.5);
        let (dc, ds) = (
            1.0 - 0.5 * drift * drift,
            drift - drift * drift * drift / 6.0,
        );
        let (c, s) = (ac * dc - as_ * ds, as_ * dc + ac * ds);
        let wave = self.warp * (self.noise.fbm(p[0] * 4.0 + 31.0, p[1] * 4.0, 2) - 0.5);
        let u = p[0] * c + p[1] * s;
        let v = -p[0] * s + p[1] * c + wave;
        let fibre = self.noise.fbm(u * self.along, v * self.across, 3);
        // Pale spaces between collagen bundles (oedema, shrinkage).
        let gap = smoothstep(0.2, 0.36, fibre);
        let patchy = 0.85 + 0.3 * self.noise.sample(p[0] * 3.0 - 7.0, p[1] * 3.0 + 3.0);
        let e = self.density * patchy * (0.45 + 0.9 * fibre) * (0.2 + 0.8 * gap);
        (0.035 + 0.04 * fibre, e)
    }
}

/// Tumour cell cluster: cytoplasm-filled region holding tumour nuclei.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// Outline.
    pub blob: Blob,
    /// If set, the cluster is cut to stay this far inside the clear space:
    /// a tumour embolus cannot extend past the vessel wall.
    pub clip_gap: Option<f32>,
    /// Cytoplasm haematoxylin concentration.
    pub cyto_h: f32,
    /// Cytoplasm eosin concentration.
    pub cyto_e: f32,
}

/// What fills a clear space (vessel lumen or retraction cleft).
#[derive(Debug, Clone, PartialEq)]
pub struct Space {
    /// Outline of the space (the cluster, if any, is drawn over it).
    pub blob: Blob,
    /// Eosin concentration of the content (lymph, plasma): faint pink or none.
    pub fluid: f32,
    /// Thickness of an endothelial cytoplasm membrane along the outline, if lined.
    pub membrane: Option<f32>,
    /// Extra eosin in a compressed-stroma rim just outside the outline.
    pub rim: f32,
}

/// An elliptical nucleus.
#[derive(Debug, Clone, PartialEq)]
pub struct Nucleus {
    /// Centre.
    pub centre: Point,
    /// Semi-axis along `angle`.
    pub a: f32,
    /// Semi-axis across `angle`.
    pub b: f32,
    /// Long-axis direction, radians.
    pub angle: f32,
    /// Haematoxylin concentration.
    pub density: f32,
    /// Chromatin texture contrast (0 = homogeneous).
    pub texture: f32,
    /// How much the nucleus covers what lies under it (0 = invisible, 1 = opaque).
    pub opacity: f32,
}

/// A red blood cell: small eosin-dense disc with central pallor.
#[derive(Debug, Clone, PartialEq)]
pub struct RedCell {
    /// Centre.
    pub centre: Point,
    /// Radius.
    pub radius: f32,
}

/// A white elongated artefact space in stroma (no lining, no content).
#[derive(Debug, Clone, PartialEq)]
pub struct Crack {
    /// Centre.
    pub centre: Point,
    /// Semi-axis along `angle`.
    pub a: f32,
    /// Semi-axis across.
    pub b: f32,
    /// Direction, radians.
    pub angle: f32,
}

/// Everything drawn in one patch.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// Background tissue.
    pub stroma: Stroma,
    /// Clear space: vessel lumen or retraction cleft.
    pub space: Option<Space>,
    /// Tumour cells.
    pub cluster: Option<Cluster>,
    /// A small glandular lumen inside the cluster (tumour-lined, no endothelium).
    pub gland: Option<Blob>,
    /// Artefact cracks in the stroma.
    pub cracks: Vec<Crack>,
    /// All nuclei (tumour, endothelial, stromal), drawn in order.
    pub nuclei: Vec<Nucleus>,
    /// Red blood cells.
    pub red_cells: Vec<RedCell>,
    /// Field for chromatin and cytoplasm texture.
    pub grain: ValueNoise,
}

impl Scene {
    /// How much `p` lies inside the tumour cluster (0..1), smoothed over `soft`.
    pub fn cluster_cover(&self, p: Point, soft: f32) -> f32 {
        let Some(cluster) = &self.cluster else {
            return 0.0;
        };
        let mut cover = inside(cluster.blob.sdf(p), soft);
        if let (Some(gap), Some(space)) = (cluster.clip_gap, &self.space) {
            cover = cover.min(inside(space.blob.sdf(p) + gap, soft));
        }
        cover
    }

    /// Whether `p` is plain stroma, at least `margin` away from any structure.
    pub fn in_stroma(&self, p: Point, margin: f32) -> bool {
        let clear_of = |b: &Blob| b.sdf(p) > margin;
        self.space.as_ref().is_none_or(|s| clear_of(&s.blob))
            && self.cluster.as_ref().is_none_or(|c| clear_of(&c.blob))
    }

    /// Draws the scene at `size` x `size` pixels. `rng` supplies sensor noise.
    pub fn render(&self, stain: &Stain, size: u32, rng: &mut impl Rng) -> RgbImage {
        let mut canvas = Canvas::new(size);
        self.paint_tissue(&mut canvas);
        for nucleus in &self.nuclei {
            canvas.splat_nucleus(nucleus, &self.grain);
        }
        for cell in &self.red_cells {
            canvas.splat_red_cell(cell);
        }
        canvas.to_image(stain, rng)
    }

    /// Stroma, clear space, membrane, cluster cytoplasm and cracks, per pixel.
    fn paint_tissue(&self, canvas: &mut Canvas) {
        let soft = canvas.soft;
        let orientation = self.stroma.angle.sin_cos();
        for index in 0..canvas.h.len() {
            let p = canvas.point(index);
            let (mut h, mut e) = self.stroma.at_oriented(p, orientation);
            for crack in &self.cracks {
                let clear = inside(
                    ellipse_sdf(p, crack.centre, crack.a, crack.b, crack.angle),
                    soft,
                );
                (h, e) = (h * (1.0 - clear), e * (1.0 - 0.9 * clear));
            }
            if let Some(space) = &self.space {
                let d = space.blob.sdf(p);
                e += space.rim * band(d, 0.0, 0.03, soft);
                let open = inside(d, soft);
                h = mix(h, 0.0, open);
                e = mix(e, space.fluid, open);
                if let Some(t) = space.membrane {
                    let m = band(d, -0.25 * t, t, soft);
                    (h, e) = (mix(h, 0.12, m), mix(e, 0.45, m));
                }
            }
            let cover = self.cluster_cover(p, soft);
            if cover > 0.0 {
                let cluster = self.cluster.as_ref().expect("cover > 0 implies a cluster");
                let grain = 0.85 + 0.3 * self.grain.sample(p[0] * 45.0, p[1] * 45.0);
                let mut lumen = self.gland.as_ref().map_or(0.0, |g| inside(g.sdf(p), soft));
                lumen *= cover;
                h = mix(h, cluster.cyto_h * grain, cover - lumen);
                e = mix(e, cluster.cyto_e * grain, cover - lumen);
                (h, e) = (mix(h, 0.0, lumen), mix(e, 0.04, lumen));
            }
            canvas.h[index] = h;
            canvas.e[index] = e;
        }
    }
}

/// Stain concentration buffers for one patch.
struct Canvas {
    size: usize,
    /// Pixel size in unit coordinates.
    pixel: f32,
    /// Edge smoothing width in unit coordinates.
    soft: f32,
    h: Vec<f32>,
    e: Vec<f32>,
}

impl Canvas {
    fn new(size: u32) -> Self {
        let size = size as usize;
        let pixel = 1.0 / size as f32;
        let soft = (0.5 * pixel).max(OPTICAL_BLUR);
        Self {
            size,
            pixel,
            soft,
            h: vec![0.0; size * size],
            e: vec![0.0; size * size],
        }
    }

    /// Unit coordinates of the centre of pixel `index` (row-major).
    fn point(&self, index: usize) -> Point {
        let (x, y) = (index % self.size, index / self.size);
        [(x as f32 + 0.5) * self.pixel, (y as f32 + 0.5) * self.pixel]
    }

    /// Pixel index range (inclusive start, exclusive end) covering `[lo, hi]`.
    fn span(&self, lo: f32, hi: f32) -> (usize, usize) {
        let to_px = |v: f32| (v / self.pixel).floor().clamp(0.0, self.size as f32) as usize;
        (to_px(lo), (to_px(hi) + 1).min(self.size))
    }

    /// Visits the pixels of the square `[c - r, c + r]^2`, clipped to the patch.
    fn for_box(&mut self, c: Point, r: f32, mut f: impl FnMut(Point, &mut f32, &mut f32)) {
        let (x0, x1) = self.span(c[0] - r, c[0] + r);
        let (y0, y1) = self.span(c[1] - r, c[1] + r);
        for y in y0..y1 {
            for x in x0..x1 {
                let index = y * self.size + x;
                let p = [(x as f32 + 0.5) * self.pixel, (y as f32 + 0.5) * self.pixel];
                let (h, e) = (&mut self.h[index], &mut self.e[index]);
                f(p, h, e);
            }
        }
    }

    fn splat_nucleus(&mut self, n: &Nucleus, grain: &ValueNoise) {
        let soft = self.soft;
        self.for_box(n.centre, n.a.max(n.b) + 2.0 * soft, |p, h, e| {
            let d = ellipse_sdf(p, n.centre, n.a, n.b, n.angle);
            let cover = n.opacity * inside(d, soft);
            if cover <= 0.0 {
                return;
            }
            // Chromatin clumps plus a slightly darker nuclear membrane.
            let chromatin = 1.0 + n.texture * (grain.sample(p[0] * 90.0 + 5.0, p[1] * 90.0) - 0.5);
            let membrane = 1.0 + 0.25 * band(d, -0.3 * n.b.min(0.01), 0.0, soft);
            *h = mix(*h, n.density * chromatin * membrane, cover);
            *e = mix(*e, 0.6 * *e, cover);
        });
    }

    fn splat_red_cell(&mut self, cell: &RedCell) {
        let soft = self.soft;
        self.for_box(cell.centre, cell.radius + 2.0 * soft, |p, h, e| {
            let r = ((p[0] - cell.centre[0]).powi(2) + (p[1] - cell.centre[1]).powi(2)).sqrt();
            let cover = inside(r - cell.radius, soft);
            let pallor = 1.0 - 0.3 * (1.0 - (r / cell.radius).min(1.0));
            *h = mix(*h, 0.0, cover);
            *e = mix(*e, 1.5 * pallor, cover);
        });
    }

    /// Converts concentrations to colour and adds sensor noise.
    fn to_image(&self, stain: &Stain, rng: &mut impl Rng) -> RgbImage {
        let mut img = RgbImage::new(self.size as u32, self.size as u32);
        for (index, pixel) in img.pixels_mut().enumerate() {
            let rgb = stain.colour(self.h[index].max(0.0), self.e[index].max(0.0));
            // Two 64-bit draws give two 21-bit uniforms per channel; their
            // difference is triangular noise, close enough to Gaussian and
            // much cheaper than a normal sampler per channel.
            let (a, b) = (rng.next_u64(), rng.next_u64());
            for (c, (out, value)) in pixel.0.iter_mut().zip(rgb).enumerate() {
                let u = ((a >> (21 * c)) & 0x1F_FFFF) as f32 / 0x1F_FFFF as f32;
                let v = ((b >> (21 * c)) & 0x1F_FFFF) as f32 / 0x1F_FFFF as f32;
                *out = (value + SENSOR_NOISE * (u - v)).round().clamp(0.0, 255.0) as u8;
            }
        }
        img
    }
}

/// Signed distance (approximate, exact on the axes) to an ellipse.
fn ellipse_sdf(p: Point, c: Point, a: f32, b: f32, angle: f32) -> f32 {
    let (dx, dy) = (p[0] - c[0], p[1] - c[1]);
    let (cs, sn) = (angle.cos(), angle.sin());
    let (u, v) = (dx * cs + dy * sn, -dx * sn + dy * cs);
    let q = ((u / a).powi(2) + (v / b).powi(2)).sqrt();
    // Scaling by the short semi-axis keeps thin nuclei crisp across their width.
    (q - 1.0) * a.min(b)
}

/// 1 well inside (d << 0), 0 well outside, smooth over `soft` around d = 0.
pub fn inside(d: f32, soft: f32) -> f32 {
    smoothstep(soft, -soft, d)
}

/// 1 for `lo < d < hi`, smoothed over `soft` at both ends.
fn band(d: f32, lo: f32, hi: f32, soft: f32) -> f32 {
    inside(d - hi, soft) * (1.0 - inside(d - lo, soft))
}

/// Hermite step from 0 at `e0` to 1 at `e1` (works for `e0 > e1` too).
pub fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

fn mix(a: f32, b: f32, t: f32) -> f32 {
    a + (b - a) * t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn circle(r: f32) -> Blob {
        Blob {
            centre: [0.5, 0.5],
            radius: r,
            terms: vec![],
        }
    }

    #[test]
    fn circle_sdf_and_perimeter() {
        let blob = circle(0.2);
        assert!((blob.sdf([0.5, 0.5]) + 0.2).abs() < 1e-6);
        assert!((blob.sdf([0.9, 0.5]) - 0.2).abs() < 1e-6);
        // 2 * pi * 0.2 = 1.2566; 256 chords underestimate by ~0.003 %.
        assert!((blob.perimeter(256) - 1.2566).abs() < 1e-3);
        let n = blob.normal(0.0);
        assert!((n[0] - 1.0).abs() < 1e-3 && n[1].abs() < 1e-3, "{n:?}");
    }

    #[test]
    fn harmonic_changes_radius_by_amplitude() {
        let blob = Blob {
            centre: [0.0, 0.0],
            radius: 0.2,
            terms: vec![Harmonic {
                k: 2.0,
                amp: 0.05,
                phase: 0.0,
            }],
        };
        assert!((blob.radius_at(0.0) - 0.25).abs() < 1e-6);
        assert!((blob.radius_at(std::f32::consts::FRAC_PI_2) - 0.15).abs() < 1e-6);
    }

    #[test]
    fn ellipse_sdf_on_axes() {
        let c = [0.0, 0.0];
        assert!((ellipse_sdf([0.1, 0.0], c, 0.1, 0.02, 0.0)).abs() < 1e-6);
        assert!((ellipse_sdf([0.0, 0.02], c, 0.1, 0.02, 0.0)).abs() < 1e-6);
        assert!(ellipse_sdf([0.0, 0.0], c, 0.1, 0.02, 0.0) < 0.0);
        // Rotated by 90 degrees the long axis points along y.
        assert!((ellipse_sdf([0.0, 0.1], c, 0.1, 0.02, std::f32::consts::FRAC_PI_2)).abs() < 1e-6);
    }

    #[test]
    fn smooth_steps_and_bands() {
        assert_eq!(smoothstep(0.0, 1.0, 0.5), 0.5);
        assert_eq!(smoothstep(0.0, 1.0, -1.0), 0.0);
        assert_eq!(inside(-1.0, 0.01), 1.0);
        assert_eq!(inside(1.0, 0.01), 0.0);
        assert_eq!(inside(0.0, 0.01), 0.5);
        assert_eq!(band(0.05, 0.0, 0.1, 0.01), 1.0);
        assert_eq!(band(0.2, 0.0, 0.1, 0.01), 0.0);
    }

    #[test]
    fn nucleus_darkens_its_pixels_only() {
        let stroma = Stroma {
            angle: 0.0,
            density: 0.5,
            across: 10.0,
            along: 2.0,
            warp: 0.0,
            noise: ValueNoise::new(1),
        };
        let scene = Scene {
            stroma,
            space: None,
            cluster: None,
            gland: None,
            cracks: vec![],
            nuclei: vec![Nucleus {
                centre: [0.5, 0.5],
                a: 0.05,
                b: 0.05,
                angle: 0.0,
                density: 1.2,
                texture: 0.0,
                opacity: 1.0,
            }],
            red_cells: vec![],
            grain: ValueNoise::new(2),
        };
        let mut rng = crate::seed::stream(0, "test-draw", &[]);
        let img = scene.render(&Stain::reference(), 64, &mut rng);
        let centre = img.get_pixel(32, 32).0;
        let corner = img.get_pixel(2, 2).0;
        // The nucleus (H 1.2) is much darker than stroma, and bluer than green.
        assert!(
            centre.iter().map(|&c| c as u32).sum::<u32>() + 150
                < corner.iter().map(|&c| c as u32).sum::<u32>()
        );
        assert!(centre[2] > centre[1], "{centre:?}");
    }
}
