//! Broadcast planning: the passes that write each group's value back to its members.
//!
//! - `tie_broadcast_quads` (entry `main` of `shaders/tie_broadcast_quads.wgsl`): scalar ties,
//!   four parameters at a time through the ids; `tie_broadcast_scalar` (`scalar` of
//!   `shaders/tie_broadcast.wgsl`) the last 1-3 parameters;
//! - `tie_broadcast_block_quads` (`blocks` of the quads file): block ties whose inner extent is
//!   whole quads; `tie_broadcast_blocks` (`blocks`) the others, element by element;
//! - `tie_broadcast_quad_runs` and `tie_broadcast_runs` (`runs` of both files): a scalar map
//!   read in place, run by run (the run tables of `runs::broadcast_runs`), with no ids.
//!
//! Both modules step positions in the `[outer][rows][inner]` view with
//! `shaders/view_cursor.wgsl` (shared with GrOWL's rescale).

use super::map::{TieLayout, UNTIED};
use super::plan::{BroadcastKernel, BroadcastPass, ValuesView};
use super::runs::{RunTables, REDUCE_RUN};
use super::staging::STAGE_CHUNK;
use crate::dispatch::{self, Grid, WORKGROUP_SIZE};
use crate::error::Result;
use crate::gpu::Gpu;

/// Elements each block broadcast thread writes (`BLOCKS_PER_THREAD` in WGSL).
const BLOCKS_PER_THREAD: u32 = 16;
/// Quads each scalar broadcast (and staging) thread writes (`QUADS_PER_THREAD` in WGSL).
pub(super) const QUADS_PER_THREAD: u32 = 4;
/// Quads each block broadcast thread writes when rows are whole quads
/// (`BLOCK_QUADS_PER_THREAD` in WGSL).
const BLOCK_QUADS_PER_THREAD: u32 = 4;

crate::uniform_struct! {
    /// The uniform block of `shaders/tie_broadcast.wgsl`.
    pub(super) struct BroadcastParams {
        /// Elements of the tensor (`scalar`, `blocks`), or runs in the table (`runs`).
        len: u32,
        /// `rows` of the `[outer][rows][inner]` view (`blocks`).
        rows: u32,
        /// `inner` of the view (`blocks`).
        inner: u32,
        fold_x: u32,
        total_wg: u32,
        /// The first element `scalar` writes (the ones after the last whole quad).
        first: u32,
        /// `WORKGROUP_SIZE % inner`: the inner part of a step of `WORKGROUP_SIZE` elements.
        step_i: u32,
        /// `(WORKGROUP_SIZE / inner) % rows`.
        step_r: u32,
        /// `WORKGROUP_SIZE / (inner * rows)`.
        step_o: u32,
        /// Group g's value vector starts at `values_offset + g * values_stride` (a window of
        /// outer slabs reads its columns of the whole `[groups][outer * inner]`).
        values_stride: u32,
        values_offset: u32,
        pad: u32,
    }
}

crate::uniform_struct! {
    /// The uniform block of `shaders/tie_broadcast_quads.wgsl`.
    pub(super) struct QuadParams {
        /// Quads of the tensor (`main`, `blocks`, `stage`), or runs in the table (`runs`).
        quads: u32,
        fold_x: u32,
        total_wg: u32,
        /// Quads between a thread's grid-strided steps (`main`, `stage`): the grid's threads.
        stride: u32,
        /// `blocks`: the view in quads (`inner4 = inner / 4`), the steps of `WORKGROUP_SIZE`
        /// quads (as in `BroadcastParams`), and where group g's value vector starts (in
        /// quads: `values_offset4 + g * values_stride4`).
        rows: u32,
        inner4: u32,
        step_i: u32,
        step_r: u32,
        step_o: u32,
        values_stride4: u32,
        values_offset4: u32,
        pad: u32,
    }
}

crate::bindings! {
    /// `tie_broadcast_scalar` and `tie_broadcast_blocks`: group values `values` written to the
    /// tied units of `dst` through `ids` (one per unit).
    pub(super) struct BroadcastBindings {
        p @ 0: uniform(BroadcastParams),
        ids @ 1: read,
        values @ 2: read,
        dst @ 3: read_write,
    }
}

crate::bindings! {
    /// `tie_broadcast_runs`: a map read in place, by the runs of `run_table`.
    pub(super) struct BroadcastRunsBindings {
        p @ 0: uniform(BroadcastParams),
        values @ 2: read,
        dst @ 3: read_write,
        run_table @ 4: read,
    }
}

crate::bindings! {
    /// `tie_broadcast_quads`, `tie_broadcast_block_quads`, and the staging gather `tie_stage`
    /// (there `ids` holds the staged slots' offsets in their chunks, `values` is the source
    /// tensor and `dst` the staged copy).
    pub(super) struct QuadBindings {
        p @ 0: uniform(QuadParams),
        ids @ 1: read,
        values @ 2: read,
        dst @ 3: read_write,
    }
}

crate::bindings! {
    /// `tie_broadcast_quad_runs`: a map read in place, by the runs of whole quads of
    /// `run_table`.
    pub(super) struct QuadRunsBindings {
        p @ 0: uniform(QuadParams),
        values @ 2: read,
        dst @ 3: read_write,
        run_table @ 4: read,
    }
}

crate::module!(TIE_BROADCAST_MODULE = "tie_broadcast", [BroadcastParams], constants: &[
        ("BLOCKS_PER_THREAD", BLOCKS_PER_THREAD),
        ("REDUCE_RUN", REDUCE_RUN),
        ("UNTIED", UNTIED),
    ], parts: ["view_cursor", "tie_broadcast"]);

crate::module! {
    /// Also the module of the staging gather (`tie_stage`).
    pub(super) TIE_BROADCAST_QUADS_MODULE = "tie_broadcast_quads", [QuadParams], constants: &[
        ("QUADS_PER_THREAD", QUADS_PER_THREAD),
        ("BLOCK_QUADS_PER_THREAD", BLOCK_QUADS_PER_THREAD),
        ("REDUCE_RUN", REDUCE_RUN),
        ("STAGE_CHUNK", STAGE_CHUNK),
        ("UNTIED", UNTIED),
    ], parts: ["view_cursor", "tie_broadcast_quads"]
}

crate::kernel!(pub(super) TIE_BROADCAST_SCALAR = "tie_broadcast_scalar", TIE_BROADCAST_MODULE, BroadcastBindings, entry: "scalar");

crate::kernel!(pub(super) TIE_BROADCAST_BLOCKS = "tie_broadcast_blocks", TIE_BROADCAST_MODULE, BroadcastBindings, entry: "blocks");

crate::kernel!(pub(super) TIE_BROADCAST_RUNS = "tie_broadcast_runs", TIE_BROADCAST_MODULE, BroadcastRunsBindings, entry: "runs");

crate::kernel!(pub(super) TIE_BROADCAST_QUADS = "tie_broadcast_quads", TIE_BROADCAST_QUADS_MODULE, QuadBindings);

crate::kernel!(pub(super) TIE_BROADCAST_BLOCK_QUADS = "tie_broadcast_block_quads", TIE_BROADCAST_QUADS_MODULE, QuadBindings, entry: "blocks");

crate::kernel!(pub(super) TIE_BROADCAST_QUAD_RUNS = "tie_broadcast_quad_runs", TIE_BROADCAST_QUADS_MODULE, QuadRunsBindings, entry: "runs");

/// The broadcast passes of one binding's plan, writing group values read at `values`: by the
/// runs of `runs` (a scalar map read in place), then, when the plan has `ids` (every map not
/// read in place), through them: whole quads four at a time where the layout allows, the rest
/// element by element.
pub(super) fn plan(
    gpu: &Gpu,
    layout: TieLayout,
    values: ValuesView,
    runs: &RunTables,
    ids: Option<&wgpu::Buffer>,
) -> Result<Vec<BroadcastPass>> {
    let mut passes = run_passes(gpu, values, runs)?;
    let Some(ids) = ids else {
        return Ok(passes);
    };
    let (_, _, inner) = layout.view();
    let len = layout.params_len() as u64;
    // Scalars: whole quads four at a time, the rest (from `first`) one by one. Blocks whose
    // inner extent is whole quads: all in quads.
    let (quads, first) = match layout {
        TieLayout::Scalar { .. } => (len / 4, len / 4 * 4),
        TieLayout::Blocks { .. } if inner % 4 == 0 && inner > 0 => (len / 4, len),
        TieLayout::Blocks { .. } => (0, 0),
    };
    if quads > 0 {
        passes.push(quad_pass(gpu, layout, values, quads, ids)?);
    }
    if len > first {
        passes.push(element_pass(gpu, layout, values, first, ids)?);
    }
    Ok(passes)
}

/// One pass per piece of the run tables (see [`RunTables::pieces`]).
fn run_passes(gpu: &Gpu, values: ValuesView, runs: &RunTables) -> Result<Vec<BroadcastPass>> {
    let mut passes = Vec::new();
    for (table, quads) in runs.pieces(gpu.device()) {
        let grid = Grid::for_items(gpu, table.len() as u64, u64::from(WORKGROUP_SIZE))?;
        let (n, fold_x, total_wg) = (table.len() as u32, grid.fold_x(), grid.total);
        let (kernel, uniform) = if quads {
            let params = QuadParams {
                quads: n,
                fold_x,
                total_wg,
                ..Default::default()
            };
            let uniform = dispatch::uniform(gpu, "tie broadcast runs", &params);
            (BroadcastKernel::QuadRuns, uniform)
        } else {
            let params = BroadcastParams {
                len: n,
                fold_x,
                total_wg,
                values_stride: values.stride,
                values_offset: values.offset,
                ..Default::default()
            };
            let uniform = dispatch::uniform(gpu, "tie broadcast runs", &params);
            (BroadcastKernel::Runs, uniform)
        };
        let table = dispatch::storage_init(
            gpu,
            "tie broadcast runs",
            table,
            wgpu::BufferUsages::empty(),
        );
        passes.push(BroadcastPass {
            kernel,
            uniform,
            grid,
            table,
        });
    }
    Ok(passes)
}

/// The first `quads` quads of the tensor, four elements at a time.
fn quad_pass(
    gpu: &Gpu,
    layout: TieLayout,
    values: ValuesView,
    quads: u64,
    ids: &wgpu::Buffer,
) -> Result<BroadcastPass> {
    let (kernel, per_thread) = match layout {
        TieLayout::Scalar { .. } => (BroadcastKernel::Quads, QUADS_PER_THREAD),
        TieLayout::Blocks { .. } => (BroadcastKernel::BlockQuads, BLOCK_QUADS_PER_THREAD),
    };
    let grid = Grid::for_items(gpu, quads, u64::from(per_thread * WORKGROUP_SIZE))?;
    let (_, rows, inner) = layout.view();
    let (rows, inner4, wg) = (rows.max(1), (inner / 4).max(1), WORKGROUP_SIZE);
    let params = QuadParams {
        quads: quads as u32,
        fold_x: grid.fold_x(),
        total_wg: grid.total,
        stride: grid.total * wg,
        rows,
        inner4,
        step_i: wg % inner4,
        step_r: (wg / inner4) % rows,
        step_o: wg / inner4 / rows,
        values_stride4: values.stride / 4,
        values_offset4: values.offset / 4,
        pad: 0,
    };
    Ok(BroadcastPass {
        kernel,
        uniform: dispatch::uniform(gpu, "tie broadcast quads", &params),
        grid,
        table: ids.clone(),
    })
}

/// The elements from `first` on, one at a time.
fn element_pass(
    gpu: &Gpu,
    layout: TieLayout,
    values: ValuesView,
    first: u64,
    ids: &wgpu::Buffer,
) -> Result<BroadcastPass> {
    let len = layout.params_len() as u64;
    let (kernel, per_thread) = match layout {
        TieLayout::Scalar { .. } => (BroadcastKernel::Scalar, 1),
        TieLayout::Blocks { .. } => (BroadcastKernel::Blocks, BLOCKS_PER_THREAD),
    };
    let grid = Grid::for_items(gpu, len - first, u64::from(per_thread * WORKGROUP_SIZE))?;
    let (_, rows, inner) = layout.view();
    let (rows, inner, wg) = (rows.max(1), inner.max(1), WORKGROUP_SIZE);
    let params = BroadcastParams {
        len: len as u32,
        rows,
        inner,
        fold_x: grid.fold_x(),
        total_wg: grid.total,
        first: first as u32,
        step_i: wg % inner,
        step_r: (wg / inner) % rows,
        step_o: wg / inner / rows,
        values_stride: values.stride,
        values_offset: values.offset,
        pad: 0,
    };
    Ok(BroadcastPass {
        kernel,
        uniform: dispatch::uniform(gpu, "tie broadcast", &params),
        grid,
        table: ids.clone(),
    })
}
