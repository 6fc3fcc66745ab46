//! The CPU OWL / GrOWL prox: the exact vectors of the reference notes, properties on random
//! inputs against an independent naive implementation, and bad input.

mod common;

use proptest::prelude::*;
use tied::growl::cpu::{growl_prox, growl_prox_with, owl_prox, owl_prox_blocks};
use tied::growl::{GroupLayout, GrowlOptions, GrowlOutput, Weights};
use tied::verify::Rng;
use tied::Error;

#[test]
fn exact_vectors() {
    #[rustfmt::skip]
    type Case<'a> = (&'a str, &'a [f32], &'a [f32], &'a [f32]);
    let cases: [Case; 11] = [
        ("A", &[1.0, -5.0, 3.0], &[4.0, 1.0, 0.0], &[1.0, -1.5, 1.5]),
        ("B", &[1.0, -2.0, 0.5], &[3.0, 2.0, 1.0], &[0.0, 0.0, 0.0]),
        (
            "C",
            &[3.0, -0.5, -2.0, 1.0],
            &[1.0, 1.0, 1.0, 1.0],
            &[2.0, 0.0, -1.0, 0.0],
        ),
        ("D", &[3.0, 1.0, -2.0], &[2.0, 0.0, 0.0], &[1.5, 1.0, -1.5]),
        (
            "E",
            &[2.0, -2.0, 2.0, 1.0],
            &[1.25, 1.0, 0.75, 0.5],
            &[1.0, -1.0, 1.0, 0.5],
        ),
        ("F", &[-4.0, 9.0, 4.0], &[7.0, 7.0, 2.0], &[0.0, 2.0, 0.0]),
        (
            "G",
            &[-0.5, 8.0, 2.0, -4.0],
            &[3.0, 2.0, 1.0, 0.25],
            &[-0.25, 5.0, 1.0, -2.0],
        ),
        (
            "H",
            &[0.0, 0.0, 3.0, 0.0],
            &[1.0, 0.5, 0.25, 0.0],
            &[0.0, 0.0, 2.0, 0.0],
        ),
        ("I", &[5.0, 2.0], &[4.0, 2.0], &[1.0, 0.0]),
        ("J", &[3.0, 3.0], &[0.0, 0.0], &[3.0, 3.0]),
        ("K", &[2.0, 1.0], &[3.0, 0.0], &[0.0, 0.0]),
    ];
    for (id, v, w, want) in cases {
        let got = owl_prox(v, w).unwrap();
        assert_eq!(
            got.iter().map(|x| x.abs()).collect::<Vec<_>>(),
            want.iter().map(|x| x.abs()).collect::<Vec<_>>(),
            "vector {id}"
        );
        for (g, e) in got.iter().zip(want) {
            assert!(
                *e == 0.0 || g.signum() == e.signum(),
                "vector {id}: sign of {g} vs {e}"
            );
        }
    }
}

/// The GrOWL matrix case of the reference notes: a 5 x 2 matrix, row groups, these weights.
const MATRIX: [f32; 10] = [3.0, 4.0, 0.0, 0.0, -6.0, 8.0, 0.0, -5.0, 1.0, 0.0];
const MATRIX_LAMBDA: [f32; 5] = [5.0, 1.5, 1.0, 0.5, 0.0];

/// Checks the exact outputs of the matrix case.
fn assert_matrix_case(out: &GrowlOutput) {
    assert_eq!(
        out.weights,
        vec![2.25, 3.0, 0.0, 0.0, -3.0, 4.0, 0.0, -3.75, 0.5, 0.0]
    );
    assert_eq!(out.norms, vec![3.75, 0.0, 5.0, 3.75, 0.5]);
    assert_eq!(out.zero, vec![false, true, false, false, false]);
    assert_eq!(
        out.blocks[0], out.blocks[3],
        "rows 0 and 3 share a PAV block"
    );
}

#[test]
fn growl_matrix_vector() {
    let w = MATRIX;
    let out = growl_prox(&w, GroupLayout::Rows { rows: 5, cols: 2 }, &MATRIX_LAMBDA).unwrap();
    assert_matrix_case(&out);
    // The same groups as columns of the transposed matrix, and as conv input channels.
    let wt: Vec<f32> = (0..10).map(|e| w[(e % 5) * 2 + e / 5]).collect();
    let out_t = growl_prox(
        &wt,
        GroupLayout::Columns { rows: 2, cols: 5 },
        &MATRIX_LAMBDA,
    )
    .unwrap();
    assert_eq!(out_t.norms, out.norms);
    let out_c = growl_prox(
        &wt,
        GroupLayout::ConvInChannels {
            c_out: 2,
            c_in: 5,
            khw: 1,
        },
        &MATRIX_LAMBDA,
    )
    .unwrap();
    assert_eq!(out_c.weights, out_t.weights);
}

/// Independent reference: f64, stable sort, PAV by repeated pooling of violating neighbours.
fn naive(v: &[f32], w: &[f32]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[b].abs().total_cmp(&v[a].abs()));
    let mut blocks: Vec<(f64, f64)> = idx
        .iter()
        .zip(w)
        .map(|(&i, &wk)| (f64::from(v[i].abs()) - f64::from(wk), 1.0))
        .collect();
    loop {
        let pos = (1..blocks.len())
            .find(|&k| blocks[k - 1].0 / blocks[k - 1].1 <= blocks[k].0 / blocks[k].1);
        match pos {
            Some(k) => {
                let (s, c) = blocks.remove(k);
                blocks[k - 1].0 += s;
                blocks[k - 1].1 += c;
            }
            None => break,
        }
    }
    let mut y = vec![0.0; v.len()];
    let mut k = 0;
    for (s, c) in blocks {
        for _ in 0..c as usize {
            y[idx[k]] = (s / c).max(0.0)
                * f64::from(v[idx[k]]).signum()
                * f64::from(u8::from(v[idx[k]] != 0.0));
            k += 1;
        }
    }
    y
}

/// Euclidean projection onto {x : ||x||_1 <= radius} (sort-based; Duchi et al. 2008).
fn project_l1_ball(v: &[f32], radius: f64) -> Vec<f64> {
    let a: Vec<f64> = v.iter().map(|x| f64::from(x.abs())).collect();
    if a.iter().sum::<f64>() <= radius {
        return v.iter().map(|&x| f64::from(x)).collect();
    }
    let mut u = a.clone();
    u.sort_by(|x, y| y.total_cmp(x));
    let (mut acc, mut theta) = (0.0, 0.0);
    for (j, &uj) in u.iter().enumerate() {
        acc += uj;
        let t = (acc - radius) / (j + 1) as f64;
        if uj > t {
            theta = t;
        }
    }
    v.iter()
        .map(|&x| f64::from(x).signum() * (f64::from(x.abs()) - theta).max(0.0))
        .collect()
}

fn weights_strategy(n: usize) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(0.0f32..2.0, n).prop_map(|mut w| {
        w.sort_by(|a, b| b.total_cmp(a));
        w
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn matches_naive_reference((v, w) in (1usize..40).prop_flat_map(|n| (prop::collection::vec(-4.0f32..4.0, n), weights_strategy(n)))) {
        let got = owl_prox(&v, &w).unwrap();
        let want = naive(&v, &w);
        for (g, e) in got.iter().zip(&want) {
            prop_assert!((f64::from(*g) - e).abs() <= 1e-5 * (1.0 + e.abs()), "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn permutation_and_sign_invariance((v, w) in (2usize..30).prop_flat_map(|n| (prop::collection::vec(-4.0f32..4.0, n), weights_strategy(n))), seed in any::<u64>()) {
        let base = owl_prox(&v, &w).unwrap();
        let mut rng = Rng::new(seed);
        let n = v.len();
        let perm: Vec<usize> = { let mut p: Vec<usize> = (0..n).collect(); for i in (1..n).rev() { p.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize); } p };
        let flips: Vec<f32> = (0..n).map(|_| if rng.next_u64().is_multiple_of(2) { 1.0 } else { -1.0 }).collect();
        let v2: Vec<f32> = perm.iter().zip(&flips).map(|(&i, f)| v[i] * f).collect();
        let got = owl_prox(&v2, &w).unwrap();
        for (k, (&i, f)) in perm.iter().zip(&flips).enumerate() {
            prop_assert!((got[k] - base[i] * f).abs() <= 1e-6);
        }
    }

    #[test]
    fn non_expansive((u, v, w) in (1usize..30).prop_flat_map(|n| (prop::collection::vec(-4.0f32..4.0, n), prop::collection::vec(-4.0f32..4.0, n), weights_strategy(n)))) {
        let pu = owl_prox(&u, &w).unwrap();
        let pv = owl_prox(&v, &w).unwrap();
        let d = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum::<f64>().sqrt();
        prop_assert!(d(&pu, &pv) <= d(&u, &v) + 1e-5);
    }

    #[test]
    fn linf_weights_moreau((v, lambda) in (prop::collection::vec(-4.0f32..4.0, 1..40), 0.0f32..6.0)) {
        // w = (lambda, 0, ..., 0) is lambda * ||.||_inf, whose prox is v minus the projection
        // of v onto the L1 ball of radius lambda (Moreau decomposition).
        let mut w = vec![0.0f32; v.len()];
        w[0] = lambda;
        let got = owl_prox(&v, &w).unwrap();
        let proj = project_l1_ball(&v, f64::from(lambda));
        for ((g, x), q) in got.iter().zip(&v).zip(&proj) {
            let want = f64::from(*x) - q;
            prop_assert!((f64::from(*g) - want).abs() <= 1e-5, "{g} vs {want}");
        }
    }

    #[test]
    fn l1_weights_soft_threshold((v, lambda) in (prop::collection::vec(-4.0f32..4.0, 1..40), 0.0f32..2.0)) {
        let got = owl_prox(&v, &vec![lambda; v.len()]).unwrap();
        for (g, x) in got.iter().zip(&v) {
            let want = x.signum() * (x.abs() - lambda).max(0.0);
            prop_assert!((g - want).abs() <= 1e-6, "{g} vs {want}");
        }
    }
}

#[test]
fn ties_give_equal_outputs_and_one_block() {
    let v = vec![1.5f32; 10_000];
    let w = Weights::Oscar { l1: 1e-4, l2: 1e-8 }
        .sequence(v.len(), 1.0)
        .unwrap();
    let (x, blocks) = owl_prox_blocks(&v, &w).unwrap();
    assert!(
        x.iter().all(|&a| a == x[0]),
        "equal magnitudes, equal outputs"
    );
    assert!(blocks.iter().all(|&b| b == 0), "one giant block");
    // Descending ramp plus one spike: the worst case for "pool all violators, repeat".
    let mut v: Vec<f32> = (0..600).map(|i| 10.0 - i as f32 * 1e-2).collect();
    v.push(-100.0);
    let w = Weights::Oscar { l1: 0.5, l2: 0.02 }
        .sequence(v.len(), 1.0)
        .unwrap();
    let got = owl_prox(&v, &w).unwrap();
    let want = naive(&v, &w);
    for (g, e) in got.iter().zip(&want) {
        assert!(
            (f64::from(*g) - e).abs() <= 1e-4 * (1.0 + e.abs()),
            "{g} vs {e}"
        );
    }
    // All weights larger than the input: everything is zero.
    assert!(owl_prox(&[1.0, -2.0, 0.5], &[5.0, 5.0, 5.0])
        .unwrap()
        .iter()
        .all(|&x| x == 0.0));
}

#[test]
fn weight_sequences_and_errors() {
    assert_eq!(
        Weights::Oscar { l1: 1.0, l2: 0.5 }
            .sequence(3, 1.0)
            .unwrap(),
        vec![2.0, 1.5, 1.0]
    );
    assert_eq!(
        Weights::Linear { l1: 1.0, l2: 3.0 }
            .sequence(3, 2.0)
            .unwrap(),
        vec![6.0, 4.0, 2.0]
    );
    assert_eq!(
        Weights::Stairwise {
            l1: 1.0,
            l2: 1.0,
            top: 0.5
        }
        .sequence(6, 1.0)
        .unwrap(),
        vec![3.0, 2.0, 1.0, 1.0, 1.0, 1.0]
    );
    // 0.7 is stored just below 0.7 in f32; the top fraction still covers 7 of 10 groups.
    assert_eq!(
        Weights::Stairwise {
            l1: 1.0,
            l2: 1.0,
            top: 0.7
        }
        .sequence(10, 1.0)
        .unwrap(),
        vec![7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 1.0, 1.0, 1.0]
    );
    assert_eq!(
        Weights::Spike { b1: 2.0, b2: 1.0 }
            .sequence(3, 1.0)
            .unwrap(),
        vec![3.0, 1.0, 1.0]
    );
    assert!(matches!(
        Weights::Custom(vec![1.0, 2.0]).sequence(2, 1.0),
        Err(Error::Shape(_))
    ));
    assert!(matches!(
        Weights::Custom(vec![1.0, -1.0]).sequence(2, 1.0),
        Err(Error::Shape(_))
    ));
    assert!(matches!(
        Weights::Custom(vec![1.0]).sequence(2, 1.0),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        Weights::Oscar { l1: 1.0, l2: 1.0 }.sequence(2, -1.0),
        Err(Error::Shape(_))
    ));
    assert!(matches!(
        Weights::Stairwise {
            l1: 1.0,
            l2: 1.0,
            top: 1.5
        }
        .sequence(2, 1.0),
        Err(Error::Shape(_))
    ));
    assert!(matches!(
        owl_prox(&[1.0, 2.0], &[1.0]),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        owl_prox(&[1.0, f32::NAN], &[1.0, 1.0]),
        Err(Error::Shape(_))
    ));
    assert!(matches!(
        owl_prox(&[1.0, 2.0], &[1.0, 2.0]),
        Err(Error::Shape(_))
    ));
    assert!(matches!(
        growl_prox(
            &[1.0; 5],
            GroupLayout::Rows { rows: 2, cols: 2 },
            &[1.0, 1.0]
        ),
        Err(Error::LengthMismatch { .. })
    ));
}

/// `n` values whose magnitudes are log-uniform over `[10^lo, 10^hi]`, random signs, and ties
/// (about one value in eight repeats an earlier magnitude, with either sign).
/// Tolerance of the value-range tests, relative to each element's PAV block (measured: 1-3e-7,
/// a few f32 roundings of the output; the sums themselves are good to about 2^-28)
const BLOCK_TOL: f32 = 1e-6;

fn wide_values(rng: &mut Rng, n: usize, lo: f64, hi: f64) -> Vec<f32> {
    let mut v: Vec<f32> = Vec::with_capacity(n);
    for i in 0..n {
        let sign = if rng.next_u64().is_multiple_of(2) {
            1.0
        } else {
            -1.0
        };
        let x = if i > 0 && rng.next_u64().is_multiple_of(8) {
            v[(rng.next_u64() % i as u64) as usize].abs()
        } else {
            let u = f64::from(rng.uniform()) * 0.5 + 0.5;
            10f64.powf(lo + (hi - lo) * u) as f32
        };
        v.push(sign * x);
    }
    v
}

/// A weight sequence for data `v` (magnitudes spanning many orders): one of the crate's
/// sequences scaled to the magnitude of a random element, a custom sequence log-uniform over
/// 1e-30..1e30, the sorted magnitudes times random factors (z near zero: cancellation), or zero.
fn wide_weights(rng: &mut Rng, v: &[f32], kind: u32) -> Vec<f32> {
    let n = v.len();
    let s = v[(rng.next_u64() % n as u64) as usize].abs();
    let mut u = || (rng.uniform() * 0.5 + 0.5) * 1.5;
    let (a, b) = (u(), u());
    let w = match kind % 7 {
        0 => Weights::Oscar {
            l1: s * a,
            l2: s * b / n as f32,
        },
        1 => Weights::Linear {
            l1: s * a,
            l2: s * b,
        },
        2 => Weights::Stairwise {
            l1: s * a,
            l2: s * b / n as f32,
            top: u() / 1.5,
        },
        3 => Weights::Spike {
            b1: s * a,
            b2: s * b,
        },
        4 => {
            let mut w = wide_values(rng, n, -30.0, 30.0);
            w.iter_mut().for_each(|x| *x = x.abs());
            w.sort_by(|a, b| b.total_cmp(a));
            Weights::Custom(w)
        }
        5 => {
            let mut w: Vec<f32> = v
                .iter()
                .map(|x| x.abs() * (0.5 + 0.35 * (rng.uniform() + 1.0)))
                .collect();
            w.sort_by(|a, b| b.total_cmp(a));
            Weights::Custom(w)
        }
        _ => Weights::Custom(vec![0.0; n]),
    };
    w.sequence(n, 1.0).unwrap()
}

/// The scale of each element's PAV block in the twin's solution: the largest of the block's
/// magnitudes and of the weights at its ranks (the first one: weights do not increase).
/// `blocks` numbers the blocks in rank order, so block b starts at the rank that counts the
/// elements of blocks before it.
fn block_scales(v: &[f32], w: &[f32], blocks: &[u32]) -> Vec<f32> {
    let nb = blocks.iter().max().map_or(0, |&b| b as usize + 1);
    let mut count = vec![0usize; nb];
    let mut scale = vec![0.0f32; nb];
    for (x, &b) in v.iter().zip(blocks) {
        count[b as usize] += 1;
        scale[b as usize] = scale[b as usize].max(x.abs());
    }
    let mut first = 0;
    for (c, s) in count.iter().zip(scale.iter_mut()) {
        if *c > 0 {
            *s = s.max(w[first]);
        }
        first += c;
    }
    blocks.iter().map(|&b| scale[b as usize]).collect()
}

/// Every element of `got` within `tol` of the twin's, relative to its own PAV block's scale.
fn owl_block_relative(v: &[f32], w: &[f32], got: &[f32], tol: f32) -> Result<(), String> {
    let (want, blocks) = owl_prox_blocks(v, w).unwrap();
    let scales = block_scales(v, w, &blocks);
    for i in 0..v.len() {
        let err = (got[i] - want[i]).abs();
        let close = err <= tol * scales[i]; // false for NaN
        if !close {
            return Err(format!(
                "n = {} index {i}: v {:e} gpu {:e} twin {:e} block scale {:e} (block {})",
                v.len(),
                v[i],
                got[i],
                want[i],
                scales[i],
                blocks[i]
            ));
        }
    }
    Ok(())
}

/// A tensor of `layout` whose groups have heavy-tailed norms: each group's scale is
/// log-uniform over `[10^lo, 10^hi]`, its elements that scale times uniform values, a quarter of
/// them shrunk by up to 1e-3 more; about one group in eight repeats an earlier group's scale.
fn heavy_tailed(rng: &mut Rng, layout: GroupLayout, lo: f64, hi: f64) -> Vec<f32> {
    let scales: Vec<f32> = wide_values(rng, layout.groups(), lo, hi)
        .iter()
        .map(|x| x.abs())
        .collect();
    (0..layout.len())
        .map(|e| {
            let mut x = rng.uniform() * scales[layout.group_of(e)];
            if rng.next_u64().is_multiple_of(4) {
                x *= 10f32.powf(-3.0 * (rng.uniform() * 0.5 + 0.5));
            }
            x
        })
        .collect()
}

/// GrOWL `got` against the twin, relative to each group's PAV block: new norms within `tol`
/// of the block's scale; each element within `tol * |x| * (scale / norm + 1)` (its group's
/// factor new norm / norm carries the block-relative error of the new norm and the relative
/// error of the norm).
fn growl_block_relative(
    m: &[f32],
    layout: GroupLayout,
    w: &[f32],
    options: GrowlOptions,
    got: &GrowlOutput,
    tol: f32,
) -> Result<(), String> {
    let want = growl_prox_with(m, layout, w, options).unwrap();
    // The twin's input norms (after the threshold): the prox with zero weights keeps them.
    let norms = growl_prox_with(m, layout, &vec![0.0; w.len()], options)
        .unwrap()
        .norms;
    let scales = block_scales(&norms, w, &want.blocks);
    for g in 0..norms.len() {
        let close = (got.norms[g] - want.norms[g]).abs() <= tol * scales[g];
        if !close {
            return Err(format!(
                "{layout:?} group {g}: norm {:e}, new norm gpu {:e} twin {:e}, block scale {:e}",
                norms[g], got.norms[g], want.norms[g], scales[g]
            ));
        }
    }
    for (e, ((g, t), x)) in got.weights.iter().zip(&want.weights).zip(m).enumerate() {
        let grp = layout.group_of(e);
        let bound = if norms[grp] > 0.0 {
            tol * x.abs() * (scales[grp] / norms[grp] + 1.0)
        } else {
            0.0
        };
        let close = (g - t).abs() <= bound;
        if !close {
            return Err(format!(
                "{layout:?} element {e} (group {grp}, norm {:e}): {x:e} -> gpu {g:e} twin {t:e}",
                norms[grp]
            ));
        }
    }
    Ok(())
}

mod gpu {
    use super::*;
    use std::sync::OnceLock;
    use tied::growl::OwlProx;

    use crate::common;

    /// GPU against the CPU twin: norms within 2e-6 of the largest norm, weights within 2e-6,
    /// the same zero groups.
    fn assert_matches_twin(got: &GrowlOutput, want: &GrowlOutput, layout: GroupLayout) {
        let scale = want
            .norms
            .iter()
            .chain(&got.norms)
            .fold(1e-30f32, |a, &b| a.max(b));
        for (g, e) in got.norms.iter().zip(&want.norms) {
            assert!((g - e).abs() <= 2e-6 * scale, "{layout:?}: norm {g} vs {e}");
        }
        for (g, e) in got.weights.iter().zip(&want.weights) {
            assert!((g - e).abs() <= 2e-6, "{layout:?}: weight {g} vs {e}");
        }
        assert_eq!(got.zero, want.zero, "{layout:?}");
    }

    fn owl() -> &'static OwlProx {
        static O: OnceLock<OwlProx> = OnceLock::new();
        O.get_or_init(|| OwlProx::new(common::gpu()).expect("owl pipelines"))
    }

    /// GPU against the CPU twin: relative to the largest |v| (the prox is 1-Lipschitz).
    fn check(v: &[f32], w: &[f32]) {
        let got = owl().prox_blocking(v, w).expect("gpu prox");
        let want = owl_prox(v, w).unwrap();
        let scale = v.iter().fold(0.0f32, |m, x| m.max(x.abs())).max(1e-30);
        for (i, (g, e)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - e).abs() <= 2e-6 * scale,
                "n = {} index {i}: gpu {g} cpu {e}",
                v.len()
            );
        }
    }

    /// The vector: one value 1e9 times the others. A grid scaled by the largest
    /// magnitude (2^30 steps below 1e9: about 1) loses every small output.
    #[test]
    fn gpu_small_values_next_to_large_ones() {
        let _serial = common::serial();
        let v = [1e9f32, 1.0, -0.5, 0.25];
        let w = [0.1f32, 0.1, 0.05, 0.0];
        let got = owl().prox_blocking(&v, &w).unwrap();
        let want = owl_prox(&v, &w).unwrap();
        assert_eq!(want, vec![1e9, 0.9, -0.45, 0.25]);
        for (i, (g, e)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - e).abs() <= 1e-6 * e.abs(),
                "index {i}: gpu {got:?}, twin {want:?}"
            );
        }
        // The same at the bottom of the range, and spanning all of it.
        for v in [
            [1e-20f32, 1e-29, -0.5e-29, 0.25e-29],
            [1e30f32, 1e-30, -0.5e-30, 0.25e-30],
        ] {
            let w = [0.1 * v[1], 0.1 * v[1], 0.05 * v[1], 0.0];
            let got = owl().prox_blocking(&v, &w).unwrap();
            let want = owl_prox(&v, &w).unwrap();
            for (i, (g, e)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - e).abs() <= 1e-6 * e.abs(),
                    "index {i}: gpu {got:?}, twin {want:?}"
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

        /// Magnitudes from 1e-30 to 1e30 (and narrower spans inside it), every weight family:
        /// each element within 1e-6 of the f64 twin relative to its own PAV block's scale.
        #[test]
        fn gpu_owl_value_range(n in 1usize..2000, seed in any::<u64>(), kind in 0u32..7, span in 0u32..3) {
            let _serial = common::serial();
            let mut rng = Rng::new(seed);
            let (lo, hi) = [(-30.0, 30.0), (-30.0, -20.0), (0.0, 12.0)][span as usize];
            let v = wide_values(&mut rng, n, lo, hi);
            let w = wide_weights(&mut rng, &v, kind);
            let got = owl().prox_blocking(&v, &w).unwrap();
            if let Err(e) = owl_block_relative(&v, &w, &got, BLOCK_TOL) {
                prop_assert!(false, "kind {kind} span {span}: {e}");
            }
        }
    }

    /// The value range past one scan block (4096) and many leaf hulls: every weight family.
    #[test]
    fn gpu_owl_value_range_long() {
        let _serial = common::serial();
        let mut rng = Rng::new(41);
        for kind in 0..7 {
            let v = wide_values(&mut rng, 20_000, -30.0, 30.0);
            let w = wide_weights(&mut rng, &v, kind);
            let got = owl().prox_blocking(&v, &w).unwrap();
            owl_block_relative(&v, &w, &got, BLOCK_TOL)
                .unwrap_or_else(|e| panic!("kind {kind}: {e}"));
        }
    }

    /// The block-scaled sums round where grids differ, in a fixed tree: the same input gives
    /// the same bits every run (values and block ids), past several scan blocks.
    #[test]
    fn gpu_owl_deterministic_bits() {
        let _serial = common::serial();
        let mut rng = Rng::new(8);
        let v = wide_values(&mut rng, 70_000, -30.0, 30.0);
        let w = wide_weights(&mut rng, &v, 0);
        let bits = |x: &[f32]| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        let (a, ba) = pollster::block_on(owl().prox_with_blocks(&v, &w, true)).unwrap();
        for _ in 0..2 {
            let (b, bb) = pollster::block_on(owl().prox_with_blocks(&v, &w, true)).unwrap();
            assert_eq!(bits(&a), bits(&b));
            assert_eq!(ba, bb);
        }
    }

    #[test]
    fn gpu_exact_vectors() {
        let _serial = common::serial();
        check(&[1.0, -5.0, 3.0], &[4.0, 1.0, 0.0]);
        check(&[-4.0, 9.0, 4.0], &[7.0, 7.0, 2.0]);
        check(&[0.0, 0.0, 3.0, 0.0], &[1.0, 0.5, 0.25, 0.0]);
        check(&[2.0, -2.0, 2.0, 1.0], &[1.25, 1.0, 0.75, 0.5]);
        check(&[3.0], &[1.0]);
    }

    #[test]
    fn gpu_random_sizes_around_thresholds() {
        let _serial = common::serial();
        let mut rng = Rng::new(5);
        for n in [
            2usize, 255, 256, 257, 511, 512, 513, 4095, 4096, 4097, 70_000,
        ] {
            let v: Vec<f32> = rng.vec(n).iter().map(|x| x * 3.0).collect();
            let w = Weights::Oscar {
                l1: 0.05,
                l2: 2.0 / n as f32,
            }
            .sequence(n, 1.0)
            .unwrap();
            check(&v, &w);
            let w = Weights::Stairwise {
                l1: 0.3,
                l2: 0.01,
                top: 0.1,
            }
            .sequence(n, 1.0)
            .unwrap();
            check(&v, &w);
        }
    }

    fn growl() -> &'static tied::growl::GrowlProx {
        static G: OnceLock<tied::growl::GrowlProx> = OnceLock::new();
        G.get_or_init(|| tied::growl::GrowlProx::new(common::gpu()).expect("growl pipelines"))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]

        /// Heavy-tailed group norms (1e-30 to 1e30 in one tensor), rows, columns and conv
        /// channels (vec4 paths included), the default threshold and none: every new norm
        /// within 2e-6 of the f64 twin relative to its PAV block, every element likewise.
        #[test]
        fn gpu_growl_value_range(
            groups in 1usize..300,
            inner in 1usize..24,
            shape in 0u32..3,
            seed in any::<u64>(),
            kind in 0u32..7,
            span in 0u32..3,
            no_threshold in any::<bool>(),
        ) {
            let _serial = common::serial();
            let layout = match shape {
                0 => GroupLayout::Rows { rows: groups, cols: inner },
                1 => GroupLayout::Columns { rows: inner, cols: groups },
                _ => GroupLayout::ConvInChannels { c_out: 3, c_in: groups, khw: inner },
            };
            let options = if no_threshold { GrowlOptions::zero_below(0.0) } else { GrowlOptions::default() };
            let mut rng = Rng::new(seed);
            let (lo, hi) = [(-30.0, 30.0), (-30.0, -20.0), (15.0, 30.0)][span as usize];
            let m = heavy_tailed(&mut rng, layout, lo, hi);
            let norms = growl_prox_with(&m, layout, &vec![0.0; groups], options).unwrap().norms;
            let w = wide_weights(&mut rng, &norms.iter().map(|r| r.max(1e-30)).collect::<Vec<_>>(), kind);
            let got = growl().prox_blocking_with(&m, layout, &w, options).unwrap();
            if let Err(e) = growl_block_relative(&m, layout, &w, options, &got, 2.0 * BLOCK_TOL) {
                prop_assert!(false, "kind {kind} span {span}: {e}");
            }
        }
    }

    /// Heavy-tailed norms of interleaved groups cut into binding windows: the partial norms
    /// of one group combine across windows without overflow or underflow.
    #[test]
    fn gpu_growl_value_range_windows() {
        let _serial = common::serial();
        // 16 MiB bindings (the least a device may have): 4200 x 1000 f32 is two windows.
        let gpu = common::gpu_with_binding_limit(16 << 20);
        let growl = tied::growl::GrowlProx::new(&gpu).unwrap();
        let mut rng = Rng::new(12);
        for layout in [GroupLayout::Columns {
            rows: 4200,
            cols: 1000,
        }] {
            assert!(growl.plan(layout).unwrap().windows() >= 2, "{layout:?}");
            let m = heavy_tailed(&mut rng, layout, -30.0, 30.0);
            for options in [GrowlOptions::default(), GrowlOptions::zero_below(0.0)] {
                let n = layout.groups();
                let norms = growl_prox_with(&m, layout, &vec![0.0; n], options)
                    .unwrap()
                    .norms;
                let w = wide_weights(
                    &mut rng,
                    &norms.iter().map(|r| r.max(1e-30)).collect::<Vec<_>>(),
                    0,
                );
                let got = growl.prox_blocking_with(&m, layout, &w, options).unwrap();
                growl_block_relative(&m, layout, &w, options, &got, 2.0 * BLOCK_TOL)
                    .unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }

    /// A tensor of small scale (norms about 1e-10): the default threshold (the paper's
    /// `f32::EPSILON`) zeroes every group, on the GPU as in the twin; threshold 0 keeps them,
    /// matching the twin, as the prox would.
    #[test]
    fn gpu_growl_zero_threshold_is_an_option() {
        let _serial = common::serial();
        let layout = GroupLayout::Rows { rows: 60, cols: 8 };
        let m: Vec<f32> = Rng::new(3)
            .vec(layout.len())
            .iter()
            .map(|x| x * 1e-10)
            .collect();
        let w = Weights::Oscar {
            l1: 1e-11,
            l2: 1e-13,
        }
        .sequence(60, 1.0)
        .unwrap();
        let zero = growl().prox_blocking(&m, layout, &w).unwrap();
        assert!(
            zero.zero.iter().all(|&z| z),
            "default: every group below epsilon is zero"
        );
        assert!(zero.weights.iter().all(|&x| x == 0.0));
        assert_eq!(zero, growl_prox(&m, layout, &w).unwrap());
        let options = GrowlOptions::zero_below(0.0);
        let kept = growl().prox_blocking_with(&m, layout, &w, options).unwrap();
        let want = growl_prox_with(&m, layout, &w, options).unwrap();
        assert!(want.zero.iter().all(|&z| !z), "the prox keeps every group");
        assert_eq!(kept.zero, want.zero);
        growl_block_relative(&m, layout, &w, options, &kept, 2.0 * BLOCK_TOL).unwrap();
        // The plan carries the option; a bad threshold is refused.
        assert_eq!(
            growl().plan_with(layout, options).unwrap().options(),
            options
        );
        for bad in [-1.0, f32::NAN, f32::INFINITY] {
            let r = growl().plan_with(layout, GrowlOptions::zero_below(bad));
            assert!(matches!(r, Err(Error::Shape(_))), "{r:?}");
            let r = growl_prox_with(&m, layout, &w, GrowlOptions::zero_below(bad));
            assert!(matches!(r, Err(Error::Shape(_))), "{r:?}");
        }
    }

    /// GrOWL bits are the same run to run with heavy-tailed norms.
    #[test]
    fn gpu_growl_deterministic_bits() {
        let _serial = common::serial();
        let layout = GroupLayout::ConvInChannels {
            c_out: 6,
            c_in: 500,
            khw: 9,
        };
        let mut rng = Rng::new(21);
        let m = heavy_tailed(&mut rng, layout, -30.0, 30.0);
        let norms = growl_prox(&m, layout, &vec![0.0; 500]).unwrap().norms;
        let w = wide_weights(
            &mut rng,
            &norms.iter().map(|r| r.max(1e-30)).collect::<Vec<_>>(),
            1,
        );
        let bits = |x: &[f32]| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        let a = growl().prox_blocking(&m, layout, &w).unwrap();
        let b = growl().prox_blocking(&m, layout, &w).unwrap();
        assert_eq!(bits(&a.weights), bits(&b.weights));
        assert_eq!(bits(&a.norms), bits(&b.norms));
        assert_eq!(a.blocks, b.blocks);
    }

    /// Tensors larger than one binding are cut into windows: a row layout into whole rows,
    /// column and conv-channel layouts (interleaved groups) into whole outer slabs whose
    /// partial norms add up across windows.
    #[test]
    fn gpu_growl_past_one_binding() {
        let _serial = common::serial();
        let gpu = common::gpu_with_binding_limit(16 << 20);
        let growl = tied::growl::GrowlProx::new(&gpu).unwrap();
        let cases = [
            // 5000 x 1000 f32 = 20 MB: two windows of rows.
            (
                GroupLayout::Rows {
                    rows: 5000,
                    cols: 1000,
                },
                2,
            ),
            // 5000 x 1000 by columns: 1000-element rows of the [out, in] matrix, two windows.
            (
                GroupLayout::Columns {
                    rows: 5000,
                    cols: 1000,
                },
                2,
            ),
            // 300 output channels of 64 x 15 x 15 (57,600 bytes each) = 17 MB: two windows.
            (
                GroupLayout::ConvInChannels {
                    c_out: 300,
                    c_in: 64,
                    khw: 225,
                },
                2,
            ),
        ];
        for (i, (layout, windows)) in cases.into_iter().enumerate() {
            assert_eq!(growl.plan(layout).unwrap().windows(), windows, "{layout:?}");
            // Even groups ten times smaller than odd ones; weights from 0.4 to 0.6 times the
            // large groups' norm zero the small groups and halve the large ones.
            let mut m = Rng::new(91 + i as u64).vec(layout.len());
            for (e, x) in m.iter_mut().enumerate() {
                if layout.group_of(e) % 2 == 0 {
                    *x *= 0.1;
                }
            }
            let n = layout.groups();
            let norms = growl_prox(&m, layout, &vec![0.0; n]).unwrap().norms;
            let large = norms.iter().fold(0.0f32, |a, &b| a.max(b));
            let lam = Weights::Oscar {
                l1: 0.4 * large,
                l2: 0.2 * large / n as f32,
            }
            .sequence(n, 1.0)
            .unwrap();
            let got = growl.prox_blocking(&m, layout, &lam).unwrap();
            assert_matches_twin(&got, &growl_prox(&m, layout, &lam).unwrap(), layout);
            assert!(
                got.zero.iter().any(|&z| !z),
                "{layout:?}: some groups must survive"
            );
            assert!(
                got.zero.iter().any(|&z| z),
                "{layout:?}: some groups must be zeroed"
            );
        }
    }

    #[test]
    fn gpu_growl_matrix_vector_and_layouts() {
        let _serial = common::serial();
        let out = growl()
            .prox_blocking(
                &MATRIX,
                GroupLayout::Rows { rows: 5, cols: 2 },
                &MATRIX_LAMBDA,
            )
            .unwrap();
        assert_matrix_case(&out);
        let mut rng = Rng::new(77);
        let layouts = [
            GroupLayout::Rows {
                rows: 300,
                cols: 17,
            },
            GroupLayout::Columns {
                rows: 40,
                cols: 513,
            },
            GroupLayout::ConvInChannels {
                c_out: 8,
                c_in: 33,
                khw: 9,
            },
            // Groups longer than 256 with rows longer than 256, fewer groups than 256, and
            // kernels of more than 256 taps: every branch of the index stepping.
            GroupLayout::Rows {
                rows: 20,
                cols: 1000,
            },
            GroupLayout::Columns { rows: 600, cols: 7 },
            GroupLayout::ConvInChannels {
                c_out: 3,
                c_in: 5,
                khw: 300,
            },
            // Inner extents of whole quads (vec4 norms for rows, vec4 rescale): a step of 256
            // quads crossing rows, groups and outer slabs.
            GroupLayout::Rows { rows: 700, cols: 4 },
            GroupLayout::Rows {
                rows: 7,
                cols: 2052,
            },
            GroupLayout::ConvInChannels {
                c_out: 200,
                c_in: 6,
                khw: 4,
            },
        ];
        for layout in layouts {
            let m = rng.vec(layout.len());
            let lam = Weights::Oscar { l1: 0.5, l2: 0.02 }
                .sequence(layout.groups(), 1.0)
                .unwrap();
            let got = growl().prox_blocking(&m, layout, &lam).unwrap();
            assert_matches_twin(&got, &growl_prox(&m, layout, &lam).unwrap(), layout);
        }
        let r = growl().prox_blocking(
            &[1.0; 4],
            GroupLayout::Rows { rows: 2, cols: 2 },
            &[1.0, 2.0],
        );
        assert!(matches!(r, Err(Error::Shape(_))), "{r:?}");
    }

    #[test]
    fn gpu_one_million_random() {
        let _serial = common::serial();
        let n = 1_000_000;
        let v: Vec<f32> = Rng::new(9).vec(n).iter().map(|x| x * 2.0).collect();
        let w = Weights::Linear { l1: 0.2, l2: 1.0 }
            .sequence(n, 1.0)
            .unwrap();
        check(&v, &w);
    }

    #[test]
    fn gpu_adversarial() {
        let _serial = common::serial();
        // One giant block of equal magnitudes.
        let n = 1_000_000;
        let v = vec![1.5f32; n];
        let w = Weights::Oscar { l1: 1e-3, l2: 1e-8 }
            .sequence(n, 1.0)
            .unwrap();
        check(&v, &w);
        // Descending ramp plus one spike.
        let mut v: Vec<f32> = (0..20_000).map(|i| 10.0 - i as f32 * 4e-4).collect();
        v.push(-100.0);
        let w = Weights::Oscar { l1: 0.5, l2: 1e-3 }
            .sequence(v.len(), 1.0)
            .unwrap();
        check(&v, &w);
        // All weights larger than the input.
        check(&[1.0, -2.0, 0.5], &[5.0, 5.0, 5.0]);
    }
}

#[test]
fn gpu_out_of_place_and_record_errors() {
    let _serial = common::serial();
    let gpu = common::gpu();
    let owl = tied::growl::OwlProx::new(gpu).unwrap();
    let v = [1.0f32, -5.0, 3.0];
    let plan = owl.plan(3).unwrap();
    let vb = tied::buffer::upload(gpu, "v", &v);
    let wb = tied::buffer::upload(gpu, "w", &[4.0, 1.0, 0.0]);
    let out = tied::buffer::zeros(gpu, "out", 3);
    let mut enc = gpu.device().create_command_encoder(&Default::default());
    plan.record_into(&mut enc, &vb, &wb, &out, None).unwrap();
    assert!(
        plan.record_into(&mut enc, &vb, &wb, &vb, None).is_err(),
        "aliasing is refused"
    );
    let small = tied::buffer::zeros(gpu, "small", 2);
    assert!(matches!(
        plan.record(&mut enc, &small, &wb, None),
        Err(Error::BufferTooSmall { .. })
    ));
    gpu.queue().submit([enc.finish()]);
    let got = pollster::block_on(tied::buffer::read_back(gpu, &out, 3)).unwrap();
    let kept = pollster::block_on(tied::buffer::read_back(gpu, &vb, 3)).unwrap();
    assert_eq!(got, vec![1.0, -1.5, 1.5]);
    assert_eq!(kept, v.to_vec(), "the input is unchanged");
}

/// The GrOWL plan checks `w` and `blocks` before recording anything: a bad call leaves the
/// encoder as it was.
#[test]
fn gpu_growl_record_errors_record_nothing() {
    let _serial = common::serial();
    let gpu = common::gpu();
    let growl = tied::growl::GrowlProx::new(gpu).unwrap();
    let plan = growl.plan(GroupLayout::Rows { rows: 2, cols: 2 }).unwrap();
    let m = [3.0f32, 4.0, 1.0, 0.0];
    let mb = tied::buffer::upload(gpu, "matrix", &m);
    let wb = tied::buffer::upload(gpu, "w", &[1.0, 0.5]);
    let short_w = tied::buffer::upload(gpu, "short w", &[1.0]);
    let mut enc = gpu.device().create_command_encoder(&Default::default());
    assert!(matches!(
        plan.record(&mut enc, &mb, &short_w, None),
        Err(Error::BufferTooSmall { name: "w", .. })
    ));
    assert!(
        plan.record(&mut enc, &mb, &wb, Some(&mb)).is_err(),
        "blocks aliasing the matrix is refused"
    );
    gpu.queue().submit([enc.finish()]);
    let kept = pollster::block_on(tied::buffer::read_back(gpu, &mb, 4)).unwrap();
    assert_eq!(kept, m.to_vec(), "nothing was recorded");
}
