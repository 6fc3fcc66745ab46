//! Large 1D grids folded into 2D, and the launch arithmetic every kernel shares.

use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// A 1D grid of `total` workgroups folded into `x * y` (each at most `max_per_dim`).
/// Workgroups with linear index `>= total` exit at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Grid {
    /// Workgroups wanted.
    pub(crate) total: u32,
    /// Dispatch width (also the `fold_x` the shader needs).
    pub(crate) x: u32,
    /// Dispatch height.
    pub(crate) y: u32,
}

impl Grid {
    /// One workgroup.
    pub(crate) const ONE: Grid = Grid {
        total: 1,
        x: 1,
        y: 1,
    };

    /// Folds `total` workgroups for a device allowing `max_per_dim` per dimension.
    pub(crate) fn fold(total: u64, max_per_dim: u32) -> Result<Self> {
        let max = u64::from(max_per_dim.max(1));
        if total > max * max {
            return Err(Error::LimitExceeded {
                limit: "max_compute_workgroups_per_dimension",
                needed: total.div_ceil(max),
                allowed: max,
                hint: "; the problem is too large for one dispatch, split it".into(),
            });
        }
        if total > u64::from(u32::MAX) {
            return Err(Error::LimitExceeded {
                limit: "workgroups in one dispatch",
                needed: total,
                allowed: u64::from(u32::MAX),
                hint: "; split the problem".into(),
            });
        }
        let x = total.min(max);
        let y = if total == 0 { 0 } else { total.div_ceil(x) };
        if x * y > u64::from(u32::MAX) {
            // The shaders' linear workgroup index would wrap.
            return Err(Error::LimitExceeded {
                limit: "workgroups in one folded dispatch",
                needed: x * y,
                allowed: u64::from(u32::MAX),
                hint: "; split the problem".into(),
            });
        }
        Ok(Self {
            total: total as u32,
            x: x as u32,
            y: y as u32,
        })
    }

    /// [`Grid::fold`] of `total` workgroups for `gpu`'s `max_compute_workgroups_per_dimension`.
    pub(crate) fn for_workgroups(gpu: &Gpu, total: u64) -> Result<Self> {
        Self::fold(
            total,
            gpu.device().limits().max_compute_workgroups_per_dimension,
        )
    }

    /// The grid of `items` work items, `per_workgroup` to a workgroup (for example
    /// `WORKGROUP_SIZE` times the items each thread takes), folded for `gpu`.
    pub(crate) fn for_items(gpu: &Gpu, items: u64, per_workgroup: u64) -> Result<Self> {
        Self::for_workgroups(gpu, items.div_ceil(per_workgroup.max(1)))
    }

    /// The `fold_x` a kernel's uniform passes to WGSL's `linear_workgroup` (at least 1).
    pub(crate) fn fold_x(&self) -> u32 {
        self.x.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::Grid;

    #[test]
    fn folds_past_one_dimension() {
        let g = Grid::fold(70_000, 65_535).unwrap();
        assert_eq!((g.x, g.y, g.total), (65_535, 2, 70_000));
        let g = Grid::fold(10, 65_535).unwrap();
        assert_eq!((g.x, g.y), (10, 1));
        assert_eq!(Grid::fold(0, 65_535).unwrap().total, 0);
        assert!(Grid::fold(65_535u64 * 65_535 + 1, 65_535).is_err());
        assert!(Grid::fold(1 << 32, 1 << 16).is_err());
    }

    /// Edge totals and limits: an error or a grid that covers `total` within the limit, never
    /// a panic.
    #[test]
    fn edge_sizes_fold_or_err() {
        let edges = [
            0u64,
            1,
            2,
            255,
            256,
            65_535,
            65_536,
            1 << 31,
            u32::MAX as u64,
            1 << 32,
        ];
        for &total in edges.iter().chain(&[u64::MAX, u64::MAX - 1]) {
            for &max in &edges {
                let max = max.min(u64::from(u32::MAX)) as u32;
                if let Ok(g) = Grid::fold(total, max) {
                    assert_eq!(u64::from(g.total), total);
                    assert!(u64::from(g.x) * u64::from(g.y) >= total);
                    assert!(g.x <= max.max(1) && g.y <= max.max(1));
                }
            }
        }
    }
}
