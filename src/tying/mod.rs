//! Tied parameter groups: deterministic per-group reduction of member gradients, broadcast
//! back to the members, and the tying projection (group averaging).
//!
//! A [`TieMap`] assigns each unit (a scalar, or a row / column / conv input channel, see
//! [`TieLayout`]) to a group or to none. [`Ties::plan`] turns it once into a [`TiePlan`] on
//! the GPU, reused every step:
//! - scalars: the tied parameters sorted by group (a stable counting sort on the host), then
//!   a reduction in levels with no barriers (`shaders/tie_reduce_runs.wgsl`): the plan cuts
//!   each group's members into runs of at most 32 (longer groups at quad edges, so that most
//!   runs are whole quads, read four values at a time), one thread adds one run in order (no
//!   branch per value), a group of one run is done, and the run sums of larger groups are cut
//!   again on the next level (a group of 1e7 members takes five levels). At most 32 values per
//!   thread, so one giant group and millions of singletons balance alike, and no loop is
//!   longer than 8 steps. A map whose groups lie in stretches of neighbouring parameters
//!   (four or more members a run on average: contiguous groups, blocks with untied blocks
//!   between) is read in place, its runs cut from those stretches, with no member indices and
//!   no gathers. Members scattered over a large tensor may first be staged chunk by chunk (see
//!   [`Staging`]);
//! - blocks: each group's rows cut into pieces of at most 64 rows, one workgroup per piece and
//!   `WORKGROUP_SIZE` columns (one per thread; columns of four elements when rows are whole
//!   quads), then multi-piece groups added in piece order.
//!
//! Results are bitwise identical on every run: the summation order depends only on the plan.
//! No atomics. Broadcast is a coalesced pass over the tensor gathering the group values; for a
//! map read in place it writes the same runs instead, with no id per parameter.
//!
//! Plan memory on the GPU, scalars: the member indices (4 bytes per tied parameter) and the
//! ids for the broadcast (4 bytes per parameter), neither for a map read in place; the run
//! tables (16 bytes per run: about half a byte per member for large groups, 16 for a map of
//! singletons); the partials.
//!
//! Argument order, in every call: the map (or plan), then the tensor in the parameter layout
//! (`src`, `target`, `grads`, `weights`), then the group values `[groups][unit_len]` (see
//! [`TieMap`] for their layout), then the [`Reduction`].
//!
//! The module, by concern (each kernel's name leads to its WGSL file `shaders/<name>.wgsl`,
//! or to the file its entry point lives in, and to the planner below):
//! - `map.rs`: [`TieMap`], [`TieLayout`] and the value layout;
//! - `staging.rs`: the [`Staging`] policy, the staged layout and the staging pass (`tie_stage`);
//! - `plan.rs`: the plan types ([`TiePlan`]) and the assembly of one binding's plan;
//! - `reduce_runs.rs`: scalar reduce planning (`tie_reduce_runs_*`);
//! - `reduce_blocks.rs`: block planning (`tie_reduce_blocks`, `tie_reduce_block_pieces`);
//! - `broadcast.rs`: broadcast planning (`tie_broadcast_*`, with `shaders/view_cursor.wgsl`);
//! - `windows.rs`: tensors past one binding (`tie_combine`);
//! - `record.rs`: the `record_*` calls and the passes they add;
//! - `runs.rs`: run cutting and the run tables, with their unit tests;
//! - `host.rs`: host-slice convenience (async and `_blocking`);
//! - `cpu.rs`: the CPU twins, same names as the ops; `cases.rs`: the benchmark maps
//!   (`tests/tying.rs`, `benches/tying.rs`).

mod broadcast;
#[doc(hidden)]
pub mod cases;
pub mod cpu;
mod enforce;
mod host;
mod map;
mod plan;
mod record;
mod reduce_blocks;
mod reduce_runs;
mod runs;
mod staging;
mod windows;

pub use enforce::Enforcement;
pub use map::{TieLayout, TieMap, UNTIED};
pub use plan::TiePlan;
pub use staging::{Staging, STAGE_MIN_PARAMS};

use std::sync::Arc;

use crate::dispatch::{check_binding_size, Kernel, KernelDecl};
use crate::error::Result;
use crate::gpu::Gpu;
use plan::{Body, Single, ValuesView};

/// Sum or mean of the members.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reduction {
    /// `G[g] = sum of members`.
    Sum,
    /// `G[g] = sum of members / member count` (0 for empty groups).
    Mean,
}

/// The tying kernels, for the kernel table.
pub(crate) static KERNELS: &[&KernelDecl] = &[
    &reduce_runs::TIE_REDUCE_RUNS_VALUES,
    &reduce_runs::TIE_REDUCE_RUNS_QUADS,
    &reduce_runs::TIE_REDUCE_RUNS_VALUES_GATHER,
    &reduce_runs::TIE_REDUCE_RUNS_QUADS_GATHER,
    &reduce_runs::TIE_REDUCE_RUNS_EMPTY_GROUPS,
    &reduce_blocks::TIE_REDUCE_BLOCKS,
    &reduce_blocks::TIE_REDUCE_BLOCKS_QUADS,
    &reduce_blocks::TIE_REDUCE_BLOCK_PIECES,
    &broadcast::TIE_BROADCAST_SCALAR,
    &broadcast::TIE_BROADCAST_BLOCKS,
    &broadcast::TIE_BROADCAST_RUNS,
    &broadcast::TIE_BROADCAST_QUADS,
    &broadcast::TIE_BROADCAST_BLOCK_QUADS,
    &broadcast::TIE_BROADCAST_QUAD_RUNS,
    &staging::TIE_STAGE,
    &windows::TIE_COMBINE,
];

#[derive(Debug)]
struct TieKernels {
    /// Scalar run sums read directly (in place, or the partials of the level below).
    reduce_values: Kernel,
    reduce_quads: Kernel,
    /// Level 1 gathered through the members' indices: over runs of values, of quads (index:
    /// quads).
    reduce_gather: [Kernel; 2],
    reduce_empty: Kernel,
    /// Block pieces over f32 columns, and over vec4 columns (inner extent of whole quads).
    reduce_blocks: [Kernel; 2],
    reduce_block_pieces: Kernel,
    broadcast_quads: Kernel,
    broadcast_block_quads: Kernel,
    /// The staging gather of scattered scalar members.
    stage: Kernel,
    broadcast_scalar: Kernel,
    broadcast_runs: Kernel,
    broadcast_quad_runs: Kernel,
    broadcast_blocks: Kernel,
    combine: Kernel,
}

impl TieKernels {
    fn new(gpu: &Gpu) -> Self {
        let k = |decl| gpu.kernel(decl, 0);
        Self {
            reduce_values: k(&reduce_runs::TIE_REDUCE_RUNS_VALUES),
            reduce_quads: k(&reduce_runs::TIE_REDUCE_RUNS_QUADS),
            reduce_gather: [
                k(&reduce_runs::TIE_REDUCE_RUNS_VALUES_GATHER),
                k(&reduce_runs::TIE_REDUCE_RUNS_QUADS_GATHER),
            ],
            reduce_empty: k(&reduce_runs::TIE_REDUCE_RUNS_EMPTY_GROUPS),
            reduce_blocks: [
                k(&reduce_blocks::TIE_REDUCE_BLOCKS),
                k(&reduce_blocks::TIE_REDUCE_BLOCKS_QUADS),
            ],
            reduce_block_pieces: k(&reduce_blocks::TIE_REDUCE_BLOCK_PIECES),
            broadcast_quads: k(&broadcast::TIE_BROADCAST_QUADS),
            broadcast_block_quads: k(&broadcast::TIE_BROADCAST_BLOCK_QUADS),
            stage: k(&staging::TIE_STAGE),
            broadcast_scalar: k(&broadcast::TIE_BROADCAST_SCALAR),
            broadcast_runs: k(&broadcast::TIE_BROADCAST_RUNS),
            broadcast_quad_runs: k(&broadcast::TIE_BROADCAST_QUAD_RUNS),
            broadcast_blocks: k(&broadcast::TIE_BROADCAST_BLOCKS),
            combine: k(&windows::TIE_COMBINE),
        }
    }
}

/// The tied-group pipelines of one device. Build once, plan per tie map.
#[derive(Debug, Clone)]
pub struct Ties {
    gpu: Gpu,
    kernels: Arc<TieKernels>,
}

impl Ties {
    /// Compiles the pipelines on `gpu`'s device.
    ///
    /// # Errors
    /// Errors captured while creating the pipelines.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        gpu.scoped(|| {
            Ok(Self {
                gpu: gpu.clone(),
                kernels: Arc::new(TieKernels::new(gpu)),
            })
        })
    }

    /// The device these pipelines belong to.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Builds the GPU plan of `map`: sorts units by group on the host, uploads the
    /// permutation, offsets and work lists, and prepares every uniform. Scattered scalar
    /// members are staged as [`Staging::Auto`] decides.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`](crate::Error::LimitExceeded) when the tensor or the plan does
    /// not fit one binding or one dispatch on this device; errors captured while creating
    /// buffers.
    pub fn plan(&self, map: &TieMap) -> Result<TiePlan> {
        self.plan_with(map, Staging::Auto)
    }

    /// [`Ties::plan`] with an explicit [`Staging`] choice for scalar maps (ignored for
    /// blocks), to compare both on a device or to save the staging memory.
    ///
    /// # Errors
    /// As [`Ties::plan`].
    pub fn plan_with(&self, map: &TieMap, staging: Staging) -> Result<TiePlan> {
        let layout = map.layout();
        check_binding_size(&self.gpu, "group values", map.values_len() as u64 * 4)?;
        // The host tables (and the GPU's group offsets) hold a word per group and one more:
        // bounded by the device before anything per group is allocated, even for units of
        // zero elements, whose group values are empty.
        check_binding_size(
            &self.gpu,
            "group offsets",
            (u64::from(map.groups()) + 1) * 4,
        )?;
        let max_binding = self.gpu.device().limits().max_storage_buffer_binding_size;
        // Scalar plans pad their per-member buffers to whole quads.
        let plan_bytes = match layout {
            TieLayout::Scalar { .. } => (layout.params_len() as u64).div_ceil(4) * 16,
            TieLayout::Blocks { .. } => layout.params_len() as u64 * 4,
        };
        let body = if plan_bytes <= max_binding {
            let values = ValuesView::dense(layout);
            let single = Single::build(self, map, values, None, (staging, None))?;
            Body::Single(Box::new(single))
        } else {
            Body::Windowed(self.build_windowed(map, max_binding, staging)?)
        };
        Ok(TiePlan {
            ties: self.clone(),
            layout,
            groups: map.groups(),
            body,
        })
    }
}
