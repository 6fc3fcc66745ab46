//! `tied::share`: affinity propagation against scikit-learn's results on fixed matrices, tie
//! discovery, the sharing metrics, the paper's PLD weights and the IDX loader. CPU only.

use std::path::{Path, PathBuf};

use tied::growl::{GroupLayout, Weights};
use tied::share::affinity::{AffinityPropagation, Clustering, Noise, Preference, NO_LABEL};
use tied::share::discover::{self, DiscoverTies};
use tied::share::idx;
use tied::share::metrics::ShareMetrics;
use tied::tying::{cpu, TieLayout, UNTIED};
use tied::verify::Rng;
use tied::Error;

// ---------------------------------------------------------------------------------------------
// Affinity propagation

enum RefPref {
    Median,
    Scalar(f64),
    PerPoint(&'static [f64]),
}

struct ApResult {
    exemplars: &'static [usize],
    labels: &'static [i64],
    iterations: usize,
}

struct ApCase {
    name: &'static str,
    n: usize,
    f32: bool,
    s: &'static [f64],
    pref: RefPref,
    noise: ApResult,
    no_noise: ApResult,
}

include!("data/affinity_reference.rs");

fn fit_case(case: &ApCase, noise: Noise) -> Clustering {
    let preference = match case.pref {
        RefPref::Median => Preference::Median,
        RefPref::Scalar(p) => Preference::Scalar(p),
        RefPref::PerPoint(p) => Preference::PerPoint(p.to_vec()),
    };
    let ap = AffinityPropagation {
        noise,
        ..AffinityPropagation::with_preference(preference)
    };
    if case.f32 {
        let s: Vec<f32> = case.s.iter().map(|&v| v as f32).collect();
        assert!(s.iter().zip(case.s).all(|(&a, &b)| f64::from(a) == b));
        ap.fit_f32(case.n, &s).unwrap()
    } else {
        ap.fit(case.n, case.s).unwrap()
    }
}

fn check_against(case: &ApCase, got: &Clustering, want: &ApResult, mode: &str) {
    let labels: Vec<i64> = got
        .labels
        .iter()
        .map(|&l| if l == NO_LABEL { -1 } else { l as i64 })
        .collect();
    assert_eq!(
        got.exemplars, want.exemplars,
        "{} ({mode}): exemplars",
        case.name
    );
    assert_eq!(labels, want.labels, "{} ({mode}): labels", case.name);
    assert_eq!(
        got.iterations, want.iterations,
        "{} ({mode}): iterations",
        case.name
    );
    assert_eq!(
        got.converged,
        want.iterations < 200,
        "{} ({mode}): converged",
        case.name
    );
}

#[test]
fn affinity_matches_sklearn_random_state_0() {
    assert!(AP_CASES.len() >= 10);
    for case in AP_CASES {
        let got = fit_case(case, Noise::Sklearn { seed: 0 });
        check_against(case, &got, &case.noise, "random_state=0");
    }
}

#[test]
fn affinity_without_noise_matches_sklearn_without_noise() {
    for case in AP_CASES {
        let got = fit_case(case, Noise::Off);
        check_against(case, &got, &case.no_noise, "no noise");
    }
}

#[test]
fn affinity_reference_has_noise_dependent_and_unconverged_cases() {
    // The reference covers ties only the noise breaks, and a run that does not converge.
    let differ: Vec<&str> = AP_CASES
        .iter()
        .filter(|c| c.noise.labels != c.no_noise.labels)
        .map(|c| c.name)
        .collect();
    assert!(differ.contains(&"exact_duplicates"), "{differ:?}");
    assert!(AP_CASES.iter().any(|c| c.noise.iterations == 200));
    // Another seed moves the noise: on the duplicates the answer changes or stays, but it is
    // deterministic.
    let dup = AP_CASES
        .iter()
        .find(|c| c.name == "exact_duplicates")
        .unwrap();
    let a = fit_case(dup, Noise::Sklearn { seed: 7 });
    assert_eq!(a, fit_case(dup, Noise::Sklearn { seed: 7 }));
}

#[test]
fn affinity_well_separated_clusters() {
    // Three tight groups on a line, negative squared distances, median preference.
    let x = [0.0, 0.1, 0.2, 10.0, 10.1, 10.3, 20.0, 20.2];
    let n = x.len();
    let s: Vec<f64> = (0..n * n)
        .map(|e| -(x[e / n] - x[e % n]) * (x[e / n] - x[e % n]))
        .collect();
    let c = AffinityPropagation::default().fit(n, &s).unwrap();
    assert!(c.converged);
    assert_eq!(c.labels, [0, 0, 0, 1, 1, 1, 2, 2]);
    assert_eq!(c.members(), vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7]]);
    for (k, &e) in c.exemplars.iter().enumerate() {
        assert_eq!(c.labels[e], k);
    }
}

#[test]
fn affinity_errors_and_empty() {
    let ap = AffinityPropagation::default();
    let empty = ap.fit(0, &[]).unwrap();
    assert!(empty.labels.is_empty() && empty.exemplars.is_empty());
    assert_eq!(empty.iterations, 0);
    let one = ap.fit(1, &[3.0]).unwrap();
    assert_eq!((one.labels, one.exemplars), (vec![0], vec![0]));
    // Not square.
    assert!(matches!(
        ap.fit(3, &[0.0; 6]),
        Err(Error::LengthMismatch { expected: 9, .. })
    ));
    assert!(matches!(
        ap.fit_f32(2, &[0.0; 3]),
        Err(Error::LengthMismatch { .. })
    ));
    // NaN and infinity.
    let mut s = vec![0.0; 4];
    s[2] = f64::NAN;
    assert!(matches!(ap.fit(2, &s), Err(Error::Shape(m)) if m.contains("(1, 0)")));
    assert!(ap.fit_f32(2, &[0.0, f32::INFINITY, 0.0, 0.0]).is_err());
    // Bad settings.
    for damping in [0.49, 1.0, f64::NAN] {
        let bad = AffinityPropagation {
            damping,
            ..AffinityPropagation::default()
        };
        assert!(
            matches!(bad.fit(2, &[0.0; 4]), Err(Error::Shape(_))),
            "{damping}"
        );
    }
    let bad = AffinityPropagation {
        max_iter: 0,
        ..AffinityPropagation::default()
    };
    assert!(bad.fit(2, &[0.0; 4]).is_err());
    let bad = AffinityPropagation::with_preference(Preference::PerPoint(vec![0.5; 3]));
    assert!(matches!(
        bad.fit(2, &[0.0; 4]),
        Err(Error::LengthMismatch { .. })
    ));
    let bad = AffinityPropagation::with_preference(Preference::Scalar(f64::NAN));
    assert!(bad.fit(2, &[0.0; 4]).is_err());
}

// ---------------------------------------------------------------------------------------------
// Tie discovery

/// `k` prototype groups of `g` values, each repeated with 2-5% perturbation, and `z` zero
/// groups, shuffled; returns the group vectors and each group's true cluster (`None` for zero).
fn planted(
    rng: &mut Rng,
    k: usize,
    per: usize,
    z: usize,
    g: usize,
) -> (Vec<Vec<f32>>, Vec<Option<usize>>) {
    let protos: Vec<Vec<f32>> = (0..k).map(|_| rng.vec(g)).collect();
    let mut groups = Vec::new();
    for (c, p) in protos.iter().enumerate() {
        for _ in 0..per {
            let scale = 1.0 + 0.05 * rng.uniform();
            let v: Vec<f32> = p
                .iter()
                .map(|&x| x * scale + 0.02 * rng.uniform())
                .collect();
            groups.push((v, Some(c)));
        }
    }
    for _ in 0..z {
        groups.push((vec![0.0; g], None));
    }
    // Fisher-Yates with the crate's generator.
    for i in (1..groups.len()).rev() {
        let j = (rng.next_u64() as usize) % (i + 1);
        groups.swap(i, j);
    }
    groups.into_iter().unzip()
}

/// Lays the group vectors out as `layout` (group `r`'s element `o * inner + i` at
/// `(o * groups + r) * inner + i`).
fn lay_out(groups: &[Vec<f32>], outer: usize, inner: usize) -> Vec<f32> {
    let n = groups.len();
    let mut w = vec![0.0; outer * n * inner];
    for (r, v) in groups.iter().enumerate() {
        for o in 0..outer {
            for i in 0..inner {
                w[(o * n + r) * inner + i] = v[o * inner + i];
            }
        }
    }
    w
}

/// One layout of each kind holding `n` groups, with the `(outer, inner)` strides `lay_out`
/// takes: `Rows` and `Columns` of `units` elements per group, `ConvInChannels` of `c_out`
/// output channels and `khw` taps.
fn layouts_of_n_groups(
    n: usize,
    units: usize,
    [c_out, khw]: [usize; 2],
) -> [(GroupLayout, usize, usize); 3] {
    [
        (
            GroupLayout::Rows {
                rows: n,
                cols: units,
            },
            1,
            units,
        ),
        (
            GroupLayout::Columns {
                rows: units,
                cols: n,
            },
            units,
            1,
        ),
        (
            GroupLayout::ConvInChannels {
                c_out,
                c_in: n,
                khw,
            },
            c_out,
            khw,
        ),
    ]
}

#[test]
fn discover_recovers_planted_ties_in_every_layout() {
    let mut rng = Rng::new(5);
    let (groups, truth) = planted(&mut rng, 4, 5, 6, 12);
    let n = groups.len();
    let layouts = layouts_of_n_groups(n, 12, [3, 4]);
    let mut first_ids = None;
    for (layout, outer, inner) in layouts {
        let w = lay_out(&groups, outer, inner);
        let found = DiscoverTies::default().discover(layout, &w).unwrap();
        assert_eq!(found.map.layout(), discover::tie_layout(layout).unwrap());
        assert!(found.clustering.converged);
        assert_eq!(found.map.groups(), 4, "{layout:?}");
        let ids = found.map.ids();
        for g in 0..n {
            assert_eq!(found.zero[g], truth[g].is_none());
            assert_eq!(ids[g] == UNTIED, truth[g].is_none());
            for h in 0..n {
                if truth[g].is_some() && truth[h].is_some() {
                    assert_eq!(ids[g] == ids[h], truth[g] == truth[h], "{layout:?} {g} {h}");
                }
            }
        }
        assert_eq!(
            found.nonzero,
            (0..n).filter(|&g| truth[g].is_some()).collect::<Vec<_>>()
        );
        // Every layout sees the same groups: the same ids.
        match &first_ids {
            None => first_ids = Some(ids.to_vec()),
            Some(f) => assert_eq!(f.as_slice(), ids),
        }
    }
}

#[test]
fn discover_threshold_and_preference() {
    // Row norms 0, 1e-8 (below f32 eps), 1e-6 (above), and two distinct rows.
    let layout = GroupLayout::Rows { rows: 5, cols: 2 };
    let w = [0.0, 0.0, 1e-8, 0.0, 1e-6, 0.0, 1.0, 0.0, 0.0, 1.0];
    let found = DiscoverTies::default().discover(layout, &w).unwrap();
    assert_eq!(found.zero, [true, true, false, false, false]);
    // Threshold 0: only exact zeros.
    let d0 = DiscoverTies {
        threshold: 0.0,
        ..DiscoverTies::default()
    };
    assert_eq!(d0.discover(layout, &w).unwrap().zero[..2], [true, false]);
    // Preference 0 (the similarities are 1e-6, 0, 0): one cluster of the nonzero rows;
    // preference -100: no exemplar after 200 iterations, so nothing is tied. (sklearn
    // agrees: labels [0 0 0] in 61 iterations, and [-1 -1 -1] in 200.)
    let with_pref = |p| DiscoverTies {
        ap: AffinityPropagation::with_preference(Preference::Scalar(p)),
        ..DiscoverTies::default()
    };
    let one = with_pref(0.0).discover(layout, &w).unwrap();
    assert_eq!(one.map.groups(), 1);
    assert_eq!(one.map.ids(), [UNTIED, UNTIED, 0, 0, 0]);
    assert_eq!(one.clustering.iterations, 61);
    let none = with_pref(-100.0).discover(layout, &w).unwrap();
    assert_eq!(none.map.groups(), 0);
    assert!(none.map.ids().iter().all(|&i| i == UNTIED));
    assert!(!none.clustering.converged);
    assert_eq!(none.clustering.labels, [NO_LABEL; 3]);
    // Errors.
    assert!(matches!(
        DiscoverTies::default().discover(layout, &w[..9]),
        Err(Error::LengthMismatch { .. })
    ));
    let mut nan = w;
    nan[3] = f32::NAN;
    assert!(DiscoverTies::default().discover(layout, &nan).is_err());
    let neg = DiscoverTies {
        threshold: -1.0,
        ..DiscoverTies::default()
    };
    assert!(neg.discover(layout, &w).is_err());
    // All zero: nothing to cluster.
    let all = DiscoverTies::default()
        .discover(layout, &[0.0; 10])
        .unwrap();
    assert_eq!(all.map.groups(), 0);
    assert!(all.map.ids().iter().all(|&i| i == UNTIED));
}

#[test]
fn zero_mask_apply() {
    let layout = GroupLayout::Columns { rows: 2, cols: 3 };
    let mut w = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    discover::apply_zero_mask(layout, &mut w, &[false, true, false]).unwrap();
    assert_eq!(w, [1.0, 0.0, 3.0, 4.0, 0.0, 6.0]);
    assert!(discover::apply_zero_mask(layout, &mut w, &[false; 2]).is_err());
    let norms = discover::group_norms(layout, &w).unwrap();
    assert_eq!(norms, [17f64.sqrt(), 0.0, 45f64.sqrt()]);
}

// ---------------------------------------------------------------------------------------------
// Metrics

#[test]
fn metrics_by_hand() {
    // 6 rows of 4: rows 0, 2, 5 tied (group 0), row 1 zero, row 3 alone in group 1, row 4
    // untied and nonzero.
    let layout = TieLayout::rows(6, 4);
    let map = tied::tying::TieMap::new(layout, 2, vec![0, UNTIED, 0, 1, UNTIED, 0]).unwrap();
    let zero = [false, true, false, false, false, false];
    let m = ShareMetrics::from_map(&map, &zero).unwrap();
    assert_eq!(
        m,
        ShareMetrics {
            groups: 6,
            zero_groups: 1,
            clusters: 3,
            params: 24,
            nonzero: 20,
            unique_nonzero: 12,
            unique: 13,
        }
    );
    assert_eq!(m.sparsity(), 1.0 / 6.0);
    assert_eq!(m.sharing(), 20.0 / 12.0);
    assert_eq!(m.compression(), 24.0 / 13.0);
    // No zero group: 0 is not a value.
    let m = ShareMetrics::from_map(&map, &[false; 6]).unwrap();
    assert_eq!((m.unique, m.nonzero, m.clusters), (16, 24, 4));
    assert!(ShareMetrics::from_map(&map, &[false; 5]).is_err());
}

#[test]
fn metrics_from_map_agree_with_the_averaged_tensor() {
    let mut rng = Rng::new(11);
    let (groups, _) = planted(&mut rng, 5, 4, 7, 6);
    let n = groups.len();
    for (layout, outer, inner) in layouts_of_n_groups(n, 6, [2, 3]) {
        let mut w = lay_out(&groups, outer, inner);
        // A few more groups that fall below the threshold, not exactly zero.
        for (e, x) in w.iter_mut().enumerate() {
            if layout.group_of(e) % 9 == 1 {
                *x = 1e-9;
            }
        }
        let found = DiscoverTies::default().discover(layout, &w).unwrap();
        discover::apply_zero_mask(layout, &mut w, &found.zero).unwrap();
        let tied = cpu::project(&found.map, &w);
        let from_map = ShareMetrics::from_map(&found.map, &found.zero).unwrap();
        let counted = ShareMetrics::from_tensor(layout, &tied).unwrap();
        assert_eq!(from_map, counted, "{layout:?}");
        assert!(from_map.zero_groups >= 7);
        assert_eq!(from_map.clusters, found.map.groups() as usize);
        assert!(from_map.sharing() > 3.0, "{}", from_map.sharing());
        // Untied, the perturbed tensor has no sharing at all.
        let raw = ShareMetrics::from_tensor(layout, &w).unwrap();
        assert_eq!(raw.sharing(), 1.0);
        assert_eq!(raw.clusters, n - raw.zero_groups);
    }
}

#[test]
fn metrics_count_distinct_values() {
    let layout = GroupLayout::Rows { rows: 3, cols: 2 };
    // Rows (1, 2), (1, 2), (0, -0): one cluster of two, a zero row; -0 is 0.
    let m = ShareMetrics::from_tensor(layout, &[1.0, 2.0, 1.0, 2.0, 0.0, -0.0]).unwrap();
    assert_eq!((m.zero_groups, m.clusters, m.nonzero), (1, 1, 4));
    assert_eq!((m.unique_nonzero, m.unique), (2, 3));
    assert_eq!(m.compression(), 2.0);
    assert_eq!(m.sharing(), 2.0);
    assert!(ShareMetrics::from_tensor(layout, &[f32::NAN; 6]).is_err());
    assert!(ShareMetrics::from_tensor(layout, &[0.0; 5]).is_err());
    let empty = ShareMetrics::from_tensor(GroupLayout::Rows { rows: 0, cols: 2 }, &[]).unwrap();
    assert_eq!(
        (empty.sparsity(), empty.sharing(), empty.compression()),
        (0.0, 1.0, 1.0)
    );
}

// ---------------------------------------------------------------------------------------------
// The paper's PLD weights

#[test]
fn pld_weights_match_numpy() {
    let w = Weights::Pld {
        l1: 12.0,
        l2: 0.215,
        transition: 0.5,
    }
    .sequence(784, 1.0)
    .unwrap();
    assert_eq!(w.len(), 784);
    // numpy: np.float32(12) + np.float32(0.215) * linspace(783, 0, 391), then float32.
    let want: [(usize, u32); 10] = [
        (0, 0x4334_5852),   // 180.345
        (1, 0x4333_e9d1),   // 179.91335
        (2, 0x4333_7b50),   // 179.48169
        (3, 0x4333_0cd0),   // 179.05005
        (100, 0x4309_2dfb), // 137.17961
        (195, 0x42c0_5852), // 96.1725
        (389, 0x4146_e80e), // 12.431654
        (390, 0x4140_0000), // 12 (the linspace's exact end)
        (391, 0x4140_0000), // 12
        (783, 0x4140_0000), // 12
    ];
    for (k, bits) in want {
        assert_eq!(w[k].to_bits(), bits, "rank {k}: {}", w[k]);
    }
    assert!((w[0] - 180.3).abs() < 0.05);
    // The stairwise form is a different sequence.
    let st = Weights::Stairwise {
        l1: 12.0,
        l2: 0.215,
        top: 0.5,
    }
    .sequence(784, 1.0)
    .unwrap();
    assert!(st[0] < 100.0);
    // The step size scales it.
    let half = Weights::Pld {
        l1: 12.0,
        l2: 0.215,
        transition: 0.5,
    }
    .sequence(784, 0.5)
    .unwrap();
    assert_eq!(half[0], w[0] * 0.5);
}

#[test]
fn pld_edge_cases() {
    let seq = |n, t| {
        Weights::Pld {
            l1: 1.0,
            l2: 2.0,
            transition: t,
        }
        .sequence(n, 1.0)
    };
    // n = 64, t = 0.1: p = 5, linspace(63, 0, 5) = 63, 47.25, 31.5, 15.75, 0.
    let w = seq(64, 0.1).unwrap();
    assert_eq!(&w[..6], &[127.0, 95.5, 64.0, 32.5, 1.0, 1.0]);
    // p = 1: the one ramp point is n - 1.
    assert_eq!(seq(4, 0.5).unwrap(), [7.0, 1.0, 1.0, 1.0]);
    // p = 0: flat.
    assert_eq!(seq(3, 0.1).unwrap(), [1.0; 3]);
    assert!(seq(4, 1.5).is_err());
    assert!(seq(4, f32::NAN).is_err());
}

// ---------------------------------------------------------------------------------------------
// IDX files

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("tied-share-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn idx_images(count: u32, rows: u32, cols: u32, seed: u8) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [idx::IMAGES_MAGIC, count, rows, cols] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend((0..count * rows * cols).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)));
    b
}

fn idx_labels(count: u32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&idx::LABELS_MAGIC.to_be_bytes());
    b.extend_from_slice(&count.to_be_bytes());
    b.extend((0..count).map(|i| (i % 10) as u8));
    b
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A gzip file of stored (uncompressed) deflate blocks.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let chunks: Vec<&[u8]> = data.chunks(65_535).collect();
    if chunks.is_empty() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    for (i, c) in chunks.iter().enumerate() {
        out.push(u8::from(i + 1 == chunks.len()));
        let len = c.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(c);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

fn write_set(dir: &Path, gz: bool, train: u32, test: u32) {
    let files = [
        (idx::TRAIN_IMAGES, idx_images(train, 3, 2, 1)),
        (idx::TRAIN_LABELS, idx_labels(train)),
        (idx::TEST_IMAGES, idx_images(test, 3, 2, 5)),
        (idx::TEST_LABELS, idx_labels(test)),
    ];
    for (name, bytes) in files {
        if gz {
            std::fs::write(dir.join(format!("{name}.gz")), gzip_stored(&bytes)).unwrap();
        } else {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}

fn data_error_file(r: tied::Result<idx::Dataset>) -> (String, String) {
    match r {
        Err(Error::Data { file, reason }) => (file, reason),
        other => panic!("expected a data error, got {other:?}"),
    }
}

#[test]
fn idx_loads_plain_and_gzipped() {
    for gz in [false, true] {
        let dir = TempDir::new(if gz { "gz" } else { "plain" });
        write_set(&dir.0, gz, 7, 3);
        let d = idx::load_dir(&dir.0).unwrap();
        assert_eq!(
            (
                d.train.images.count,
                d.train.images.rows,
                d.train.images.cols
            ),
            (7, 3, 2)
        );
        assert_eq!(d.train.images.pixels, idx_images(7, 3, 2, 1)[16..]);
        assert_eq!(d.train.labels, idx_labels(7)[8..]);
        assert_eq!(d.test.images.count, 3);
        assert_eq!(
            d.test.images.image(2),
            &idx_images(3, 3, 2, 5)[16 + 12..16 + 18]
        );
        assert_eq!(d.test.labels, [0, 1, 2]);
    }
}

#[test]
fn idx_gzip_larger_than_a_block() {
    // 70,000 bytes: two stored blocks.
    let bytes = idx_images(70, 100, 10, 3);
    let decoded = idx::decode("x.gz", gzip_stored(&bytes)).unwrap();
    assert_eq!(decoded, bytes);
    let mut corrupt = gzip_stored(&bytes);
    let last = corrupt.len() - 5;
    corrupt[last] ^= 0xff; // the CRC
    assert!(
        matches!(idx::decode("x.gz", corrupt), Err(Error::Data { file, .. }) if file == "x.gz")
    );
}

#[test]
fn idx_errors_name_the_file() {
    // Missing.
    let dir = TempDir::new("missing");
    write_set(&dir.0, false, 4, 2);
    std::fs::remove_file(dir.0.join(idx::TEST_LABELS)).unwrap();
    let (file, reason) = data_error_file(idx::load_dir(&dir.0));
    assert!(
        file.ends_with(idx::TEST_LABELS) && reason.contains("missing"),
        "{file}: {reason}"
    );

    // Truncated (plain and gzipped).
    for gz in [false, true] {
        let dir = TempDir::new(if gz { "trunc-gz" } else { "trunc" });
        write_set(&dir.0, gz, 4, 2);
        let mut b = idx_images(4, 3, 2, 1);
        b.truncate(b.len() - 1);
        let (name, bytes) = if gz {
            (format!("{}.gz", idx::TRAIN_IMAGES), gzip_stored(&b))
        } else {
            (idx::TRAIN_IMAGES.to_string(), b)
        };
        std::fs::write(dir.0.join(&name), bytes).unwrap();
        let (file, reason) = data_error_file(idx::load_dir(&dir.0));
        assert!(
            file.ends_with(&name) && reason.contains("truncated"),
            "{file}: {reason}"
        );
    }

    // One file of a good set replaced: (case, file, its new bytes, what the error says).
    for (case, name, bytes, says) in [
        // Wrong magic: labels where images belong.
        ("magic", idx::TEST_IMAGES, idx_labels(2), "magic"),
        // Image and label counts differ.
        ("count", idx::TRAIN_LABELS, idx_labels(5), "5 labels"),
        // Test images of another size than the training images.
        ("dims", idx::TEST_IMAGES, idx_images(2, 2, 3, 0), "2 x 3"),
    ] {
        let dir = TempDir::new(case);
        write_set(&dir.0, false, 4, 2);
        std::fs::write(dir.0.join(name), bytes).unwrap();
        let (file, reason) = data_error_file(idx::load_dir(&dir.0));
        assert!(
            file.ends_with(name) && reason.contains(says),
            "{file}: {reason}"
        );
    }

    // Trailing bytes, zero dimensions, gzip handed to the parser.
    let mut b = idx_images(1, 2, 2, 0);
    b.push(0);
    assert!(
        matches!(idx::parse_images("a", &b), Err(Error::Data { reason, .. }) if reason.contains("after"))
    );
    assert!(idx::parse_images("a", &idx_images(0, 0, 2, 0)).is_err());
    assert!(idx::parse_labels("a", &gzip_stored(&idx_labels(2))).is_err());
    assert!(idx::parse_labels("a", &[0, 0, 8]).is_err());
}

#[test]
fn idx_reads_fashion_mnist_when_installed() {
    let dir = Path::new("/usr/share/datasets/fashion-mnist");
    if !dir.join(format!("{}.gz", idx::TRAIN_IMAGES)).is_file() {
        eprintln!("dataset-fashion-mnist is not installed: skipped");
        return;
    }
    let d = idx::load_dir(dir).unwrap();
    assert_eq!(
        (
            d.train.images.count,
            d.train.images.rows,
            d.train.images.cols
        ),
        (60_000, 28, 28)
    );
    assert_eq!((d.test.images.count, d.test.labels.len()), (10_000, 10_000));
    assert!(d.train.labels.iter().all(|&l| l < 10));
    for c in 0..10u8 {
        assert_eq!(d.train.labels.iter().filter(|&&l| l == c).count(), 6_000);
    }
}
