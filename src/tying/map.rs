//! Tie maps: which parameters share a value.

use crate::error::{check_len, Error, Result};

/// The id of a parameter (or row) that belongs to no group: reductions skip it and
/// broadcasts leave it as it is.
pub const UNTIED: u32 = u32::MAX;

/// Most slots `[groups][max(unit_len, 1)]` of a map's group values: 2^30, one binding of
/// 4 GiB.
const MAX_VALUE_SLOTS: u64 = 1 << 30;

/// How the parameter tensor is cut into tied units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TieLayout {
    /// `len` scalars, one group id each.
    Scalar {
        /// Number of parameters.
        len: u32,
    },
    /// A tensor viewed as `[outer][rows][inner]`, one group id per row `r`: the unit is the
    /// vector of the `outer * inner` elements `(o, r, i)`. [`TieLayout::rows`] ties whole rows
    /// of a matrix, [`TieLayout::columns`] its columns, [`TieLayout::conv_in_channels`] the
    /// input channels of a conv kernel.
    Blocks {
        /// Outer extent.
        outer: u32,
        /// Number of tied units (the ids).
        rows: u32,
        /// Inner extent.
        inner: u32,
    },
}

impl TieLayout {
    /// Rows of a row-major `n x d` matrix.
    pub fn rows(n: u32, d: u32) -> Self {
        TieLayout::Blocks {
            outer: 1,
            rows: n,
            inner: d,
        }
    }

    /// Columns of a row-major `out x in` matrix (the `in` index is the unit).
    pub fn columns(out: u32, inputs: u32) -> Self {
        TieLayout::Blocks {
            outer: out,
            rows: inputs,
            inner: 1,
        }
    }

    /// Input channels of a conv kernel `[c_out, c_in, kh, kw]`.
    ///
    /// # Errors
    /// [`Error::Shape`] when `kh * kw` does not fit `u32` (the layout's inner extent).
    pub fn conv_in_channels(c_out: u32, c_in: u32, kh: u32, kw: u32) -> Result<Self> {
        let inner = kh.checked_mul(kw).ok_or_else(|| {
            Error::shape(format!(
                "a conv kernel of {kh} x {kw} taps has more than 2^32 - 1 taps per channel"
            ))
        })?;
        Ok(TieLayout::Blocks {
            outer: c_out,
            rows: c_in,
            inner,
        })
    }

    /// Number of ids (parameters, or rows).
    pub fn units(&self) -> usize {
        match *self {
            TieLayout::Scalar { len } => len as usize,
            TieLayout::Blocks { rows, .. } => rows as usize,
        }
    }

    /// Elements of one unit's value vector (1 for scalars; saturates at `usize::MAX`, which
    /// [`TieMap::new`] refuses).
    pub fn unit_len(&self) -> usize {
        usize::try_from(self.unit_len_u64()).unwrap_or(usize::MAX)
    }

    fn unit_len_u64(&self) -> u64 {
        match *self {
            TieLayout::Scalar { .. } => 1,
            TieLayout::Blocks { outer, inner, .. } => u64::from(outer) * u64::from(inner),
        }
    }

    /// Elements of the parameter tensor.
    pub fn params_len(&self) -> usize {
        self.units().saturating_mul(self.unit_len())
    }

    /// `(outer, rows, inner)` of the view.
    pub(crate) fn view(&self) -> (u32, u32, u32) {
        match *self {
            TieLayout::Scalar { len } => (1, len, 1),
            TieLayout::Blocks { outer, rows, inner } => (outer, rows, inner),
        }
    }
}

/// A validated tie map: a group id (or [`UNTIED`]) per unit of a [`TieLayout`].
///
/// **Group values** (what a reduction writes and a broadcast reads) are a row-major
/// `[groups][unit_len]` tensor of [`TieMap::values_len`] f32:
/// - [`TieLayout::Scalar`]: one value per group, group `g`'s at `values[g]`;
/// - [`TieLayout::Blocks`] `{ outer, rows, inner }`: a vector of `unit_len = outer * inner`
///   per group, laid out like one unit of the tensor: element `(o, r, i)` of the tensor
///   (at `(o * rows + r) * inner + i`) of a row `r` in group `g` pairs with
///   `values[g * outer * inner + o * inner + i]`. For rows of a matrix (`outer = 1`) that is
///   the row itself; for columns (`inner = 1`) the column read top to bottom; for conv input
///   channels `[c_out][kh * kw]`.
///
/// Empty groups reduce to 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TieMap {
    layout: TieLayout,
    groups: u32,
    ids: Vec<u32>,
}

impl TieMap {
    /// Checks and wraps a tie map.
    ///
    /// # Errors
    /// [`Error::Shape`] for a tensor past `u32` indexing, or group values
    /// `[groups][unit_len]` past 2^30 slots (one binding of 4 GiB; a unit of zero elements
    /// still counts one slot per group, so that no group count passes unbounded);
    /// [`Error::LengthMismatch`] when `ids` does not have one entry per unit of `layout`;
    /// [`Error::Shape`] naming the first id that is neither below `groups` nor [`UNTIED`].
    pub fn new(layout: TieLayout, groups: u32, ids: Vec<u32>) -> Result<Self> {
        // Sizes first, so that a saturated length is never reported as a mismatch.
        let unit_len = layout.unit_len_u64();
        if unit_len > u64::from(u32::MAX) {
            return Err(Error::shape("a tied unit has more than 2^32 - 1 elements"));
        }
        let total = layout.units() as u64 * unit_len;
        if total > u64::from(u32::MAX) {
            return Err(Error::shape(format!(
                "{layout:?} has {total} parameters: at most 2^32 - 1 fit u32 indexing"
            )));
        }
        let slots = u64::from(groups) * unit_len.max(1);
        if slots > MAX_VALUE_SLOTS {
            return Err(Error::shape(format!(
                "{groups} groups of {unit_len} values ({slots} slots, a unit of zero elements \
                 counting one) exceed the 2^30 that one binding of group values holds"
            )));
        }
        check_len("tie ids", layout.units(), &ids)?;
        if let Some((i, &g)) = ids
            .iter()
            .enumerate()
            .find(|(_, &g)| g >= groups && g != UNTIED)
        {
            return Err(Error::shape(format!(
                "tie id {g} at index {i} is out of range: there are {groups} groups (use \
                 tied::tying::UNTIED for parameters in no group)"
            )));
        }
        Ok(Self {
            layout,
            groups,
            ids,
        })
    }

    /// The layout.
    pub fn layout(&self) -> TieLayout {
        self.layout
    }

    /// Number of groups (K).
    pub fn groups(&self) -> u32 {
        self.groups
    }

    /// The ids, one per unit.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// Elements of the group-value tensor `[groups][unit_len]`.
    pub fn values_len(&self) -> usize {
        self.groups as usize * self.layout.unit_len()
    }

    /// How far `tensor` (this map's layout, `layout().params_len()` elements) is from tied:
    /// the largest `|x - y|` over the elements `x` of every tied unit and the same element `y`
    /// of its group's first unit (in unit order). 0 exactly when every group's members are
    /// equal (`-0.0` equals `0.0`, equal infinities are equal); NaN when a compared element is NaN; `+Inf` for infinite
    /// differences. Untied units are not compared. In the tensor's units (no scaling).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] when `tensor` does not have `layout().params_len()` elements.
    pub fn max_deviation(&self, tensor: &[f32]) -> Result<f32> {
        check_len("tensor", self.layout.params_len(), tensor)?;
        let (outer, rows, inner) = self.layout.view();
        let (outer, rows, inner) = (outer as usize, rows as usize, inner as usize);
        let mut first = vec![usize::MAX; self.groups as usize];
        let mut worst = 0.0f32;
        for (r, &g) in self.ids.iter().enumerate() {
            if g == UNTIED {
                continue;
            }
            let f = &mut first[g as usize];
            if *f == usize::MAX {
                *f = r;
                continue;
            }
            for o in 0..outer {
                for i in 0..inner {
                    let a = tensor[(o * rows + r) * inner + i];
                    let b = tensor[(o * rows + *f) * inner + i];
                    // Equal infinities are equal (their difference would be NaN).
                    let d = if a == b { 0.0 } else { (a - b).abs() };
                    if d.is_nan() {
                        return Ok(f32::NAN);
                    }
                    worst = worst.max(d);
                }
            }
        }
        Ok(worst)
    }

    /// Members per group.
    pub fn group_sizes(&self) -> Vec<u32> {
        let mut sizes = vec![0u32; self.groups as usize];
        for &g in &self.ids {
            if g != UNTIED {
                sizes[g as usize] += 1;
            }
        }
        sizes
    }

    /// Units sorted by group (stable: ascending index within a group) and group offsets into
    /// that list (`groups + 1` entries). Untied units are left out.
    pub(crate) fn grouped(&self) -> (Vec<u32>, Vec<u32>) {
        let sizes = self.group_sizes();
        let mut offsets = Vec::with_capacity(sizes.len() + 1);
        let mut acc = 0u32;
        offsets.push(0);
        for s in &sizes {
            acc += s;
            offsets.push(acc);
        }
        let mut next = offsets.clone();
        let mut perm = vec![0u32; acc as usize];
        for (i, &g) in self.ids.iter().enumerate() {
            if g != UNTIED {
                perm[next[g as usize] as usize] = i as u32;
                next[g as usize] += 1;
            }
        }
        (perm, offsets)
    }
}
