//! What each patch kind looks like: random scene builders.
//!
//! All kinds share the same stroma, stromal cells and artefacts, drawn from the
//! same distributions, so that only the structure in the middle tells them
//! apart:
//!
//! | kind          | clear space                      | lining         | tumour cells |
//! |---------------|----------------------------------|----------------|--------------|
//! | Invasion      | vessel lumen (oval, eccentric)   | endothelium    | embolus      |
//! | Stroma        | none                             | -              | none         |
//! | TumourNest    | none                             | -              | nest         |
//! | EmptyVessel   | vessel lumen, maybe red cells    | endothelium    | none         |
//! | Mimic         | retraction cleft (see below)     | none           | nest         |
//!
//! Invasion and Mimic differ in the lining (flat, elongated endothelial
//! nuclei and a thin membrane along the wall), in the shape of the clear
//! space (a vessel lumen is its own oval with the embolus floating off-centre;
//! a retraction cleft follows the nest at nearly even width, blended towards
//! a lumen's oval by `mimic_lumen_likeness`: by default mostly the oval, so
//! that the lining is the main cue), and in the lumen's red cells and fluid.
//! Stromal fibroblasts are also flat and elongated, so a single flat nucleus is
//! not the cue: their arrangement along the wall is.

use super::draw::{Blob, Cluster, Crack, Harmonic, Nucleus, Point, RedCell, Scene, Space, Stroma};
use super::noise::ValueNoise;
use super::stain::Stain;
use crate::data::PatchKind;
use image::RgbImage;
use rand::Rng;
use std::f32::consts::{PI, TAU};

/// How the scenes of a dataset are drawn: the difficulty of the evidence
/// that separates invasion from its mimic (see [`super::SynthConfig`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SceneStyle {
    /// Visibility of the endothelial lining of every lined space, 0
    /// (absent) to 1 (full contrast): the opacity of its flat nuclei and the
    /// thickness of its membrane.
    pub lining_visibility: f32,
    /// How much a retraction cleft is shaped like a vessel lumen: 0 follows
    /// the nest outline at nearly even width, 1 is an oval lumen with the nest
    /// off-centre, drawn from the invasion's own distribution.
    pub mimic_lumen_likeness: f32,
    /// Widest mean width of the clear space between a tumour cluster and the
    /// wall (lumen or cleft), in patch widths; an open space's width is
    /// uniform in `[0.35, 1] x` this.
    pub space_width: f32,
    /// Share of clusters that fill their space, leaving only a hairline
    /// (`[0.04, 0.12] x space_width`) between cluster and wall: an embolus
    /// filling its lymphatic, a nest whose cleft barely opened.
    pub filled_fraction: f32,
}

impl Default for SceneStyle {
    fn default() -> Self {
        Self {
            lining_visibility: 1.0,
            mimic_lumen_likeness: 0.0,
            space_width: 0.14,
            filled_fraction: 0.0,
        }
    }
}

/// Draws one patch of `kind` at `size` x `size` pixels with a slide's `stain`.
/// All randomness (geometry, texture, a small per-patch stain jitter, sensor
/// noise) comes from `rng`, so a patch is a pure function of its stream.
pub fn render_patch(
    kind: PatchKind,
    style: &SceneStyle,
    stain: &Stain,
    size: u32,
    rng: &mut impl Rng,
) -> RgbImage {
    let scene = build_scene(kind, style, rng);
    // Thickness varies a little between patches of one slide.
    let jitter = rng.random_range(0.95..1.05f32);
    let mut patch_stain = stain.clone();
    for c in 0..3 {
        patch_stain.haematoxylin[c] *= jitter;
        patch_stain.eosin[c] *= jitter;
    }
    scene.render(&patch_stain, size, rng)
}

/// Draws a random scene of `kind` in unit coordinates.
pub fn build_scene(kind: PatchKind, style: &SceneStyle, rng: &mut impl Rng) -> Scene {
    let mut scene = Scene {
        stroma: stroma(rng),
        space: None,
        cluster: None,
        gland: None,
        cracks: vec![],
        nuclei: vec![],
        red_cells: vec![],
        grain: ValueNoise::new(rng.next_u64()),
    };
    match kind {
        PatchKind::Stroma => {}
        PatchKind::TumourNest => tumour_nest(&mut scene, rng),
        PatchKind::EmptyVessel => empty_vessel(&mut scene, style, rng),
        PatchKind::Invasion => invasion(&mut scene, style, rng),
        PatchKind::Mimic => mimic(&mut scene, style, rng),
    }
    let crack_chance = if kind == PatchKind::Stroma { 0.5 } else { 0.2 };
    if rng.random_bool(crack_chance) {
        add_cracks(&mut scene, rng);
    }
    add_tumour_nuclei(&mut scene, rng);
    if scene.space.as_ref().is_some_and(|s| s.membrane.is_some()) {
        add_endothelium(&mut scene, style.lining_visibility, rng);
    }
    add_stromal_cells(&mut scene, rng);
    scene
}

fn stroma(rng: &mut impl Rng) -> Stroma {
    Stroma {
        angle: rng.random_range(0.0..PI),
        density: rng.random_range(0.45..0.7),
        across: rng.random_range(22.0..36.0),
        along: rng.random_range(2.0..4.0),
        warp: rng.random_range(0.03..0.12),
        noise: ValueNoise::new(rng.next_u64()),
    }
}

/// A point near the patch centre.
fn near_centre(rng: &mut impl Rng, spread: f32) -> Point {
    jitter(rng, [0.5, 0.5], spread)
}

/// A point within `spread` of `around` in each coordinate.
fn jitter(rng: &mut impl Rng, around: Point, spread: f32) -> Point {
    [
        around[0] + rng.random_range(-spread..spread),
        around[1] + rng.random_range(-spread..spread),
    ]
}

/// Random harmonics `k` with amplitudes up to `rel[i] * radius`.
fn wobble(rng: &mut impl Rng, radius: f32, rel: &[(f32, f32)]) -> Vec<Harmonic> {
    rel.iter()
        .map(|&(k, max)| Harmonic {
            k,
            amp: radius * rng.random_range(0.0..=max),
            phase: rng.random_range(0.0..TAU),
        })
        .collect()
}

/// A lobulated tumour nest outline.
fn nest_blob(rng: &mut impl Rng, centre: Point, radius: f32) -> Blob {
    Blob {
        centre,
        radius,
        terms: wobble(
            rng,
            radius,
            &[(2.0, 0.12), (3.0, 0.08), (4.0, 0.05), (5.0, 0.04)],
        ),
    }
}

/// A vessel outline: an oval, sometimes flattened to a slit.
fn vessel_blob(rng: &mut impl Rng, centre: Point, radius: f32, max_flatten: f32) -> Blob {
    Blob {
        centre,
        radius,
        terms: wobble(rng, radius, &[(2.0, max_flatten), (3.0, 0.06), (4.0, 0.03)]),
    }
}

fn cytoplasm(rng: &mut impl Rng, blob: Blob, clip_gap: Option<f32>) -> Cluster {
    Cluster {
        blob,
        clip_gap,
        cyto_h: rng.random_range(0.10..0.18),
        cyto_e: rng.random_range(0.30..0.45),
    }
}

/// Lymphatic/blood vessel wall: fluid, membrane and rim drawn alike for every lined space.
fn lined_space(rng: &mut impl Rng, blob: Blob, lining_visibility: f32) -> Space {
    Space {
        blob,
        fluid: rng.random_range(0.0..0.08),
        // Thinner as it fades, and none at all at visibility 0 (a band of
        // zero width would still shade the wall).
        membrane: Some(lining_visibility * rng.random_range(0.006..0.010))
            .filter(|_| lining_visibility > 0.0),
        rim: rng.random_range(0.0..0.15),
    }
}

fn tumour_nest(scene: &mut Scene, rng: &mut impl Rng) {
    let centre = near_centre(rng, 0.1);
    let radius = rng.random_range(0.17..0.32);
    let blob = nest_blob(rng, centre, radius);
    if rng.random_bool(0.25) {
        // A small glandular lumen: white space lined by tumour cells, not endothelium.
        let gland_centre = jitter(rng, centre, 0.3 * radius);
        let gland_radius = rng.random_range(0.03..0.06);
        scene.gland = Some(Blob {
            centre: gland_centre,
            radius: gland_radius,
            terms: wobble(rng, gland_radius, &[(2.0, 0.2), (3.0, 0.1)]),
        });
    }
    scene.cluster = Some(cytoplasm(rng, blob, None));
}

fn empty_vessel(scene: &mut Scene, style: &SceneStyle, rng: &mut impl Rng) {
    let centre = near_centre(rng, 0.1);
    let radius = rng.random_range(0.16..0.33);
    let vessel = vessel_blob(rng, centre, radius, 0.4);
    let space = lined_space(rng, vessel, style.lining_visibility);
    scene.space = Some(space);
    if rng.random_bool(0.5) {
        let count = rng.random_range(1..=8);
        add_red_cells(scene, rng, count);
    }
}

/// A tumour cluster in a clear space, the geometry invasion and mimic share:
/// the space's outer radius, the clear width around the cluster and the
/// cluster itself come from one distribution for both kinds.
struct ClusterInSpace {
    /// Centre of the space.
    centre: Point,
    /// Mean outer radius of the space.
    radius: f32,
    /// Mean clear width between cluster and wall.
    gap: f32,
    /// Where the cluster sits relative to `centre` in a vessel lumen (an
    /// embolus floats off-centre, so the lumen around it is a crescent).
    offset: Point,
    /// The lumen's own oval outline terms (invasion; the mimic's share of
    /// lumen likeness).
    lumen_terms: Vec<Harmonic>,
}

impl ClusterInSpace {
    fn sample(rng: &mut impl Rng, style: &SceneStyle) -> Self {
        let centre = near_centre(rng, 0.08);
        let radius = rng.random_range(0.22..0.34);
        let filled = rng.random_bool(f64::from(style.filled_fraction));
        let share = if filled { 0.04..0.12f32 } else { 0.35..1.0f32 };
        let gap = style.space_width * rng.random_range(share);
        let direction = rng.random_range(0.0..TAU);
        let shift = gap * rng.random_range(0.3..0.9f32);
        let lumen_terms = vessel_blob(rng, centre, radius, 0.12).terms;
        Self {
            centre,
            radius,
            gap,
            offset: [shift * direction.cos(), shift * direction.sin()],
            lumen_terms,
        }
    }

    /// The cluster's outline, shifted by `offset_share` of the lumen offset.
    fn cluster(&self, rng: &mut impl Rng, offset_share: f32) -> Blob {
        let centre = [
            self.centre[0] + offset_share * self.offset[0],
            self.centre[1] + offset_share * self.offset[1],
        ];
        nest_blob(rng, centre, self.radius - self.gap)
    }
}

fn invasion(scene: &mut Scene, style: &SceneStyle, rng: &mut impl Rng) {
    let shape = ClusterInSpace::sample(rng, style);
    let lumen = Blob {
        centre: shape.centre,
        radius: shape.radius,
        terms: shape.lumen_terms.clone(),
    };
    let embolus = shape.cluster(rng, 1.0);
    // The embolus cannot pass the vessel wall.
    let clip_gap = rng.random_range(0.006..0.015);
    scene.space = Some(lined_space(rng, lumen, style.lining_visibility));
    scene.cluster = Some(cytoplasm(rng, embolus, Some(clip_gap)));
    if rng.random_bool(0.3) {
        let count = rng.random_range(1..=4);
        add_red_cells(scene, rng, count);
    }
}

fn mimic(scene: &mut Scene, style: &SceneStyle, rng: &mut impl Rng) {
    let shape = ClusterInSpace::sample(rng, style);
    let likeness = style.mimic_lumen_likeness;
    let nest = shape.cluster(rng, likeness);
    // Retraction: the stroma shrank away from the nest, leaving a cleft of
    // nearly even width that follows the nest outline (same harmonics), with
    // a slow variation that narrows it on one side. Towards lumen likeness
    // 1 the outline blends into the oval a vessel lumen would have.
    let follow = 1.0 - likeness;
    let mut terms: Vec<Harmonic> = nest
        .terms
        .iter()
        .chain(&wobble(rng, shape.gap, &[(1.0, 0.25), (2.0, 0.15)]))
        .map(|t| Harmonic {
            amp: follow * t.amp,
            ..*t
        })
        .collect();
    terms.extend(shape.lumen_terms.iter().map(|t| Harmonic {
        amp: likeness * t.amp,
        ..*t
    }));
    let cleft = Blob {
        centre: shape.centre,
        radius: shape.radius,
        terms,
    };
    let clip_gap = rng.random_range(0.006..0.015);
    scene.space = Some(Space {
        blob: cleft,
        fluid: rng.random_range(0.0..0.03),
        membrane: None,
        rim: rng.random_range(0.0..0.15),
    });
    scene.cluster = Some(cytoplasm(rng, nest, Some(clip_gap)));
}

/// Red cells in the free part of the clear space.
fn add_red_cells(scene: &mut Scene, rng: &mut impl Rng, count: usize) {
    let Some(space) = &scene.space else { return };
    let blob = space.blob.clone();
    for _ in 0..count * 20 {
        if scene.red_cells.len() >= count {
            break;
        }
        let radius = rng.random_range(0.022..0.028);
        let reach = blob.radius * 1.5;
        let p = [
            blob.centre[0] + rng.random_range(-reach..reach),
            blob.centre[1] + rng.random_range(-reach..reach),
        ];
        let free = blob.sdf(p) < -radius - 0.012 && scene.cluster_cover(p, radius + 0.01) == 0.0;
        let apart = scene
            .red_cells
            .iter()
            .all(|c| dist(c.centre, p) > 1.6 * radius);
        if free && apart {
            scene.red_cells.push(RedCell { centre: p, radius });
        }
    }
}

/// Tumour nuclei packed into the cluster by dart throwing.
fn add_tumour_nuclei(scene: &mut Scene, rng: &mut impl Rng) {
    let Some(cluster) = &scene.cluster else {
        return;
    };
    let blob = cluster.blob.clone();
    let mean = rng.random_range(0.028..0.04f32);
    // Crowded: neighbouring nuclei nearly touch, sizes vary (pleomorphism).
    let spacing = mean * rng.random_range(1.8..2.2f32);
    let reach = blob.radius * 1.4;
    let mut placed: Vec<Nucleus> = Vec::new();
    for _ in 0..600 {
        let p = [
            blob.centre[0] + rng.random_range(-reach..reach),
            blob.centre[1] + rng.random_range(-reach..reach),
        ];
        let r = mean * rng.random_range(0.75..1.3f32);
        // Inside the cluster with most of the nucleus, and not in a gland lumen.
        let fits = scene.cluster_cover(p, 0.0) > 0.5
            && blob.sdf(p) < -0.5 * r
            && scene
                .cluster
                .as_ref()
                .and_then(|c| c.clip_gap)
                .is_none_or(|g| {
                    scene
                        .space
                        .as_ref()
                        .is_none_or(|s| s.blob.sdf(p) + g < -0.5 * r)
                })
            && scene.gland.as_ref().is_none_or(|g| g.sdf(p) > 0.6 * r);
        if fits
            && placed
                .iter()
                .all(|n| dist(n.centre, p) > spacing * (0.5 + 0.5 * (r + n.a) / (2.0 * mean)))
        {
            let aspect = rng.random_range(1.0..1.3f32);
            placed.push(Nucleus {
                centre: p,
                a: r * aspect.sqrt(),
                b: r / aspect.sqrt(),
                angle: rng.random_range(0.0..PI),
                density: rng.random_range(0.85..1.25),
                texture: 0.5,
                opacity: 1.0,
            });
        }
    }
    scene.nuclei.extend(placed);
}

/// Flat endothelial nuclei along the wall of a lined space, tangential,
/// bulging slightly into the lumen, at irregular intervals with some gaps.
fn add_endothelium(scene: &mut Scene, visibility: f32, rng: &mut impl Rng) {
    let Some(space) = &scene.space else { return };
    let blob = &space.blob;
    let spacing = rng.random_range(0.11..0.17f32);
    let count = ((blob.perimeter(128) / spacing).round() as usize).max(3);
    let start = rng.random_range(0.0..TAU);
    for i in 0..count {
        let theta = start + TAU * (i as f32 + rng.random_range(-0.25..0.25f32)) / count as f32;
        if rng.random_bool(0.15) {
            continue;
        }
        let normal = blob.normal(theta);
        let edge = blob.boundary(theta);
        let b = rng.random_range(0.011..0.015f32);
        scene.nuclei.push(Nucleus {
            centre: [edge[0] + 0.3 * b * normal[0], edge[1] + 0.3 * b * normal[1]],
            a: rng.random_range(0.035..0.05),
            b,
            angle: normal[1].atan2(normal[0]) + PI / 2.0,
            density: rng.random_range(1.0..1.4),
            texture: 0.2,
            opacity: visibility,
        });
    }
}

/// Fibroblasts (flat, along the fibres) and lymphocytes (small, round, dark)
/// scattered in the stroma, the same for every kind.
fn add_stromal_cells(scene: &mut Scene, rng: &mut impl Rng) {
    let fibroblasts = rng.random_range(1..=6);
    let lymphocytes = rng.random_range(0..=4);
    let fibre_angle = scene.stroma.angle;
    for _ in 0..fibroblasts {
        if let Some(p) = stroma_point(scene, rng) {
            scene.nuclei.push(Nucleus {
                centre: p,
                a: rng.random_range(0.03..0.05),
                b: rng.random_range(0.008..0.012),
                angle: fibre_angle + rng.random_range(-0.3..0.3f32),
                density: rng.random_range(0.9..1.3),
                texture: 0.2,
                opacity: 1.0,
            });
        }
    }
    for _ in 0..lymphocytes {
        if let Some(p) = stroma_point(scene, rng) {
            let r = rng.random_range(0.017..0.022);
            scene.nuclei.push(Nucleus {
                centre: p,
                a: r,
                b: r,
                angle: 0.0,
                density: rng.random_range(1.4..1.7),
                texture: 0.1,
                opacity: 1.0,
            });
        }
    }
}

/// A random point in plain stroma, or `None` if a few tries all hit a structure.
fn stroma_point(scene: &Scene, rng: &mut impl Rng) -> Option<Point> {
    (0..10)
        .map(|_| [rng.random_range(0.0..1.0f32), rng.random_range(0.0..1.0f32)])
        .find(|&p| scene.in_stroma(p, 0.04))
}

/// One or two white elongated cracks along the fibres (no lining, no content).
fn add_cracks(scene: &mut Scene, rng: &mut impl Rng) {
    for _ in 0..rng.random_range(1..=2) {
        let p = [rng.random_range(0.1..0.9f32), rng.random_range(0.1..0.9f32)];
        if scene.in_stroma(p, 0.05) {
            scene.cracks.push(Crack {
                centre: p,
                a: rng.random_range(0.06..0.16),
                b: rng.random_range(0.008..0.025),
                angle: scene.stroma.angle + rng.random_range(-0.3..0.3f32),
            });
        }
    }
}

fn dist(a: Point, b: Point) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}
