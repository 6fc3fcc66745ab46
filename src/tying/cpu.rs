//! CPU twins of the tied-group ops (f64 accumulation, in member order).
//!
//! References, not a checked public path: slices must have the lengths the map implies
//! (`params_len`, `values_len`), else these functions panic. Same names and argument order as
//! the ops (`Ties::reduce`, ...); group values laid out as [`TieMap`] states.

use super::{Reduction, TieMap, UNTIED};

/// Per-group reduction: `out[g][c]` = sum (or mean) of member units' element `c`.
/// Empty groups give 0. `src` has `map.layout().params_len()` elements.
pub fn reduce(map: &TieMap, src: &[f32], how: Reduction) -> Vec<f32> {
    let (outer, rows, inner) = map.layout().view();
    let (outer, rows, inner) = (outer as usize, rows as usize, inner as usize);
    let cols = outer * inner;
    let mut acc = vec![0.0f64; map.values_len()];
    for (r, &g) in map.ids().iter().enumerate() {
        if g == UNTIED {
            continue;
        }
        for o in 0..outer {
            for i in 0..inner {
                acc[g as usize * cols + o * inner + i] +=
                    f64::from(src[(o * rows + r) * inner + i]);
            }
        }
    }
    if how == Reduction::Mean {
        for (g, size) in map.group_sizes().iter().enumerate() {
            if *size > 0 {
                for v in &mut acc[g * cols..(g + 1) * cols] {
                    *v /= f64::from(*size);
                }
            }
        }
    }
    acc.into_iter().map(|v| v as f32).collect()
}

/// Writes each group's value to its members; untied units keep `target`'s values.
pub fn broadcast(map: &TieMap, target: &[f32], values: &[f32]) -> Vec<f32> {
    let (outer, rows, inner) = map.layout().view();
    let (outer, rows, inner) = (outer as usize, rows as usize, inner as usize);
    let cols = outer * inner;
    let mut out = target.to_vec();
    for (r, &g) in map.ids().iter().enumerate() {
        if g == UNTIED {
            continue;
        }
        for o in 0..outer {
            for i in 0..inner {
                out[(o * rows + r) * inner + i] = values[g as usize * cols + o * inner + i];
            }
        }
    }
    out
}

/// Reduce, then broadcast back into the same tensor (the training step).
pub fn reduce_broadcast(map: &TieMap, grads: &[f32], how: Reduction) -> Vec<f32> {
    broadcast(map, grads, &reduce(map, grads, how))
}

/// Tying projection: every tied unit becomes its group's mean.
pub fn project(map: &TieMap, weights: &[f32]) -> Vec<f32> {
    reduce_broadcast(map, weights, Reduction::Mean)
}
