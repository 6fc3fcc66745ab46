//! The paper's similarity on the GPU (`tied::share::Similarity`) against the f64 twin
//! `tied::share::discover::similarity`: random groups of every layout, magnitudes across the
//! f32 range (huge, tiny, subnormal, mixed), bad input, and tie discovery on the GPU path.

mod common;

use std::sync::OnceLock;

use tied::growl::GroupLayout;
use tied::share::discover::{similarity, DiscoverTies};
use tied::share::Similarity;
use tied::verify::Rng;
use tied::Error;

fn sim() -> &'static Similarity {
    static S: OnceLock<Similarity> = OnceLock::new();
    S.get_or_init(|| Similarity::with_conv(common::conv()).expect("similarity pipelines"))
}

/// GPU against the twin: `|gpu - twin| <= tol` everywhere, the diagonal exactly 1.
fn check(layout: GroupLayout, w: &[f32], groups: &[usize], tol: f64) {
    let got = sim().similarity_blocking(layout, w, groups).unwrap();
    let want = similarity(layout, w, groups).unwrap();
    let m = groups.len();
    assert_eq!(got.len(), m * m);
    for a in 0..m {
        assert_eq!(got[a * m + a], 1.0, "diagonal {a}");
        for b in 0..m {
            let (g, t) = (f64::from(got[a * m + b]), want[a * m + b]);
            assert!(
                (g - t).abs() <= tol,
                "{layout:?}: S[{a}][{b}] is {g}, the f64 twin gives {t}"
            );
        }
    }
}

#[test]
fn random_groups_of_every_layout_match_the_twin() {
    let _serial = common::serial();
    let layouts = common::layouts_of_each_kind([30, 41], [37, 9], [6, 11, 25]);
    for (case, layout) in layouts.into_iter().enumerate() {
        let mut rng = Rng::new(90 + case as u64);
        let mut w = rng.vec(layout.len());
        // Group 1 is a multiple of group 0, group 2 its negative: S = 1/4 (scaled by 2) and -1.
        let n = layout.groups();
        for e in 0..w.len() {
            match layout.group_of(e) {
                1 => w[e] = 2.0 * w[e - first_offset(layout)],
                2 => w[e] = -w[e - 2 * first_offset(layout)],
                _ => {}
            }
        }
        // Every other group, in a shuffled order (the output follows the listed order).
        let mut groups: Vec<usize> = (0..n).filter(|g| g % 2 == 0 || *g < 3).collect();
        groups.reverse();
        check(layout, &w, &groups, 2e-6);
        let s = sim().similarity_blocking(layout, &w, &[0, 1, 2]).unwrap();
        assert!(
            (s[1] - 0.5).abs() < 1e-6 && (s[2] + 1.0).abs() < 1e-6,
            "{s:?}"
        );
        // Bitwise reproducible.
        assert_eq!(
            s,
            sim().similarity_blocking(layout, &w, &[0, 1, 2]).unwrap()
        );
    }
}

/// The distance between element `o, g, i` of group `g` and of group `g + 1`.
fn first_offset(layout: GroupLayout) -> usize {
    match layout {
        GroupLayout::Rows { cols, .. } => cols,
        GroupLayout::Columns { .. } => 1,
        GroupLayout::ConvInChannels { khw, .. } => khw,
    }
}

#[test]
fn magnitudes_across_the_f32_range() {
    let _serial = common::serial();
    let layout = GroupLayout::Rows { rows: 8, cols: 16 };
    let mut rng = Rng::new(7);
    let base = rng.vec(16);
    // Rows: huge, tiny, subnormal, the same direction at wildly different scales, mixed.
    let scales = [
        1e30f32,
        1e-30,
        1e-41,
        3e38,
        1.0,
        1e20,
        1e-20,
        2.0f32.powi(-140),
    ];
    let mut w = Vec::new();
    for (r, &sc) in scales.iter().enumerate() {
        let noise = rng.vec(16);
        for c in 0..16 {
            let dir = if r % 2 == 0 {
                base[c]
            } else {
                base[c] + 0.3 * noise[c]
            };
            w.push((f64::from(dir) * f64::from(sc) / 4.0) as f32);
        }
    }
    let groups: Vec<usize> = (0..8).collect();
    // Subnormal rows carry few bits: their similarities agree to their own precision.
    let got = sim().similarity_blocking(layout, &w, &groups).unwrap();
    let want = similarity(layout, &w, &groups).unwrap();
    for (k, (&g, &t)) in got.iter().zip(&want).enumerate() {
        assert!(g.is_finite(), "S[{k}] is {g}");
        let tol = if [2usize, 7].contains(&(k / 8)) || [2usize, 7].contains(&(k % 8)) {
            1e-2
        } else {
            2e-6
        };
        assert!(
            (f64::from(g) - t).abs() <= tol,
            "S[{}][{}] is {g}, the twin {t}",
            k / 8,
            k % 8
        );
    }
    // Rows 0 and 4 point the same way at scales 1e30 and 1: S = 1e-30 (not 0/0, not NaN).
    assert!(got[4] > 0.0 && got[4] < 1e-29, "{}", got[4]);
    assert!((got[4 * 8] - got[4]).abs() <= 1e-36);
    // The largest finite scale and a row 1e58 times smaller in one matrix.
    check(layout, &w, &[3, 1, 0], 2e-6);
}

#[test]
fn bad_input_is_an_error_and_no_groups_is_empty() {
    let _serial = common::serial();
    let layout = GroupLayout::Columns { rows: 3, cols: 4 };
    let mut w = vec![1.0f32; 12];
    assert_eq!(sim().similarity_blocking(layout, &w, &[]).unwrap(), []);
    assert!(matches!(
        sim().similarity_blocking(layout, &w[1..], &[0]),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        sim().similarity_blocking(layout, &w, &[4]),
        Err(Error::Shape(_))
    ));
    // Column 1 zero: excluded by the caller, else an error.
    for r in 0..3 {
        w[r * 4 + 1] = 0.0;
    }
    assert!(matches!(
        sim().similarity_blocking(layout, &w, &[0, 1]),
        Err(Error::Shape(_))
    ));
    w[2] = f32::NAN;
    assert!(matches!(
        sim().similarity_blocking(layout, &w, &[2]),
        Err(Error::Shape(_))
    ));
    w[2] = f32::INFINITY;
    assert!(sim().similarity_blocking(layout, &w, &[0, 2]).is_err());
}

#[test]
fn discovery_on_the_gpu_finds_the_same_ties() {
    let _serial = common::serial();
    // Three clusters of near-copies, two zero groups.
    let layout = GroupLayout::Rows { rows: 11, cols: 20 };
    let mut rng = Rng::new(3);
    let centres: Vec<Vec<f32>> = (0..3).map(|_| rng.vec(20)).collect();
    let mut w = Vec::new();
    for r in 0..11 {
        for &x in &centres[r % 3] {
            let zero = r == 4 || r == 9;
            w.push(if zero {
                0.0
            } else {
                x * (1.0 + 0.01 * rng.uniform())
            });
        }
    }
    let d = DiscoverTies::default();
    let cpu = d.discover(layout, &w).unwrap();
    let gpu = d.discover_on_blocking(sim(), layout, &w).unwrap();
    assert_eq!(gpu.zero, cpu.zero);
    assert_eq!(gpu.nonzero, cpu.nonzero);
    assert_eq!(gpu.map, cpu.map);
    assert_eq!(gpu.map.groups(), 3);
    let ids = gpu.map.ids();
    assert_eq!(ids[0], ids[3]);
    assert_ne!(ids[0], ids[1]);
}
