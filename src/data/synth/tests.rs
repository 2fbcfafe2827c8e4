use super::*;
use clap::Parser;
use rand::seq::SliceRandom;
use std::collections::BTreeMap;
use std::fs;

#[derive(clap::Parser)]
struct Wrapper {
    #[command(flatten)]
    config: SynthConfig,
}

fn small(seed: u64) -> SynthConfig {
    SynthConfig {
        seed,
        size: 32,
        hard_patches: 40,
        hard_slides: 4,
        pool_patches: 30,
        pool_slides: 3,
        pool_mimic_fraction: 0.4,
        hard_mimic_fraction: 0.2,
        ..SynthConfig::default()
    }
}

/// Every file under `root`, relative path -> bytes.
fn read_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                files.insert(rel, fs::read(&path).unwrap());
            }
        }
    }
    files
}

#[derive(Debug, Deserialize)]
struct Row {
    path: String,
    source: String,
    label: String,
    slide: String,
    kind: String,
}

fn read_manifest(root: &Path) -> Vec<Row> {
    let mut reader = csv::Reader::from_path(root.join(MANIFEST_FILE)).unwrap();
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        ["path", "source", "label", "slide", "kind"]
    );
    reader.deserialize().map(|r| r.unwrap()).collect()
}

#[test]
fn default_matches_clap_defaults() {
    let parsed = Wrapper::try_parse_from(["synth"]).unwrap().config;
    assert_eq!(parsed, SynthConfig::default());
    let flagged = Wrapper::try_parse_from(["synth", "--seed", "7", "--nest-share", "0.5"])
        .unwrap()
        .config;
    assert_eq!(
        flagged,
        SynthConfig {
            seed: 7,
            nest_share: 0.5,
            ..SynthConfig::default()
        }
    );
}

#[test]
fn serde_fills_defaults_and_rejects_unknown_keys() {
    let config: SynthConfig = toml::from_str("seed = 3\nsize = 224").unwrap();
    assert_eq!(
        config,
        SynthConfig {
            seed: 3,
            size: 224,
            ..SynthConfig::default()
        }
    );
    let err = toml::from_str::<SynthConfig>("sead = 3")
        .unwrap_err()
        .to_string();
    assert!(err.contains("sead"), "{err}");
}

#[test]
fn default_counts_by_hand() {
    let config = SynthConfig::default();
    // Hard: 300 positive; 700 negatives, 105 mimics; 595 split 0.40/0.35/0.25
    // = 238 / 208.25 / 148.75, the remainder goes to the largest fraction (vessel).
    assert_eq!(config.kind_counts(Source::Hard), [300, 238, 208, 149, 105]);
    // Pool: 375 mimics; 1125 split = 450 / 393.75 / 281.25.
    assert_eq!(config.kind_counts(Source::Weak), [0, 450, 394, 281, 375]);
}

#[test]
fn apportion_is_exact_and_breaks_ties_by_order() {
    assert_eq!(apportion(10, &[1.0, 1.0, 1.0]), vec![4, 3, 3]);
    assert_eq!(apportion(7, &[0.5, 0.0, 0.5]), vec![4, 0, 3]);
    assert_eq!(apportion(0, &[1.0, 2.0]), vec![0, 0]);
    assert_eq!(apportion(5, &[0.0, 0.0]), vec![0, 0]);
    assert_eq!(round_count(5, 0.5), 3);
    assert_eq!(round_count(1000, 0.3), 300);
}

#[test]
fn validation_names_field_and_value() {
    let cases = [
        (
            SynthConfig {
                positive_fraction: 1.5,
                ..SynthConfig::default()
            },
            "positive_fraction",
            "1.5",
        ),
        (
            SynthConfig {
                pool_mimic_fraction: -0.1,
                ..SynthConfig::default()
            },
            "pool_mimic_fraction",
            "-0.1",
        ),
        (
            SynthConfig {
                size: 16,
                ..SynthConfig::default()
            },
            "size",
            "16",
        ),
        (
            SynthConfig {
                hard_patches: 0,
                ..SynthConfig::default()
            },
            "hard_patches",
            "= 0",
        ),
        (
            SynthConfig {
                pool_slides: 2000,
                ..SynthConfig::default()
            },
            "pool_slides",
            "2000",
        ),
        (
            SynthConfig {
                vessel_share: f64::NAN,
                ..SynthConfig::default()
            },
            "vessel_share",
            "NaN",
        ),
        (
            SynthConfig {
                stroma_share: 0.0,
                nest_share: 0.0,
                vessel_share: 0.0,
                ..SynthConfig::default()
            },
            "stroma_share",
            "0",
        ),
    ];
    for (config, field, value) in cases {
        let err = config.validate().unwrap_err();
        assert!(
            matches!(err, SynthError::InvalidConfig { field: f, .. } if f == field),
            "{err}"
        );
        let message = err.to_string();
        assert!(
            message.contains(field) && message.contains(value),
            "{message}"
        );
        assert!(
            message.contains(&format!("--{}", field.replace('_', "-"))),
            "{message}"
        );
    }
    assert!(SynthConfig::default().validate().is_ok());
}

#[test]
fn same_seed_gives_identical_bytes_for_any_thread_count() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(&small(5), a.path()).unwrap();
    let single = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    single.install(|| generate(&small(5), b.path())).unwrap();
    let (files_a, files_b) = (read_tree(a.path()), read_tree(b.path()));
    // Patches, manifest and preview.
    assert_eq!(files_a.len(), 40 + 30 + 2);
    assert!(
        files_a == files_b,
        "same config must give byte-identical files"
    );
    // Regenerating into the same folder is allowed and changes nothing.
    generate(&small(5), a.path()).unwrap();
    assert!(read_tree(a.path()) == files_a);
}

#[test]
fn different_seed_gives_different_dataset() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(&small(1), a.path()).unwrap();
    generate(&small(2), b.path()).unwrap();
    let (files_a, files_b) = (read_tree(a.path()), read_tree(b.path()));
    assert_ne!(
        files_a.keys().collect::<Vec<_>>(),
        files_b.keys().collect::<Vec<_>>()
    );
    let bytes_a: BTreeSet<&Vec<u8>> = files_a.values().collect();
    assert!(
        files_b.values().all(|bytes| !bytes_a.contains(bytes)),
        "no patch may repeat across seeds"
    );
}

#[test]
fn manifest_counts_names_and_files_agree() {
    let dir = tempfile::tempdir().unwrap();
    let config = small(9);
    let summary = generate(&config, dir.path()).unwrap();
    let rows = read_manifest(dir.path());
    let files = read_tree(dir.path());

    // Rows sorted by path, one per file, nothing else on disk.
    let paths: Vec<&str> = rows.iter().map(|r| r.path.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    let on_disk: Vec<&str> = files
        .keys()
        .map(String::as_str)
        .filter(|p| *p != MANIFEST_FILE && *p != preview::PREVIEW_FILE)
        .collect();
    assert_eq!(paths, on_disk);
    assert!(files.contains_key(preview::PREVIEW_FILE));

    // Exact counts: 40 hard = 12 positive + 28 negative (mimics round(5.6) = 6,
    // 22 split 0.40/0.35/0.25 = 8.8/7.7/5.5 -> 9/8/5); pool 30 = 12 mimics + 18
    // split 7.2/6.3/4.5 -> 7/6/5.
    let mut counts: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for row in &rows {
        *counts
            .entry((row.source.clone(), row.label.clone(), row.kind.clone()))
            .or_default() += 1;
    }
    let expect = |source: &str, label: &str, kind: &str| {
        counts
            .get(&(source.into(), label.into(), kind.into()))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(expect("hard", "positive", "invasion"), 12);
    assert_eq!(expect("hard", "negative", "mimic"), 6);
    assert_eq!(expect("hard", "negative", "stroma"), 9);
    assert_eq!(expect("hard", "negative", "tumour-nest"), 8);
    assert_eq!(expect("hard", "negative", "empty-vessel"), 5);
    assert_eq!(expect("weak", "negative", "mimic"), 12);
    assert_eq!(expect("weak", "negative", "stroma"), 7);
    assert_eq!(expect("weak", "negative", "tumour-nest"), 6);
    assert_eq!(expect("weak", "negative", "empty-vessel"), 5);
    assert_eq!(counts.values().sum::<usize>(), 70);
    assert_eq!(
        summary.hard,
        KindCounts {
            invasion: 12,
            stroma: 9,
            tumour_nest: 8,
            empty_vessel: 5,
            mimic: 6
        }
    );
    assert_eq!(
        summary.pool,
        KindCounts {
            invasion: 0,
            stroma: 7,
            tumour_nest: 6,
            empty_vessel: 5,
            mimic: 12
        }
    );

    // File names: {pos|neg}_{slide}_{x-y}.png and {slide}_{x-y}.png, agreeing with the row.
    let mut hard_slides = BTreeSet::new();
    let mut pool_slides = BTreeSet::new();
    for row in &rows {
        let (folder, name) = row.path.split_once('/').unwrap();
        let stem = name.strip_suffix(".png").unwrap();
        let parts: Vec<&str> = stem.split('_').collect();
        let (slide, coords) = match (folder, row.source.as_str()) {
            (HARD_DIR, "hard") => {
                assert_eq!(parts.len(), 3, "{name}");
                let prefix = if row.label == "positive" {
                    "pos"
                } else {
                    "neg"
                };
                assert_eq!(parts[0], prefix, "{name}");
                assert_eq!(row.label == "positive", row.kind == "invasion");
                hard_slides.insert(parts[1]);
                (parts[1], parts[2])
            }
            (WEAK_DIR, "weak") => {
                assert_eq!(parts.len(), 2, "{name}");
                assert_eq!(row.label, "negative");
                pool_slides.insert(parts[0]);
                (parts[0], parts[1])
            }
            other => panic!("unexpected folder/source {other:?}"),
        };
        assert_eq!(slide, row.slide);
        let (x, y) = coords.split_once('-').unwrap();
        assert!(
            x.parse::<u64>().is_ok() && y.parse::<u64>().is_ok(),
            "{name}"
        );
        let image = image::load_from_memory(&files[&row.path]).unwrap();
        assert_eq!((image.width(), image.height()), (32, 32));
    }
    assert_eq!(
        hard_slides.into_iter().collect::<Vec<_>>(),
        ["S01", "S02", "S03", "S04"]
    );
    assert_eq!(
        pool_slides.into_iter().collect::<Vec<_>>(),
        ["W01", "W02", "W03"]
    );
}

#[test]
fn plan_spreads_patches_over_slides_with_unique_coordinates() {
    let planned = plan(&SynthConfig::default()).unwrap();
    let mut per_slide: BTreeMap<&str, Vec<&PlannedPatch>> = BTreeMap::new();
    for patch in &planned {
        per_slide.entry(&patch.slide).or_default().push(patch);
    }
    assert_eq!(per_slide.len(), 48 + 40);
    for (slide, patches) in &per_slide {
        let coords: BTreeSet<(u64, u64)> = patches.iter().map(|p| (p.x, p.y)).collect();
        assert_eq!(
            coords.len(),
            patches.len(),
            "duplicate coordinates on {slide}"
        );
        // About 21 (hard) or 37 (pool) patches per slide: every slide gets a mix.
        let kinds: BTreeSet<PatchKind> = patches.iter().map(|p| p.kind).collect();
        assert!(kinds.len() >= 2, "{slide} has only {kinds:?}");
    }
    let paths: HashSet<String> = planned.iter().map(PlannedPatch::path).collect();
    assert_eq!(paths.len(), planned.len());
}

#[test]
fn foreign_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join(HARD_DIR)).unwrap();
    fs::write(dir.path().join(HARD_DIR).join("neg_X01_0-0.png"), b"old").unwrap();
    let err = generate(&small(1), dir.path()).unwrap_err();
    assert!(
        matches!(err, SynthError::StaleFiles { count: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("neg_X01_0-0.png"));
    assert!(!dir.path().join(MANIFEST_FILE).exists());
}

/// Mean RGB of an image.
fn mean_rgb(image: &image::RgbImage) -> [f64; 3] {
    let n = (image.width() * image.height()) as f64;
    std::array::from_fn(|c| image.pixels().map(|p| p.0[c] as f64).sum::<f64>() / n)
}

#[test]
fn larger_sizes_draw_the_same_scene() {
    for (i, kind) in PatchKind::ALL.into_iter().enumerate() {
        let small = render_patch(
            kind,
            &SceneStyle::default(),
            &Stain::reference(),
            64,
            &mut stream(3, "test", &[i as u64]),
        );
        let large = render_patch(
            kind,
            &SceneStyle::default(),
            &Stain::reference(),
            224,
            &mut stream(3, "test", &[i as u64]),
        );
        let (a, b) = (mean_rgb(&small), mean_rgb(&large));
        for c in 0..3 {
            assert!((a[c] - b[c]).abs() < 4.0, "{kind:?}: {a:?} vs {b:?}");
        }
    }
}

#[test]
fn scenes_have_the_structures_of_their_kind() {
    let style = SynthConfig::default().scene_style();
    for i in 0..30 {
        let mut rng = stream(4, "test-scene", &[i]);
        let invasion = build_scene(PatchKind::Invasion, &style, &mut rng);
        let space = invasion.space.as_ref().unwrap();
        assert!(space.membrane.is_some());
        // Endothelial nuclei are the flat ones sitting on the lumen outline.
        let lining = invasion
            .nuclei
            .iter()
            .filter(|n| space.blob.sdf(n.centre).abs() < 0.01)
            .count();
        assert!(lining >= 3, "invasion {i}: {lining} lining nuclei");
        let cluster = invasion.cluster.as_ref().unwrap();
        // The embolus stays inside the lumen: every tumour nucleus (round, in
        // the cluster outline) is in it.
        let tumour: Vec<_> = invasion
            .nuclei
            .iter()
            .filter(|n| n.b > 0.016 && cluster.blob.sdf(n.centre) < 0.0)
            .collect();
        assert!(
            tumour.len() >= 3,
            "invasion {i}: {} tumour nuclei",
            tumour.len()
        );
        assert!(tumour.iter().all(|n| space.blob.sdf(n.centre) < 0.0));

        let mimic = build_scene(PatchKind::Mimic, &style, &mut rng);
        let halo = mimic.space.as_ref().unwrap();
        assert!(halo.membrane.is_none());
        // No flat (endothelium-like) nucleus sits on the cleft outline.
        let flat = |n: &&draw::Nucleus| n.b < 0.016 && n.a > 0.025;
        assert!(mimic
            .nuclei
            .iter()
            .filter(flat)
            .all(|n| halo.blob.sdf(n.centre).abs() > 0.01));

        let nest = build_scene(PatchKind::TumourNest, &style, &mut rng);
        assert!(nest.space.is_none() && nest.cluster.is_some());
        let vessel = build_scene(PatchKind::EmptyVessel, &style, &mut rng);
        assert!(vessel.cluster.is_none() && vessel.space.as_ref().unwrap().membrane.is_some());
        let stroma = build_scene(PatchKind::Stroma, &style, &mut rng);
        assert!(stroma.cluster.is_none() && stroma.space.is_none());
    }
}

#[test]
fn every_run_of_patches_carries_each_kind_in_proportion() {
    let counts = [300, 280, 245, 140, 35];
    let total: usize = counts.iter().sum();
    let kinds = interleave_kinds(&mut stream(3, "test-interleave", &[]), counts);
    for (k, &n) in PatchKind::ALL.iter().zip(&counts) {
        assert_eq!(kinds.iter().filter(|&&x| x == *k).count(), n);
    }
    // Jittered systematic sampling: any window holds its expected count of
    // each kind within 2, whatever its start and length.
    for len in [7usize, 21, 60, 200] {
        for start in (0..total - len).step_by(13) {
            for (k, &n) in PatchKind::ALL.iter().zip(&counts) {
                let got = kinds[start..start + len]
                    .iter()
                    .filter(|&&x| x == *k)
                    .count();
                let expected = (len * n) as f64 / total as f64;
                assert!(
                    (got as f64 - expected).abs() <= 2.0,
                    "{k:?}: {got} in [{start}, {}), expected {expected:.1}",
                    start + len
                );
            }
        }
    }
    // A plain shuffle would not: it is the interleave that holds.
    let mut shuffled = kinds.clone();
    shuffled.shuffle(&mut stream(3, "test-interleave-shuffle", &[]));
    let windows_off = (0..total - 60).step_by(13).any(|start| {
        let got = shuffled[start..start + 60]
            .iter()
            .filter(|&&x| x == PatchKind::Mimic)
            .count();
        (got as f64 - 60.0 * 35.0 / 1000.0).abs() > 2.0
    });
    assert!(windows_off);
}

#[test]
fn lining_visibility_zero_removes_the_lining_and_one_draws_it_opaque() {
    let style_with = |lining_visibility| SceneStyle {
        lining_visibility,
        ..SynthConfig::default().scene_style()
    };
    for i in 0..20 {
        for (kind, visibility) in [
            (PatchKind::Invasion, 0.0),
            (PatchKind::EmptyVessel, 0.0),
            (PatchKind::Invasion, 1.0),
        ] {
            let scene = build_scene(
                kind,
                &style_with(visibility),
                &mut stream(5, "test-lining", &[i]),
            );
            let space = scene.space.as_ref().unwrap();
            // Endothelial nuclei: the flat ones sitting on the wall.
            let lining = scene
                .nuclei
                .iter()
                .filter(|n| space.blob.sdf(n.centre).abs() < 0.01 && n.b < 0.016)
                .count();
            if visibility == 0.0 {
                assert!(space.membrane.is_none(), "{kind:?} {i}");
                assert_eq!(lining, 0, "{kind:?} {i}");
            } else {
                assert!(space.membrane.is_some_and(|t| t > 0.005), "{kind:?} {i}");
                assert!(lining >= 3, "{kind:?} {i}: {lining} lining nuclei");
                assert!(
                    scene.nuclei.iter().all(|n| n.opacity == 1.0),
                    "{kind:?} {i}"
                );
            }
        }
    }
}

#[test]
fn filled_clusters_leave_a_hairline_and_open_ones_a_space() {
    for (filled_fraction, low, high) in [(1.0f32, 0.04, 0.12), (0.0, 0.35, 1.0)] {
        let style = SceneStyle {
            filled_fraction,
            ..SynthConfig::default().scene_style()
        };
        for i in 0..20 {
            for kind in [PatchKind::Invasion, PatchKind::Mimic] {
                let scene = build_scene(kind, &style, &mut stream(6, "test-filled", &[i]));
                let space = scene.space.as_ref().unwrap();
                let cluster = scene.cluster.as_ref().unwrap();
                let gap = space.blob.radius - cluster.blob.radius;
                let (lo, hi) = (low * style.space_width, high * style.space_width);
                assert!(
                    gap >= lo - 1e-6 && gap <= hi + 1e-6,
                    "{kind:?} {i}: gap {gap} outside [{lo}, {hi}]"
                );
            }
        }
    }
}

#[test]
fn space_width_is_capped_where_the_cluster_still_fits() {
    let config = SynthConfig {
        space_width: 0.16,
        ..SynthConfig::default()
    };
    let error = config.validate().unwrap_err().to_string();
    assert!(error.contains("space_width"), "{error}");
}
