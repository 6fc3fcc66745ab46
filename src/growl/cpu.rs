//! The OWL and GrOWL prox on the CPU: a product in its own right (a fallback without a GPU)
//! and the reference twin of the GPU kernels.
//!
//! Speed comes from sorting magnitudes with an LSD radix sort on their bits (non-negative f32
//! bits order like the floats) and a linear stack PAV with f64 block sums.

use super::{GroupLayout, GrowlOptions, GrowlOutput};
use crate::error::{check_len, Result};

/// Indices of `mags` (all >= 0, finite) in descending order of magnitude; ties in any order
/// (the prox gives equal outputs to equal inputs, so the tie order does not matter).
fn argsort_desc(mags: &[f32]) -> Vec<u32> {
    let n = mags.len();
    // Descending = ascending in the complemented bits.
    let mut keys: Vec<u32> = mags.iter().map(|m| !m.to_bits()).collect();
    let mut idx: Vec<u32> = (0..n as u32).collect();
    if n < 256 {
        idx.sort_unstable_by_key(|&i| keys[i as usize]);
        return idx;
    }
    let mut keys_tmp = vec![0u32; n];
    let mut idx_tmp = vec![0u32; n];
    for shift in [0u32, 8, 16, 24] {
        let mut counts = [0usize; 256];
        for &k in &keys {
            counts[((k >> shift) & 255) as usize] += 1;
        }
        if counts.contains(&n) {
            continue; // every key has this digit: the pass would not move anything
        }
        let mut offsets = [0usize; 256];
        let mut acc = 0;
        for (o, c) in offsets.iter_mut().zip(counts) {
            *o = acc;
            acc += c;
        }
        for (&k, &i) in keys.iter().zip(&idx) {
            let d = ((k >> shift) & 255) as usize;
            keys_tmp[offsets[d]] = k;
            idx_tmp[offsets[d]] = i;
            offsets[d] += 1;
        }
        std::mem::swap(&mut keys, &mut keys_tmp);
        std::mem::swap(&mut idx, &mut idx_tmp);
    }
    idx
}

/// Non-increasing isotonic regression of `z` by stack PAV, clipped at zero, written into `y`.
/// Also returns each position's block id (0-based, in sorted order).
fn pav_clip(z: &[f64], y: &mut [f64], block_of: &mut [u32]) {
    // Blocks as (sum, count, first position).
    let mut sums: Vec<f64> = Vec::with_capacity(z.len());
    let mut counts: Vec<usize> = Vec::with_capacity(z.len());
    for &v in z {
        let (mut s, mut c) = (v, 1usize);
        while let (Some(&ps), Some(&pc)) = (sums.last(), counts.last()) {
            // Merge while the previous block's mean <= this block's mean.
            if ps * c as f64 <= s * pc as f64 {
                s += ps;
                c += pc;
                sums.pop();
                counts.pop();
            } else {
                break;
            }
        }
        sums.push(s);
        counts.push(c);
    }
    let mut pos = 0;
    for (b, (&s, &c)) in sums.iter().zip(&counts).enumerate() {
        let v = (s / c as f64).max(0.0);
        y[pos..pos + c].fill(v);
        block_of[pos..pos + c].fill(b as u32);
        pos += c;
    }
}

/// The OWL prox of `v` with weights `w` (same length, non-negative, non-increasing).
///
/// # Errors
/// [`Error::LengthMismatch`](crate::Error::LengthMismatch), [`Error::Shape`](crate::Error::Shape) for invalid weights or a non-finite input.
pub fn owl_prox(v: &[f32], w: &[f32]) -> Result<Vec<f32>> {
    Ok(owl_prox_blocks(v, w)?.0)
}

/// The OWL prox and, per element, its PAV block id (blocks numbered from the largest
/// magnitudes down; elements with equal outputs in one block share an id).
///
/// # Errors
/// As [`owl_prox`].
pub fn owl_prox_blocks(v: &[f32], w: &[f32]) -> Result<(Vec<f32>, Vec<u32>)> {
    super::check_owl_input(v, w)?;
    let mags: Vec<f32> = v.iter().map(|x| x.abs()).collect();
    let order = argsort_desc(&mags);
    let z: Vec<f64> = order
        .iter()
        .zip(w)
        .map(|(&i, &wk)| f64::from(mags[i as usize]) - f64::from(wk))
        .collect();
    let mut y = vec![0.0f64; z.len()];
    let mut blocks_sorted = vec![0u32; z.len()];
    pav_clip(&z, &mut y, &mut blocks_sorted);
    let mut out = vec![0.0f32; v.len()];
    let mut blocks = vec![0u32; v.len()];
    for (k, &i) in order.iter().enumerate() {
        let i = i as usize;
        out[i] = (y[k] as f32).copysign(v[i]);
        if v[i] == 0.0 {
            out[i] = 0.0;
        }
        blocks[i] = blocks_sorted[k];
    }
    Ok((out, blocks))
}

/// Each group's sum of squares, in f64.
pub(crate) fn group_squares(weights: &[f32], layout: GroupLayout) -> Vec<f64> {
    let mut sq = vec![0.0f64; layout.groups()];
    for (e, &x) in weights.iter().enumerate() {
        sq[layout.group_of(e)] += f64::from(x) * f64::from(x);
    }
    sq
}

/// The GrOWL prox with the default options ([`GrowlOptions::default`]: groups whose norm is
/// below `f32::EPSILON` are zero): see [`growl_prox_with`].
///
/// # Errors
/// As [`growl_prox_with`].
pub fn growl_prox(weights: &[f32], layout: GroupLayout, w: &[f32]) -> Result<GrowlOutput> {
    growl_prox_with(weights, layout, w, GrowlOptions::default())
}

/// The GrOWL prox: group norms (f64 sums of squares), OWL prox of the norms with weights `w`
/// (one per group), each group rescaled. Groups whose norm is below `options.zero_below` are
/// treated as zero (norm 0 into the OWL prox, zero out, no division).
///
/// # Errors
/// [`Error::LengthMismatch`](crate::Error::LengthMismatch) when `weights` or `w` do not match
/// `layout`; [`Error::Shape`](crate::Error::Shape) for invalid weights, an invalid threshold,
/// non-finite weights in the matrix or a group norm past `f32::MAX`.
pub fn growl_prox_with(
    weights: &[f32],
    layout: GroupLayout,
    w: &[f32],
    options: GrowlOptions,
) -> Result<GrowlOutput> {
    check_len("weights matrix", layout.checked_len()?, weights)?;
    let groups = layout.groups();
    check_len("OWL weights", groups, w)?;
    super::check_matrix(weights)?;
    let norms = super::group_norms(&group_squares(weights, layout), options, 0.0)?;
    let (new_norms, blocks) = owl_prox_blocks(&norms, w)?;
    let scale: Vec<f32> = norms
        .iter()
        .zip(&new_norms)
        .map(|(&r, &r2)| if r == 0.0 { 0.0 } else { r2 / r })
        .collect();
    let out = weights
        .iter()
        .enumerate()
        .map(|(e, &x)| x * scale[layout.group_of(e)])
        .collect();
    Ok(GrowlOutput {
        weights: out,
        zero: new_norms.iter().map(|&r| r == 0.0).collect(),
        norms: new_norms,
        blocks,
    })
}
