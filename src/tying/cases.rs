//! The tie maps the report and the benches measure.

use super::{TieLayout, TieMap};
use crate::verify::Rng;

/// A named benchmark map.
#[derive(Clone, Debug)]
pub struct TieCase {
    /// Short description.
    pub name: String,
    /// The map.
    pub map: TieMap,
}

fn case(name: String, layout: TieLayout, groups: u32, ids: Vec<u32>) -> TieCase {
    TieCase {
        name,
        map: TieMap::new(layout, groups, ids).expect("benchmark maps are valid"),
    }
}

/// Power-law group of `u` in [0, 1): heavily skewed to small ids, all `k` reachable.
fn power_law(u: f64, k: u32) -> u32 {
    ((f64::from(k).powf(u * u * u) - 1.0) as u32).min(k - 1)
}

/// Scalar maps of `p` parameters and `k` groups (uniform sizes assigned at random, uniform
/// sizes in contiguous blocks, power-law sizes at random), and row ties of an `n x d` matrix
/// with `row_groups` groups.
pub fn cases(p: u32, k: u32, n: u32, d: u32, row_groups: u32) -> Vec<TieCase> {
    let mut rng = Rng::new(7);
    let random: Vec<u32> = (0..p)
        .map(|_| (rng.next_u64() % u64::from(k)) as u32)
        .collect();
    let per = p.div_ceil(k);
    let contiguous: Vec<u32> = (0..p).map(|i| i / per).collect();
    let skewed: Vec<u32> = (0..p)
        .map(|_| power_law((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64, k))
        .collect();
    let rows: Vec<u32> = (0..n)
        .map(|_| (rng.next_u64() % u64::from(row_groups)) as u32)
        .collect();
    let scalar = TieLayout::Scalar { len: p };
    vec![
        case(
            format!("P={p} K={k} uniform, random members"),
            scalar,
            k,
            random,
        ),
        case(
            format!("P={p} K={k} uniform, contiguous"),
            scalar,
            k,
            contiguous,
        ),
        case(format!("P={p} K={k} power-law"), scalar, k, skewed),
        case(
            format!("rows {n}x{d} K={row_groups}"),
            TieLayout::rows(n, d),
            row_groups,
            rows,
        ),
    ]
}

/// Full cases: P = 1e7 with K = 1e5, and rows of a 4096 x 1024 matrix in 512 groups.
pub fn full() -> Vec<TieCase> {
    cases(10_000_000, 100_000, 4096, 1024, 512)
}

/// Small cases for software GPUs.
pub fn quick() -> Vec<TieCase> {
    cases(200_000, 2_000, 256, 256, 32)
}
