//! Tie discovery: which groups of a weight tensor are zero, and which of the others to tie.
//!
//! Layout: a weight tensor cut into groups by a [`GroupLayout`] (rows, columns or conv input
//! channels), row-major as the layout says. Each group is a vector of the group's elements in
//! tensor order (for columns and conv channels: output by output). The tie map is for the
//! same cut as a [`TieLayout`] ([`tie_layout`]): [`TieLayout::rows`], [`TieLayout::columns`]
//! or [`TieLayout::conv_in_channels`], one id per group.
//!
//! The paper's protocol (`utils_retrain.py`): group norms; groups whose norm is at most the
//! threshold are zero (the paper: `f32::EPSILON`, absolute); on the nonzero groups the
//! similarity `S_ij = <w_i, w_j> / max(|w_i|^2, |w_j|^2)` (1 on the diagonal, in [-1, 1]);
//! affinity propagation on `S` with a preference (the paper: 0.6 on MNIST, 0.8 on VGG). Each
//! cluster becomes one tie group (singleton clusters included, so a tie group per cluster);
//! zero groups are [`UNTIED`] and reported in a mask.
//!
//! Norms, inner products and `S` are computed in f64 on the CPU (the paper's are f32 numpy;
//! the clustering agrees except on near-ties at f32 precision). Cost: `O(m^2 * g)` for `m`
//! nonzero groups of `g` elements, plus affinity propagation's `O(m^2)` per iteration.

use crate::error::{check_len, Error, Result};
use crate::growl::GroupLayout;
use crate::share::affinity::{AffinityPropagation, Clustering, Preference, NO_LABEL};
use crate::tying::{TieLayout, TieMap, UNTIED};

/// `(outer, groups, inner)`: element `(o, g, i)` of the tensor is at `(o * groups + g) * inner
/// + i`, and group `g` is the `outer * inner` elements `(o, g, i)` in that order.
fn view(layout: GroupLayout) -> (usize, usize, usize) {
    match layout {
        GroupLayout::Rows { rows, cols } => (1, rows, cols),
        GroupLayout::Columns { rows, cols } => (rows, cols, 1),
        GroupLayout::ConvInChannels { c_out, c_in, khw } => (c_out, c_in, khw),
    }
}

/// The [`TieLayout`] whose units are the groups of `layout`: rows, columns or conv input
/// channels alike.
///
/// # Errors
/// [`Error::Shape`] when an extent does not fit `u32`.
pub fn tie_layout(layout: GroupLayout) -> Result<TieLayout> {
    let (outer, rows, inner) = view(layout);
    let u = |v: usize| {
        u32::try_from(v).map_err(|_| Error::shape(format!("extent {v} does not fit u32")))
    };
    Ok(TieLayout::Blocks {
        outer: u(outer)?,
        rows: u(rows)?,
        inner: u(inner)?,
    })
}

/// Each group's L2 norm, in f64 (elements added in tensor order).
///
/// # Errors
/// [`Error::LengthMismatch`] when `w` does not have `layout.len()` elements.
pub fn group_norms(layout: GroupLayout, w: &[f32]) -> Result<Vec<f64>> {
    check_len("weights", layout.len(), w)?;
    Ok(crate::growl::cpu::group_squares(w, layout)
        .into_iter()
        .map(f64::sqrt)
        .collect())
}

/// The zero mask: `norm <= threshold` for each group.
pub fn zero_mask(norms: &[f64], threshold: f32) -> Vec<bool> {
    norms.iter().map(|&r| r <= f64::from(threshold)).collect()
}

/// Writes 0 into every element of the groups that `zero` marks (the paper re-zeroes masked
/// groups after every update).
///
/// # Errors
/// [`Error::LengthMismatch`] when `w` or `zero` do not match `layout`.
pub fn apply_zero_mask(layout: GroupLayout, w: &mut [f32], zero: &[bool]) -> Result<()> {
    check_len("weights", layout.len(), w)?;
    check_len("zero mask", layout.groups(), zero)?;
    for (e, x) in w.iter_mut().enumerate() {
        if zero[layout.group_of(e)] {
            *x = 0.0;
        }
    }
    Ok(())
}

/// The paper's similarity of the listed groups, `m x m` row-major with `m = groups.len()`:
/// `S_ij = <w_i, w_j> / max(|w_i|^2, |w_j|^2)` in f64 (the diagonal is 1). Every listed group
/// must be nonzero.
///
/// # Errors
/// [`Error::LengthMismatch`] when `w` does not match `layout`; [`Error::Shape`] for a group
/// index out of range, a zero group, or a non-finite weight in a listed group.
pub fn similarity(layout: GroupLayout, w: &[f32], groups: &[usize]) -> Result<Vec<f64>> {
    check_len("weights", layout.len(), w)?;
    let (outer, n, inner) = view(layout);
    let g = outer * inner;
    let m = groups.len();
    // Gather the groups into an m x g f64 matrix.
    let mut v = vec![0.0f64; m * g];
    for (i, &grp) in groups.iter().enumerate() {
        if grp >= n {
            return Err(Error::shape(format!(
                "group {grp} is out of range: the layout has {n} groups"
            )));
        }
        for o in 0..outer {
            for k in 0..inner {
                let x = w[(o * n + grp) * inner + k];
                if !x.is_finite() {
                    return Err(Error::shape(format!(
                        "weight {} (group {grp}) is {x}: the similarity needs finite weights",
                        (o * n + grp) * inner + k
                    )));
                }
                v[i * g + o * inner + k] = f64::from(x);
            }
        }
    }
    let dot = |i: usize, j: usize| -> f64 {
        let (a, b) = (&v[i * g..(i + 1) * g], &v[j * g..(j + 1) * g]);
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    };
    let sq: Vec<f64> = (0..m).map(|i| dot(i, i)).collect();
    if let Some(i) = sq.iter().position(|&s| s == 0.0) {
        return Err(Error::shape(format!(
            "group {} is zero: the similarity is defined on nonzero groups",
            groups[i]
        )));
    }
    let mut s = vec![0.0f64; m * m];
    for i in 0..m {
        s[i * m + i] = 1.0;
        for j in i + 1..m {
            let v = dot(i, j) / sq[i].max(sq[j]);
            s[i * m + j] = v;
            s[j * m + i] = v;
        }
    }
    Ok(s)
}

/// Settings of tie discovery. [`Default`] is the paper's MNIST: threshold `f32::EPSILON`,
/// affinity propagation with sklearn's defaults and preference 0.6.
#[derive(Clone, Debug, PartialEq)]
pub struct DiscoverTies {
    /// Groups whose L2 norm is at most this are zero (absolute; >= 0). The paper: `f32::EPSILON`
    /// (its masking step zeroes `norm <= eps`; its clustering step drops `norm < eps`).
    pub threshold: f32,
    /// The clustering of the nonzero groups.
    pub ap: AffinityPropagation,
}

impl Default for DiscoverTies {
    fn default() -> Self {
        Self {
            threshold: f32::EPSILON,
            ap: AffinityPropagation::with_preference(Preference::Scalar(0.6)),
        }
    }
}

/// What tie discovery found.
#[derive(Clone, Debug, PartialEq)]
pub struct Discovery {
    /// One id per group: the group's cluster, or [`UNTIED`] for a zero group (and for every
    /// group when affinity propagation ended without exemplars). `map.groups()` is the number
    /// of clusters.
    pub map: TieMap,
    /// Whether each group is zero (`norm <= threshold`).
    pub zero: Vec<bool>,
    /// Each group's L2 norm (f64).
    pub norms: Vec<f64>,
    /// The nonzero groups, ascending: point `i` of [`Discovery::clustering`] is group
    /// `nonzero[i]`.
    pub nonzero: Vec<usize>,
    /// The affinity propagation result on the nonzero groups (its convergence flag included).
    pub clustering: Clustering,
}

impl DiscoverTies {
    /// Finds the zero groups of `w` and clusters the others into tie groups.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] when `w` does not match `layout`; [`Error::Shape`] for a
    /// negative or non-finite threshold, a non-finite weight, an extent past `u32`, or bad
    /// affinity propagation settings.
    pub fn discover(&self, layout: GroupLayout, w: &[f32]) -> Result<Discovery> {
        let (norms, zero, nonzero) = self.zero_groups(layout, w)?;
        let s = similarity(layout, w, &nonzero)?;
        let clustering = self.ap.fit(nonzero.len(), &s)?;
        Self::finish(layout, norms, zero, nonzero, clustering)
    }

    /// [`DiscoverTies::discover`] with the similarity computed on the GPU by `sim` (f32, see
    /// [`crate::share::similarity`]) and affinity propagation run on it
    /// ([`AffinityPropagation::fit_f32`]). Near-ties at f32 precision may cluster differently
    /// from the f64 path.
    ///
    /// # Errors
    /// As [`DiscoverTies::discover`], plus the similarity's device and readback errors.
    pub async fn discover_on(
        &self,
        sim: &crate::share::Similarity,
        layout: GroupLayout,
        w: &[f32],
    ) -> Result<Discovery> {
        let (norms, zero, nonzero) = self.zero_groups(layout, w)?;
        let s = sim.similarity(layout, w, &nonzero).await?;
        let clustering = self.ap.fit_f32(nonzero.len(), &s)?;
        Self::finish(layout, norms, zero, nonzero, clustering)
    }

    /// Blocking [`DiscoverTies::discover_on`] (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn discover_on_blocking(
        &self,
        sim: &crate::share::Similarity,
        layout: GroupLayout,
        w: &[f32],
    ) -> Result<Discovery> {
        pollster::block_on(self.discover_on(sim, layout, w))
    }

    /// Checks, norms, the zero mask and the nonzero groups.
    #[allow(clippy::type_complexity)]
    fn zero_groups(
        &self,
        layout: GroupLayout,
        w: &[f32],
    ) -> Result<(Vec<f64>, Vec<bool>, Vec<usize>)> {
        if !(self.threshold.is_finite() && self.threshold >= 0.0) {
            return Err(Error::shape(format!(
                "zero threshold {} must be finite and >= 0",
                self.threshold
            )));
        }
        tie_layout(layout)?;
        let norms = group_norms(layout, w)?;
        if let Some(i) = w.iter().position(|x| !x.is_finite()) {
            return Err(Error::shape(format!(
                "weight {i} is {}: tie discovery needs finite weights",
                w[i]
            )));
        }
        let zero = zero_mask(&norms, self.threshold);
        let nonzero: Vec<usize> = (0..zero.len()).filter(|&g| !zero[g]).collect();
        Ok((norms, zero, nonzero))
    }

    /// The tie map from the clustering of the nonzero groups.
    fn finish(
        layout: GroupLayout,
        norms: Vec<f64>,
        zero: Vec<bool>,
        nonzero: Vec<usize>,
        clustering: Clustering,
    ) -> Result<Discovery> {
        let tl = tie_layout(layout)?;
        let mut ids = vec![UNTIED; zero.len()];
        for (&g, &l) in nonzero.iter().zip(&clustering.labels) {
            if l != NO_LABEL {
                ids[g] = l as u32;
            }
        }
        let k = u32::try_from(clustering.clusters())
            .map_err(|_| Error::shape("more than 2^32 clusters"))?;
        let map = TieMap::new(tl, k, ids)?;
        Ok(Discovery {
            map,
            zero,
            norms,
            nonzero,
            clustering,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_match_group_of() {
        for layout in [
            GroupLayout::Rows { rows: 3, cols: 4 },
            GroupLayout::Columns { rows: 3, cols: 4 },
            GroupLayout::ConvInChannels {
                c_out: 2,
                c_in: 3,
                khw: 2,
            },
        ] {
            let (outer, n, inner) = view(layout);
            let tl = tie_layout(layout).unwrap();
            assert_eq!(tl.units(), layout.groups());
            assert_eq!(tl.params_len(), layout.len());
            for o in 0..outer {
                for g in 0..n {
                    for i in 0..inner {
                        assert_eq!(layout.group_of((o * n + g) * inner + i), g);
                    }
                }
            }
        }
    }

    #[test]
    fn similarity_is_the_papers() {
        // Rows (1, 0), (2, 0), (0, 1): S_01 = 2 / 4, S_02 = 0.
        let layout = GroupLayout::Rows { rows: 3, cols: 2 };
        let s = similarity(layout, &[1.0, 0.0, 2.0, 0.0, 0.0, 1.0], &[0, 1, 2]).unwrap();
        assert_eq!(s, [1.0, 0.5, 0.0, 0.5, 1.0, 0.0, 0.0, 0.0, 1.0]);
        assert!(similarity(layout, &[0.0; 6], &[1]).is_err());
        assert!(similarity(layout, &[1.0; 6], &[3]).is_err());
    }
}
