//! Scalar reduce planning: the levels of run sums of `shaders/tie_reduce_runs.wgsl`, after
//! one of its sources: `tie_reduce_runs_direct.wgsl` (a map read in place, and every level
//! after the first) or `tie_reduce_runs_gather.wgsl` (level 1 through the members' indices or
//! staged slots; also `empty_groups`). The runs come from [`super::runs`].

use super::map::TieMap;
use super::plan::{Pass, ReducePlan, RunPass};
use super::runs::{run_levels, OpenGroups, REDUCE_RUN};
use super::staging::{Staged, Staging};
use crate::dispatch::{self, check_binding_size, Grid, WORKGROUP_SIZE};
use crate::error::Result;
use crate::gpu::Gpu;

crate::uniform_struct! {
    /// The uniform block of `shaders/tie_reduce_runs.wgsl`.
    pub(super) struct RunParams {
        /// Runs in the table (`values`, `quads`), or empty groups listed (`empty_groups`).
        runs: u32,
        /// Nonzero: a group's last run divides its sum by the member count.
        mean: u32,
        fold_x: u32,
        total_wg: u32,
    }
}

crate::bindings! {
    /// `tie_reduce_runs_values`: runs of values read directly from `src`.
    pub(super) struct ReduceValuesBindings {
        p @ 0: uniform(RunParams),
        runs @ 1: read,
        src @ 2: read,
        out @ 4: read_write,
        partials @ 5: read_write,
    }
}

crate::bindings! {
    /// `tie_reduce_runs_quads`: runs of whole quads read directly from `src_quads`.
    pub(super) struct ReduceQuadsBindings {
        p @ 0: uniform(RunParams),
        runs @ 1: read,
        out @ 4: read_write,
        partials @ 5: read_write,
        src_quads @ 6: read,
    }
}

crate::bindings! {
    /// `tie_reduce_runs_values_gather` and `tie_reduce_runs_quads_gather`: level 1 gathered
    /// from `src` through `at`.
    pub(super) struct ReduceGatherBindings {
        p @ 0: uniform(RunParams),
        runs @ 1: read,
        src @ 2: read,
        at @ 3: read,
        out @ 4: read_write,
        partials @ 5: read_write,
    }
}

crate::bindings! {
    /// `tie_reduce_runs_empty_groups`: zeroes `out` at the groups listed in `at`.
    pub(super) struct EmptyGroupsBindings {
        p @ 0: uniform(RunParams),
        at @ 3: read,
        out @ 4: read_write,
    }
}

crate::module!(TIE_REDUCE_RUNS_DIRECT = "tie_reduce_runs", [RunParams], constants: &[("REDUCE_RUN", REDUCE_RUN)], parts: ["tie_reduce_runs_direct", "tie_reduce_runs"]);

crate::module!(TIE_REDUCE_RUNS_GATHER = "tie_reduce_runs_gather", [RunParams], constants: &[("REDUCE_RUN", REDUCE_RUN)], parts: ["tie_reduce_runs_gather", "tie_reduce_runs"]);

crate::kernel!(pub(super) TIE_REDUCE_RUNS_VALUES = "tie_reduce_runs_values", TIE_REDUCE_RUNS_DIRECT, ReduceValuesBindings, entry: "values");

crate::kernel!(pub(super) TIE_REDUCE_RUNS_QUADS = "tie_reduce_runs_quads", TIE_REDUCE_RUNS_DIRECT, ReduceQuadsBindings, entry: "quads");

crate::kernel!(pub(super) TIE_REDUCE_RUNS_VALUES_GATHER = "tie_reduce_runs_values_gather", TIE_REDUCE_RUNS_GATHER, ReduceGatherBindings, entry: "values");

crate::kernel!(pub(super) TIE_REDUCE_RUNS_QUADS_GATHER = "tie_reduce_runs_quads_gather", TIE_REDUCE_RUNS_GATHER, ReduceGatherBindings, entry: "quads");

crate::kernel!(pub(super) TIE_REDUCE_RUNS_EMPTY_GROUPS = "tie_reduce_runs_empty_groups", TIE_REDUCE_RUNS_GATHER, EmptyGroupsBindings, entry: "empty_groups");

/// The reduction of a scalar map of `len` parameters whose members, in group order, are the
/// parameters `perm` (group `g` at `offsets[g]..offsets[g + 1]`), over the groups `open` that
/// level 1 reads: in place (`read_in_place`: no member indices), else through the members'
/// indices, or their slots in a staged copy when `staging` applies (`shared_staged`: an
/// earlier window's copy to reuse).
pub(super) fn plan(
    gpu: &Gpu,
    map: &TieMap,
    (perm, offsets): (&[u32], &[u32]),
    open: OpenGroups,
    read_in_place: bool,
    staging: Staging,
    shared_staged: Option<&wgpu::Buffer>,
) -> Result<ReducePlan> {
    let len = map.layout().params_len() as u32;
    let up = |label: &str, data: &[u32]| {
        dispatch::storage_init(gpu, label, data, wgpu::BufferUsages::empty())
    };
    let (perm, staged) = if read_in_place {
        (None, None)
    } else if staging.applies(gpu, len, perm) {
        let (slots, staged) = Staged::plan(gpu, len, perm, shared_staged)?;
        (
            Some(up("tie member slots", &quad_padded(slots))),
            Some(staged),
        )
    } else {
        (
            Some(up("tie member indices", &quad_padded(perm.to_vec()))),
            None,
        )
    };
    let (levels, slots) = plan_levels(gpu, open)?;
    // Whole quads: the next level reads them four at a time.
    let partials_bytes = slots.next_multiple_of(4).max(4) * 4;
    check_binding_size(gpu, "tie run partials", partials_bytes)?;
    let partials = [0, 1].map(|_| {
        dispatch::scratch(
            gpu,
            "tie run partials",
            partials_bytes,
            wgpu::BufferUsages::empty(),
        )
    });
    Ok(ReducePlan::Scalar {
        perm,
        staged,
        levels,
        partials,
        empty: plan_empty(gpu, map, offsets)?,
    })
}

/// Every level's passes (see [`run_levels`]) and the most partial slots one level writes.
fn plan_levels(gpu: &Gpu, open: OpenGroups) -> Result<(Vec<Vec<RunPass>>, u64)> {
    let mut slots = 0u64;
    let mut levels = Vec::new();
    for tables in run_levels(open) {
        let partial = tables.quads.iter().chain(&tables.values);
        slots = slots.max(partial.filter(|r| r[3] == 0).count() as u64);
        let mut passes = Vec::new();
        for (runs, quads) in tables.pieces(gpu.device()) {
            let grid = Grid::for_items(gpu, runs.len() as u64, u64::from(WORKGROUP_SIZE))?;
            passes.push(RunPass {
                runs: dispatch::storage_init(gpu, "tie runs", runs, wgpu::BufferUsages::empty()),
                quads,
                pass: Pass::sum_and_mean(gpu, "tie reduce runs", grid, |mean| RunParams {
                    runs: runs.len() as u32,
                    mean,
                    fold_x: grid.fold_x(),
                    total_wg: grid.total,
                }),
            });
        }
        levels.push(passes);
    }
    Ok((levels, slots))
}

/// The groups with no members (listed, quad padded) and the pass that zeroes them.
fn plan_empty(gpu: &Gpu, map: &TieMap, offsets: &[u32]) -> Result<Option<(wgpu::Buffer, Pass)>> {
    let empty_groups: Vec<u32> = (0..map.groups())
        .filter(|&g| offsets[g as usize] == offsets[g as usize + 1])
        .collect();
    if empty_groups.is_empty() {
        return Ok(None);
    }
    let count = empty_groups.len() as u32;
    let grid = Grid::for_items(gpu, u64::from(count), u64::from(WORKGROUP_SIZE))?;
    let params = RunParams {
        runs: count,
        mean: 0,
        fold_x: grid.fold_x(),
        total_wg: grid.total,
    };
    let uniform = dispatch::uniform(gpu, "tie empty groups", &params);
    let list = dispatch::storage_init(
        gpu,
        "tie empty groups",
        &quad_padded(empty_groups),
        wgpu::BufferUsages::empty(),
    );
    let pass = Pass {
        uniforms: [uniform.clone(), uniform],
        grid,
    };
    Ok(Some((list, pass)))
}

/// `indices` padded with `pad` to whole quads, at least one (a vec4 view needs 16 bytes).
pub(super) fn quad_padded_with(mut indices: Vec<u32>, pad: u32) -> Vec<u32> {
    indices.resize(indices.len().div_ceil(4).max(1) * 4, pad);
    indices
}

/// `indices` padded with zeros to whole quads, at least one.
fn quad_padded(indices: Vec<u32>) -> Vec<u32> {
    quad_padded_with(indices, 0)
}
