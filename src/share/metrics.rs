//! The paper's sharing metrics of one grouped weight tensor.
//!
//! Definitions (Zhang et al., Table 1, and the public code's `update_mask`):
//! - sparsity: zero groups / groups;
//! - clusters: the number of sets of nonzero groups that share one value vector (a nonzero
//!   group tied to no other counts as a cluster of one);
//! - unique nonzero values: a cluster of `c` groups of `g` scalars has `g` unique values (a
//!   singleton nonzero group too); zero groups have none;
//! - unique values: the unique nonzero values plus one for the value 0 when the tensor has a
//!   zero group. This follows the code, which counts `len(np.unique(W))` on the masked tensor,
//!   so 0 is one value;
//! - sharing = nonzero parameters / unique nonzero values;
//! - compression = total parameters / unique values.
//!
//! [`ShareMetrics::from_map`] computes them from a tie map and a zero mask (what the tensor
//! will hold after group averaging), [`ShareMetrics::from_tensor`] by counting the distinct
//! values and value vectors of an actual tensor. After zeroing the mask and projecting the
//! tensor onto the map (`tied::tying::cpu::project`), the two agree, unless two clusters'
//! means happen to share a value or a mean element is exactly 0, which the counts cannot tell
//! apart.

use std::collections::HashSet;

use crate::error::{check_len, Error, Result};
use crate::growl::GroupLayout;
use crate::tying::{TieMap, UNTIED};

/// Counts behind the paper's metrics (see the module docs). Ratios are methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShareMetrics {
    /// Groups (rows, columns, conv input channels).
    pub groups: usize,
    /// Zero groups.
    pub zero_groups: usize,
    /// Clusters of nonzero groups sharing one value vector (singletons included).
    pub clusters: usize,
    /// Parameters in the tensor.
    pub params: usize,
    /// Nonzero parameters.
    pub nonzero: usize,
    /// Unique nonzero values.
    pub unique_nonzero: usize,
    /// Unique values, 0 counted once when present (the paper's `np.unique`).
    pub unique: usize,
}

impl ShareMetrics {
    /// The metrics that a tensor tied by `map` with the groups that `zero` marks zeroed has:
    /// a unit of `map` marked zero counts as zero whatever its id; every other unit belongs to
    /// its group's cluster, or is a cluster of one when [`UNTIED`]. Every nonzero unit is
    /// assumed to hold nonzero values (`unit_len` nonzero parameters each).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] when `zero` does not have one entry per unit of `map`.
    pub fn from_map(map: &TieMap, zero: &[bool]) -> Result<Self> {
        let layout = map.layout();
        let units = layout.units();
        check_len("zero mask", units, zero)?;
        let g = layout.unit_len();
        let zero_groups = zero.iter().filter(|&&z| z).count();
        let mut seen = vec![false; map.groups() as usize];
        let mut clusters = 0usize;
        for (&id, &z) in map.ids().iter().zip(zero) {
            if z {
                continue;
            }
            // An untied unit is a cluster of its own; a group counts at its first unit.
            if id == UNTIED || !std::mem::replace(&mut seen[id as usize], true) {
                clusters += 1;
            }
        }
        let unique_nonzero = clusters * g;
        let has_zero = zero_groups > 0 && g > 0;
        Ok(Self {
            groups: units,
            zero_groups,
            clusters,
            params: layout.params_len(),
            nonzero: (units - zero_groups) * g,
            unique_nonzero,
            unique: unique_nonzero + usize::from(has_zero),
        })
    }

    /// The metrics counted on a tensor: a group is zero when all its elements are 0; nonzero
    /// parameters are elements `!= 0`; unique values are distinct values (`-0.0` and `0.0`
    /// are one value, as in numpy); clusters are distinct value vectors among the nonzero
    /// groups.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] when `w` does not match `layout`; [`Error::Shape`] for a
    /// non-finite weight.
    pub fn from_tensor(layout: GroupLayout, w: &[f32]) -> Result<Self> {
        check_len("weights", layout.len(), w)?;
        if let Some(i) = w.iter().position(|x| !x.is_finite()) {
            return Err(Error::shape(format!(
                "weight {i} is {}: the metrics need finite weights",
                w[i]
            )));
        }
        let key = |x: f32| if x == 0.0 { 0u32 } else { x.to_bits() };
        let groups = layout.groups();
        // Each group's value vector, in tensor order.
        let mut vectors = vec![Vec::new(); groups];
        for (e, &x) in w.iter().enumerate() {
            vectors[layout.group_of(e)].push(key(x));
        }
        let zero: Vec<bool> = vectors.iter().map(|v| v.iter().all(|&b| b == 0)).collect();
        let zero_groups = zero.iter().filter(|&&z| z).count();
        let clusters = vectors
            .iter()
            .zip(&zero)
            .filter(|(_, &z)| !z)
            .map(|(v, _)| v.as_slice())
            .collect::<HashSet<&[u32]>>()
            .len();
        let values: HashSet<u32> = w.iter().map(|&x| key(x)).collect();
        let has_zero = values.contains(&0);
        Ok(Self {
            groups,
            zero_groups,
            clusters,
            params: w.len(),
            nonzero: w.iter().filter(|&&x| x != 0.0).count(),
            unique_nonzero: values.len() - usize::from(has_zero),
            unique: values.len(),
        })
    }

    /// Zero groups / groups (0 for no groups).
    pub fn sparsity(&self) -> f64 {
        ratio(self.zero_groups, self.groups, 0.0)
    }

    /// Nonzero parameters / unique nonzero values (1 when there are no nonzero values).
    pub fn sharing(&self) -> f64 {
        ratio(self.nonzero, self.unique_nonzero, 1.0)
    }

    /// Total parameters / unique values (1 for an empty tensor).
    pub fn compression(&self) -> f64 {
        ratio(self.params, self.unique, 1.0)
    }
}

fn ratio(a: usize, b: usize, empty: f64) -> f64 {
    if b == 0 {
        empty
    } else {
        a as f64 / b as f64
    }
}
