//! Plan types: what a [`TiePlan`] holds on the GPU, and the assembly of the plan of one
//! binding ([`Single`]) from the scalar, block and broadcast planners.

use super::map::{TieLayout, TieMap, UNTIED};
use super::reduce_runs::quad_padded_with;
use super::runs::{broadcast_runs, in_place_groups, runs_in_place_at_most, sorted_groups};
use super::runs::{OpenGroups, RunTables};
use super::staging::{Staged, Staging};
use super::{broadcast, reduce_blocks, reduce_runs, Reduction, Ties};
use crate::dispatch::{self, Grid};
use crate::error::Result;

/// A tie map on the GPU: built once, reused every step, rebuilt only when the tying changes.
/// Recording costs only bind groups and passes.
///
/// A tensor larger than one storage binding is cut into windows that each fit. Scalars and
/// whole rows: every window is reduced into its own slot of group partials, which
/// `shaders/tie_combine.wgsl` adds in window order (then divides for means). Columns and conv
/// channels: windows of whole outer slabs, each owning its columns of every group's value
/// vector, reduce straight into them. Broadcasts run window by window.
#[derive(Debug)]
pub struct TiePlan {
    pub(super) ties: Ties,
    pub(super) layout: TieLayout,
    pub(super) groups: u32,
    pub(super) body: Body,
}

#[derive(Debug)]
pub(super) enum Body {
    Single(Box<Single>),
    Windowed(Windowed),
}

/// The plan of a tensor that fits one binding.
#[derive(Debug)]
pub(super) struct Single {
    /// One id per unit; for scalars padded with `UNTIED` to whole quads. `None` for a map read
    /// in place, which is broadcast by its runs.
    pub(super) ids: Option<wgpu::Buffer>,
    pub(super) reduce: ReducePlan,
    pub(super) broadcast: Vec<BroadcastPass>,
}

/// One recorded pass: its uniforms for Sum and Mean, and its grid.
#[derive(Debug)]
pub(super) struct Pass {
    pub(super) uniforms: [wgpu::Buffer; 2],
    pub(super) grid: Grid,
}

impl Pass {
    /// The pass over `grid` whose uniform for Sum is `params(0)`, for Mean `params(1)`.
    pub(super) fn sum_and_mean<T: bytemuck::Pod>(
        gpu: &crate::gpu::Gpu,
        label: &str,
        grid: Grid,
        params: impl Fn(u32) -> T,
    ) -> Self {
        Self {
            uniforms: [0, 1].map(|mean| dispatch::uniform(gpu, label, &params(mean))),
            grid,
        }
    }

    pub(super) fn uniform(&self, how: Reduction) -> &wgpu::Buffer {
        &self.uniforms[usize::from(how == Reduction::Mean)]
    }
}

/// One pass of a scalar reduction level over one of its run tables.
#[derive(Debug)]
pub(super) struct RunPass {
    pub(super) runs: wgpu::Buffer,
    /// Runs of whole quads (entry `quads` of `shaders/tie_reduce_runs.wgsl`), else of values.
    pub(super) quads: bool,
    pub(super) pass: Pass,
}

#[derive(Debug)]
pub(super) enum ReducePlan {
    Scalar {
        /// The members' parameter indices in group order, or their slots in the staged copy
        /// when `staged` (`None` when the map is read in place).
        perm: Option<wgpu::Buffer>,
        staged: Option<Staged>,
        /// Per level (see `runs::run_levels`): its passes over runs of quads and of values.
        levels: Vec<Vec<RunPass>>,
        /// Ping-pong run partials between levels.
        partials: [wgpu::Buffer; 2],
        /// Groups with no members and the pass that zeroes them.
        empty: Option<(wgpu::Buffer, Pass)>,
    },
    Blocks {
        row_perm: wgpu::Buffer,
        pieces: wgpu::Buffer,
        entries: wgpu::Buffer,
        partials: wgpu::Buffer,
        /// The first pass reads and writes vec4 columns (inner extent of whole quads).
        quads: bool,
        first: Pass,
        second: Pass,
    },
}

/// One broadcast dispatch: scalars go four at a time, then their last 1-3 one by one; or, for
/// a map read in place, run by run.
#[derive(Debug)]
pub(super) struct BroadcastPass {
    pub(super) kernel: BroadcastKernel,
    /// The run table ([`BroadcastKernel::Runs`], [`BroadcastKernel::QuadRuns`]), else the ids.
    pub(super) table: wgpu::Buffer,
    pub(super) uniform: wgpu::Buffer,
    pub(super) grid: Grid,
}

/// The kernel of a [`BroadcastPass`] (see `broadcast.rs`).
#[derive(Clone, Copy, Debug)]
pub(super) enum BroadcastKernel {
    Runs,
    QuadRuns,
    Quads,
    Scalar,
    Blocks,
    BlockQuads,
}

#[derive(Debug)]
pub(super) struct Windowed {
    pub(super) windows: Vec<Window>,
    /// Windows of whole units reduce into slots that `combine` adds up; windows of outer
    /// slabs (`None`) each own their columns of every group's vector and write them in place.
    pub(super) combine: Option<Combine>,
}

#[derive(Debug)]
pub(super) struct Combine {
    pub(super) partials: wgpu::Buffer,
    /// Bytes between window slots in `partials` (a multiple of the offset alignment).
    pub(super) slot_bytes: u64,
    pub(super) sizes: wgpu::Buffer,
    pub(super) pass: Pass,
}

#[derive(Debug)]
pub(super) struct Window {
    pub(super) plan: Single,
    pub(super) offset: u64,
    pub(super) bytes: u64,
}

/// Where a plan's group values sit in the values buffer: group `g`'s vector starts at
/// element `offset + g * stride`. Dense (`stride` = unit length, `offset` 0) except in a
/// window of outer slabs, which owns columns `offset..offset + its unit length` of every
/// group's vector.
#[derive(Clone, Copy, Debug)]
pub(super) struct ValuesView {
    pub(super) stride: u32,
    pub(super) offset: u32,
}

impl ValuesView {
    pub(super) fn dense(layout: TieLayout) -> Self {
        Self {
            stride: layout.unit_len() as u32,
            offset: 0,
        }
    }
}

impl Single {
    /// The plan of a tensor that fits one binding, writing (and reading) group values at
    /// `values`.
    ///
    /// `tables`: a plan of the same ids (a window of the same block tie map) whose uploaded
    /// ids, row permutation, piece lists and partials this plan shares instead of uploading
    /// its own. `staging` applies to scalar maps; `shared_staged`: a staged copy (of an earlier
    /// window of the same plan, whose passes run before this one's) to reuse.
    pub(super) fn build(
        ties: &Ties,
        map: &TieMap,
        values: ValuesView,
        tables: Option<&Single>,
        (staging, shared_staged): (Staging, Option<&wgpu::Buffer>),
    ) -> Result<Self> {
        let gpu = &ties.gpu;
        let layout = map.layout();
        let (perm, offsets) = map.grouped();
        gpu.scoped(|| {
            // Scalars whose groups lie in stretches of neighbouring parameters, four or more
            // members a run on average, are read and written in place, run by run: no member
            // indices, no gathers, no staging, and no ids for the broadcast (runs take 16 bytes
            // each, the ids 4 per parameter). A map that ties every parameter in group order
            // with smaller groups is still read in place, but broadcast through the ids.
            let scalar = matches!(layout, TieLayout::Scalar { .. });
            let in_place = scalar && runs_in_place_at_most(&perm, &offsets, perm.len() / 4);
            let identity = scalar
                && perm.len() == layout.params_len()
                && perm.iter().enumerate().all(|(i, &p)| p == i as u32);
            let open = if in_place {
                in_place_groups(&perm, &offsets)
            } else if scalar {
                sorted_groups(&offsets)
            } else {
                OpenGroups::default()
            };
            let runs = if in_place {
                broadcast_runs(&open)
            } else {
                RunTables::default()
            };
            // Whole quads of ids (at least one) for the vec4 broadcasts.
            let ids = match tables {
                Some(shared) => shared.ids.clone(),
                None if in_place => None,
                None => Some(dispatch::storage_init(
                    gpu,
                    "tie ids",
                    &quad_padded_with(map.ids().to_vec(), UNTIED),
                    wgpu::BufferUsages::empty(),
                )),
            };
            let grouped = (perm.as_slice(), offsets.as_slice());
            let reduce = match layout {
                TieLayout::Scalar { .. } => {
                    let read_in_place = in_place || identity;
                    let shared = shared_staged;
                    reduce_runs::plan(gpu, map, grouped, open, read_in_place, staging, shared)?
                }
                TieLayout::Blocks { .. } => reduce_blocks::plan(gpu, map, grouped, values, tables)?,
            };
            let broadcast = broadcast::plan(gpu, layout, values, &runs, ids.as_ref())?;
            Ok(Single {
                ids,
                reduce,
                broadcast,
            })
        })
    }

    /// The staged copy of a staged scalar plan.
    pub(super) fn staged_copy(&self) -> Option<&wgpu::Buffer> {
        match &self.reduce {
            ReducePlan::Scalar {
                staged: Some(staged),
                ..
            } => Some(&staged.values),
            _ => None,
        }
    }
}

impl TiePlan {
    /// The layout of the tensors this plan reduces.
    pub fn layout(&self) -> TieLayout {
        self.layout
    }

    /// Elements of the group-value tensor `[groups][unit_len]`.
    pub fn values_len(&self) -> usize {
        self.groups as usize * self.layout.unit_len()
    }

    /// Windows the tensor is cut into (1 when it fits one binding).
    pub fn windows(&self) -> usize {
        match &self.body {
            Body::Single(_) => 1,
            Body::Windowed(w) => w.windows.len(),
        }
    }

    /// Whether the scalar reduction stages its members (see [`Staging`]); for a windowed
    /// plan, whether any window does.
    pub fn staged(&self) -> bool {
        match &self.body {
            Body::Single(single) => single.staged_copy().is_some(),
            Body::Windowed(win) => win.windows.iter().any(|w| w.plan.staged_copy().is_some()),
        }
    }
}
