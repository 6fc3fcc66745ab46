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
//!   256 columns (one per thread; columns of four elements when rows are whole quads), then
//!   multi-piece groups added in piece order.
//!
//! Results are bitwise identical on every run: the summation order depends only on the plan.
//! No atomics. Broadcast is a coalesced pass over the tensor gathering the group values; for a
//! map read in place it writes the same runs instead, with no id per parameter.
//!
//! Plan memory on the GPU, scalars: the member indices (4 bytes per tied parameter) and the
//! ids for the broadcast (4 bytes per parameter), neither for a map read in place; the run
//! tables (16 bytes per run: about half a byte per member for large groups, 16 for a map of
//! singletons); the partials.

pub mod cases;
pub mod cpu;
mod enforce;
mod map;

pub use enforce::Enforcement;
pub use map::{TieLayout, TieMap, UNTIED};

use std::sync::Arc;

use crate::dispatch::legacy::{Binding, Kernel};
use crate::dispatch::{
    self, check_binding_size, check_buffer, check_distinct, range, whole, Grid, Recording,
};
use crate::error::{check_len, Error, Result};
use crate::gpu::Gpu;
use crate::shaders;

/// Sum or mean of the members.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reduction {
    /// `G[g] = sum of members`.
    Sum,
    /// `G[g] = sum of members / member count` (0 for empty groups).
    Mean,
}

/// Values one thread of a scalar-reduction level adds at most (`RUN` in the comments of
/// `shaders/tie_reduce_runs.wgsl`; the plan cuts the runs).
pub(crate) const REDUCE_RUN: u32 = 32;
/// Rows one block-reduction piece covers at most.
const PIECE_ROWS: u32 = 64;
/// Pieces one group may have: bounds the second pass's per-thread loop far below the
/// 65,535 iterations software drivers allow.
const MAX_PIECES: u32 = 60_000;
/// Quads each scalar broadcast thread writes (`PER_THREAD` in `tie_broadcast_quads.wgsl`).
const QUADS_PER_THREAD: u64 = 4;
/// Elements each block broadcast thread writes (`PER_THREAD` in `tie_broadcast.wgsl`).
const BLOCKS_PER_THREAD: u64 = 16;
/// Parameters per staging chunk (the `STAGE_CHUNK` that `shaders::tie_broadcast_quads`
/// declares): 64 KiB of f32, so the staging gather stays in cache; a multiple of 4.
pub(crate) const STAGE_CHUNK: u32 = 1 << 14;
/// Parameters (of one binding window) from which [`Staging::Auto`] stages a scattered scalar
/// map: 4 MiB of f32, a guess between the sizes measured (0.8 MB, in cache: staging slower;
/// 40 MB: faster).
pub const STAGE_MIN_PARAMS: u32 = 1 << 20;
/// Quads each block broadcast thread writes when rows are whole quads
/// (`BLOCK_QUADS_PER_THREAD` in `tie_broadcast_quads.wgsl`).
const BLOCK_QUADS_PER_THREAD: u64 = 4;

/// How a scalar plan reads members that lie scattered over the tensor.
///
/// The scalar reduction reads the members in group order, so a random tie map makes it
/// gather single floats from all over the tensor, and most loads miss the cache. A staged
/// plan first copies the tensor, chunk by chunk of 2^14 parameters (64 KiB), into a scratch
/// copy in which each chunk's members stand in group order (a gather that stays inside one
/// cached chunk); the reduction then gathers from the staged copy, where the members a
/// stretch of the group order needs from one chunk are neighbours. One more pass over the
/// tensor, far fewer cache misses.
///
/// Staging never changes a result: the reduction adds the same values in the same order, so
/// staged and unstaged plans give bitwise identical sums. A staged plan holds 8 more bytes per
/// parameter (the staging offsets and the staged copy; windows of one plan share one copy).
///
/// Measured on lavapipe (2 cores, P = 1e7, 1e5 groups of random members or power-law sizes,
/// the same run, three runs): the staged reduction takes 0.73-1.04 of the unstaged one's
/// time; at P = 2e5 (800 KB, in cache) it takes 1.4-1.8 times as long. It has not been measured on
/// a hardware GPU, whose caches and gathers differ, so [`Staging::Auto`] stages only on CPU
/// adapters; [`Staging::Always`] tries it anywhere.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Staging {
    /// Stage on CPU adapters (software drivers) when a tensor (each binding window of one)
    /// has at least [`STAGE_MIN_PARAMS`] parameters, at least a quarter of them are tied,
    /// and more than a quarter of the members, in group order, jump more than one 64-byte
    /// line from the one before.
    #[default]
    Auto,
    /// Stage every scalar plan that reads its members through their indices, unless they are
    /// in tensor order already (plans that read them in place, groups in stretches of
    /// neighbouring parameters, never stage).
    Always,
    /// Never stage.
    Never,
}

impl Staging {
    /// Whether a scalar plan on `gpu` of `len` parameters whose members, in group order, are
    /// the parameters `perm` is staged.
    fn applies(self, gpu: &Gpu, len: u32, perm: &[u32]) -> bool {
        // Members already in tensor order (the identity included) gain nothing.
        let in_order = || perm.windows(2).all(|w| w[0] < w[1]);
        match self {
            Staging::Never => false,
            Staging::Always => !in_order(),
            Staging::Auto => {
                let cpu = gpu.adapter_info().device_type == wgpu::DeviceType::Cpu;
                let jumps = || {
                    perm.windows(2)
                        .filter(|w| (w[1] / 16).abs_diff(w[0] / 16) > 1)
                        .count()
                };
                cpu && len >= STAGE_MIN_PARAMS
                    && perm.len() as u64 * 4 >= u64::from(len)
                    && jumps() * 4 > perm.len()
            }
        }
    }
}

/// The staging pass of a scalar plan (see [`Staging`]).
#[derive(Debug)]
struct Staged {
    /// Per staged slot, four per element: the offset inside its chunk of the parameter it
    /// takes.
    offsets: wgpu::Buffer,
    /// The staged copy, whole quads.
    values: wgpu::Buffer,
    uniform: wgpu::Buffer,
    grid: Grid,
}

/// The uniform block of `shaders/tie_reduce_runs.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct RunParams {
    runs: u32,
    mean: u32,
    fold_x: u32,
    total_wg: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct BlockParams {
    outer: u32,
    rows: u32,
    inner: u32,
    cols: u32,
    col_blocks: u32,
    mean: u32,
    fold_x: u32,
    total_wg: u32,
    values: ValuesView,
    _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct PieceParams {
    cols: u32,
    col_blocks: u32,
    mean: u32,
    entries: u32,
    fold_x: u32,
    total_wg: u32,
    values: ValuesView,
}

/// Where a block plan's group values sit in the values buffer: group `g`'s vector starts at
/// element `offset + g * stride`. Dense (`stride` = unit length, `offset` 0) except in a
/// window of outer slabs, which owns columns `offset..offset + its unit length` of every
/// group's vector.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct ValuesView {
    stride: u32,
    offset: u32,
}

impl ValuesView {
    fn dense(layout: TieLayout) -> Self {
        Self {
            stride: layout.unit_len() as u32,
            offset: 0,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct BroadcastParams {
    len: u32,
    rows: u32,
    inner: u32,
    fold_x: u32,
    total_wg: u32,
    first: u32,
    step_i: u32,
    step_r: u32,
    step_o: u32,
    values: ValuesView,
    _pad: u32,
}

/// The uniform block of `shaders/tie_broadcast_quads.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct QuadParams {
    quads: u32,
    fold_x: u32,
    total_wg: u32,
    stride: u32,
    rows: u32,
    inner4: u32,
    step_i: u32,
    step_r: u32,
    step_o: u32,
    values_stride4: u32,
    values_offset4: u32,
    _pad: u32,
}

#[derive(Debug)]
struct TieKernels {
    /// Scalar run sums over runs of values and runs of quads (index: quads), each over a
    /// sequence in group order and gathered through the members' indices (index: GATHER).
    reduce_runs: [[Kernel; 2]; 2],
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

/// The tied-group pipelines of one device. Build once, plan per tie map.
#[derive(Debug, Clone)]
pub struct Ties {
    gpu: Gpu,
    kernels: Arc<TieKernels>,
}

/// One recorded pass: kernel choice, its uniforms for Sum and Mean, and its grid.
#[derive(Debug)]
struct Pass {
    uniforms: [wgpu::Buffer; 2],
    grid: Grid,
}

impl Pass {
    fn uniform(&self, how: Reduction) -> &wgpu::Buffer {
        &self.uniforms[usize::from(how == Reduction::Mean)]
    }
}

/// One pass of a scalar reduction level over one of its run tables.
#[derive(Debug)]
struct RunPass {
    runs: wgpu::Buffer,
    /// Runs of whole quads (`quads` in `shaders/tie_reduce_runs.wgsl`), else of values.
    quads: bool,
    pass: Pass,
}

#[derive(Debug)]
enum ReducePlan {
    Scalar {
        /// The members' parameter indices in group order, or their slots in the staged copy
        /// when `staged` (`None` when the map is read in place).
        perm: Option<wgpu::Buffer>,
        staged: Option<Staged>,
        /// Per level (see [`run_levels`]): its passes over runs of quads and of values.
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
    ties: Ties,
    layout: TieLayout,
    groups: u32,
    body: Body,
}

#[derive(Debug)]
enum Body {
    Single(Box<Single>),
    Windowed(Windowed),
}

/// The plan of a tensor that fits one binding.
#[derive(Debug)]
struct Single {
    /// One id per unit; for scalars padded with `UNTIED` to whole quads (one unused quad
    /// when the broadcast goes by runs).
    ids: wgpu::Buffer,
    reduce: ReducePlan,
    broadcast: Vec<BroadcastPass>,
}

/// One broadcast dispatch: scalars go four at a time, then their last 1-3 one by one; or, for
/// a map read in place, run by run.
#[derive(Debug)]
struct BroadcastPass {
    kernel: BroadcastKernel,
    uniform: wgpu::Buffer,
    grid: Grid,
    /// [`BroadcastKernel::Runs`] and [`BroadcastKernel::QuadRuns`]: the run table (see
    /// [`broadcast_runs`]), bound instead of the ids.
    runs: Option<wgpu::Buffer>,
}

#[derive(Clone, Copy, Debug)]
enum BroadcastKernel {
    Runs,
    QuadRuns,
    Quads,
    Scalar,
    Blocks,
    BlockQuads,
}

#[derive(Debug)]
struct Windowed {
    windows: Vec<Window>,
    /// Windows of whole units reduce into slots that `combine` adds up; windows of outer
    /// slabs (`None`) each own their columns of every group's vector and write them in place.
    combine: Option<Combine>,
}

#[derive(Debug)]
struct Combine {
    partials: wgpu::Buffer,
    /// Bytes between window slots in `partials` (a multiple of the offset alignment).
    slot_bytes: u64,
    sizes: wgpu::Buffer,
    pass: Pass,
}

#[derive(Debug)]
struct Window {
    plan: Single,
    offset: u64,
    bytes: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct CombineParams {
    len: u32,
    windows: u32,
    slot_stride: u32,
    unit_len: u32,
    mean: u32,
    fold_x: u32,
    total_wg: u32,
    _pad: u32,
}

impl Ties {
    /// Compiles the pipelines on `gpu`'s device.
    ///
    /// # Errors
    /// Errors captured while creating the pipelines.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        gpu.scoped(|| {
            let device = gpu.device();
            use Binding::{Read, ReadWrite, Uniform};
            // Each module is compiled once; modules with several entry points (or constant
            // sets) give several pipelines.
            let module =
                |name: &'static str, src: &str| (name, dispatch::shader(device, name, src));
            let k = |(name, m): &(&'static str, wgpu::ShaderModule),
                     entry,
                     bindings: &[Binding],
                     constants: &[(&str, f64)]| {
                Kernel::new(device, name, m, entry, bindings, constants)
            };
            let runs = module("tie_reduce_runs", shaders::TIE_REDUCE_RUNS);
            let broadcast = module("tie_broadcast", &shaders::tie_broadcast());
            let quads = module("tie_broadcast_quads", &shaders::tie_broadcast_quads());
            // uniform, runs, src, at, out, partials, src as quads.
            let run_bindings = [Uniform, Read, Read, Read, ReadWrite, ReadWrite, Read];
            let broadcast_bindings = [Uniform, Read, Read, ReadWrite];
            let kernels = TieKernels {
                reduce_runs: ["values", "quads"].map(|entry| {
                    [0.0, 1.0].map(|gather| k(&runs, entry, &run_bindings, &[("GATHER", gather)]))
                }),
                reduce_empty: k(&runs, "empty_groups", &run_bindings, &[]),
                reduce_blocks: [
                    ("tie_reduce_blocks", "f32"),
                    ("tie_reduce_blocks_quads", "vec4<f32>"),
                ]
                .map(|(name, lane)| {
                    k(
                        &module(name, &shaders::tie_reduce_blocks(lane)),
                        "main",
                        &[Uniform, Read, Read, Read, ReadWrite, ReadWrite],
                        &[],
                    )
                }),
                reduce_block_pieces: k(
                    &module("tie_reduce_block_pieces", shaders::TIE_REDUCE_BLOCK_PIECES),
                    "main",
                    &[Uniform, Read, Read, ReadWrite],
                    &[],
                ),
                broadcast_quads: k(&quads, "main", &broadcast_bindings, &[]),
                broadcast_block_quads: k(&quads, "blocks", &broadcast_bindings, &[]),
                stage: k(&quads, "stage", &broadcast_bindings, &[]),
                broadcast_scalar: k(&broadcast, "scalar", &broadcast_bindings, &[]),
                broadcast_runs: k(&broadcast, "runs", &broadcast_bindings, &[]),
                broadcast_quad_runs: k(&quads, "runs", &broadcast_bindings, &[]),
                broadcast_blocks: k(&broadcast, "blocks", &broadcast_bindings, &[]),
                combine: k(
                    &module("tie_combine", shaders::TIE_COMBINE),
                    "main",
                    &[Uniform, Read, Read, ReadWrite],
                    &[],
                ),
            };
            Ok(Self {
                gpu: gpu.clone(),
                kernels: Arc::new(kernels),
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
    /// [`Error::LimitExceeded`] when the tensor or the plan does not fit one binding or one
    /// dispatch on this device; errors captured while creating buffers.
    pub fn plan(&self, map: &TieMap) -> Result<TiePlan> {
        self.plan_with(map, Staging::Auto)
    }

    /// [`Ties::plan`] with an explicit [`Staging`] choice for scalar maps (ignored for
    /// blocks), to compare both on a device or to save the staging memory.
    ///
    /// # Errors
    /// As [`Ties::plan`].
    pub fn plan_with(&self, map: &TieMap, staging: Staging) -> Result<TiePlan> {
        let device = self.gpu.device();
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
        let max_binding = device.limits().max_storage_buffer_binding_size;
        // Scalar plans pad their per-member buffers to whole quads.
        let plan_bytes = match layout {
            TieLayout::Scalar { .. } => (layout.params_len() as u64).div_ceil(4) * 16,
            TieLayout::Blocks { .. } => layout.params_len() as u64 * 4,
        };
        let body = if plan_bytes <= max_binding {
            Body::Single(Box::new(self.build_single(
                map,
                ValuesView::dense(layout),
                None,
                staging,
                None,
            )?))
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

    /// Cuts a tensor past one binding into windows of whole units that each fit.
    fn build_windowed(&self, map: &TieMap, max_binding: u64, staging: Staging) -> Result<Windowed> {
        let gpu = &self.gpu;
        let device = gpu.device();
        let limits = device.limits();
        let layout = map.layout();
        let (outer, _, inner) = layout.view();
        if outer != 1 {
            return self.build_slab_windows(map, max_binding);
        }
        let align = u64::from(limits.min_storage_buffer_offset_alignment);
        let unit_bytes = u64::from(inner.max(1)) * 4;
        // Less one quad, so the quad-padded plan buffers of a window fit too.
        let per_window =
            dispatch::window_units(gpu, "one tied unit", unit_bytes, max_binding - 16)?;
        let units = layout.units() as u64;
        let values_bytes = (map.values_len() as u64 * 4).max(4);
        let slot_bytes = values_bytes.div_ceil(align) * align;
        let count = units.div_ceil(per_window);
        check_binding_size(gpu, "tie window partials", count * slot_bytes)?;
        let mut windows = Vec::new();
        for w in 0..count {
            let (u0, u1) = (w * per_window, ((w + 1) * per_window).min(units));
            let sub_layout = match layout {
                TieLayout::Scalar { .. } => TieLayout::Scalar {
                    len: (u1 - u0) as u32,
                },
                TieLayout::Blocks { inner, .. } => TieLayout::rows((u1 - u0) as u32, inner),
            };
            let sub = TieMap::new(
                sub_layout,
                map.groups(),
                map.ids()[u0 as usize..u1 as usize].to_vec(),
            )?;
            windows.push(Window {
                plan: self.build_single(
                    &sub,
                    ValuesView::dense(sub_layout),
                    None,
                    staging,
                    windows.first().and_then(|w: &Window| w.plan.staged_copy()),
                )?,
                offset: u0 * unit_bytes,
                bytes: (u1 - u0) * unit_bytes,
            });
        }
        let len = map.values_len() as u32;
        let grid = Grid::fold(
            u64::from(len).div_ceil(256),
            limits.max_compute_workgroups_per_dimension,
        )?;
        gpu.scoped(|| {
            let params = |mean| CombineParams {
                len,
                windows: count as u32,
                slot_stride: (slot_bytes / 4) as u32,
                unit_len: layout.unit_len() as u32,
                mean,
                fold_x: grid.x.max(1),
                total_wg: grid.total,
                _pad: 0,
            };
            Ok(Windowed {
                windows,
                combine: Some(Combine {
                    partials: dispatch::scratch(
                        gpu,
                        "tie window partials",
                        count * slot_bytes,
                        wgpu::BufferUsages::empty(),
                    ),
                    slot_bytes,
                    sizes: dispatch::storage_init(
                        gpu,
                        "tie group sizes",
                        &map.group_sizes(),
                        wgpu::BufferUsages::empty(),
                    ),
                    pass: Pass {
                        uniforms: [0, 1]
                            .map(|mean| dispatch::uniform(gpu, "tie combine", &params(mean))),
                        grid,
                    },
                }),
            })
        })
    }

    /// Cuts a column or conv-channel tensor (`[outer][rows][inner]`, whose tied units
    /// interleave) past one binding into windows of whole outer slabs `[rows][inner]`. Every
    /// window holds every unit's share for its slabs, so it reduces and broadcasts its own
    /// columns of each group's vector directly: no partials to combine.
    fn build_slab_windows(&self, map: &TieMap, max_binding: u64) -> Result<Windowed> {
        let layout = map.layout();
        let (outer, rows, inner) = layout.view();
        let slab_bytes = u64::from(rows) * u64::from(inner) * 4;
        let per = dispatch::window_units(
            &self.gpu,
            "one outer slab [rows][inner] of the tensor",
            slab_bytes,
            max_binding,
        )?;
        let per = u32::try_from(per).unwrap_or(u32::MAX);
        let mut windows: Vec<Window> = Vec::new();
        for w in 0..outer.div_ceil(per) {
            let (first, count) = (w * per, per.min(outer - w * per));
            let sub_layout = TieLayout::Blocks {
                outer: count,
                rows,
                inner,
            };
            let sub = TieMap::new(sub_layout, map.groups(), map.ids().to_vec())?;
            let values = ValuesView {
                stride: outer * inner,
                offset: first * inner,
            };
            // Every window ties the same rows: the first window's tables serve them all (its
            // partials are the largest).
            let tables = windows.first().map(|w| &w.plan);
            windows.push(Window {
                plan: self.build_single(&sub, values, tables, Staging::Never, None)?,
                offset: u64::from(first) * slab_bytes,
                bytes: u64::from(count) * slab_bytes,
            });
        }
        Ok(Windowed {
            windows,
            combine: None,
        })
    }

    /// The plan of a tensor that fits one binding, writing (and reading) group values at
    /// `values`.
    ///
    /// `tables`: a plan of the same ids (a window of the same block tie map) whose uploaded
    /// ids, row permutation, piece lists and partials this plan shares instead of uploading
    /// its own. `staging` applies to scalar maps; `shared_staged`: a staged copy (of an earlier
    /// window of the same plan, whose passes run before this one's) to reuse.
    fn build_single(
        &self,
        map: &TieMap,
        values: ValuesView,
        tables: Option<&Single>,
        staging: Staging,
        shared_staged: Option<&wgpu::Buffer>,
    ) -> Result<Single> {
        let gpu = &self.gpu;
        let device = gpu.device();
        let max_dim = device.limits().max_compute_workgroups_per_dimension;
        let layout = map.layout();
        let (perm, offsets) = map.grouped();
        let mean_flags = [0u32, 1u32];

        gpu.scoped(|| {
            let up = |label: &str, data: &[u32]| {
                dispatch::storage_init(gpu, label, data, wgpu::BufferUsages::empty())
            };
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
                None if in_place => up("tie ids (unused)", &[UNTIED; 4]),
                None => up("tie ids", &quad_padded_with(map.ids().to_vec(), UNTIED)),
            };
            let reduce = match layout {
                TieLayout::Scalar { len } => {
                    let read_in_place = in_place || identity;
                    let staged = !read_in_place && staging.applies(gpu, len, &perm);
                    let (perm, staged) = if read_in_place {
                        (None, None)
                    } else if staged {
                        let (slots, chunk_offsets) = stage_slots(len, &perm);
                        let grid = Grid::fold(
                            u64::from(len.div_ceil(4)).div_ceil(QUADS_PER_THREAD * 256),
                            max_dim,
                        )?;
                        let params = QuadParams {
                            quads: len.div_ceil(4),
                            fold_x: grid.x.max(1),
                            total_wg: grid.total,
                            stride: grid.total * 256,
                            ..Default::default()
                        };
                        let staged = Staged {
                            offsets: up("tie staging offsets", &chunk_offsets),
                            // A window reuses the first window's copy when it is large enough.
                            values: match shared_staged {
                                Some(copy) if copy.size() >= chunk_offsets.len() as u64 * 4 => {
                                    copy.clone()
                                }
                                _ => dispatch::scratch(
                                    gpu,
                                    "tie staged values",
                                    chunk_offsets.len() as u64 * 4,
                                    wgpu::BufferUsages::empty(),
                                ),
                            },
                            uniform: dispatch::uniform(gpu, "tie staging", &params),
                            grid,
                        };
                        (
                            Some(up("tie member slots", &quad_padded(slots))),
                            Some(staged),
                        )
                    } else {
                        (
                            Some(up("tie member indices", &quad_padded(perm.clone()))),
                            None,
                        )
                    };
                    let mut slots = 0u64;
                    let mut levels = Vec::new();
                    for tables in run_levels(open) {
                        let partial = tables.quads.iter().chain(&tables.values);
                        slots = slots.max(partial.filter(|r| r[3] == 0).count() as u64);
                        let mut passes = Vec::new();
                        for (runs, quads) in tables.pieces(device) {
                            let grid = Grid::fold((runs.len() as u64).div_ceil(256), max_dim)?;
                            passes.push(RunPass {
                                runs: dispatch::storage_init(
                                    gpu,
                                    "tie runs",
                                    runs,
                                    wgpu::BufferUsages::empty(),
                                ),
                                quads,
                                pass: Pass {
                                    uniforms: mean_flags.map(|mean| {
                                        dispatch::uniform(
                                            gpu,
                                            "tie reduce runs",
                                            &RunParams {
                                                runs: runs.len() as u32,
                                                mean,
                                                fold_x: grid.x.max(1),
                                                total_wg: grid.total,
                                            },
                                        )
                                    }),
                                    grid,
                                },
                            });
                        }
                        levels.push(passes);
                    }
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
                    let empty_groups: Vec<u32> = (0..map.groups())
                        .filter(|&g| offsets[g as usize] == offsets[g as usize + 1])
                        .collect();
                    let empty = if empty_groups.is_empty() {
                        None
                    } else {
                        let count = empty_groups.len() as u32;
                        let grid = Grid::fold(u64::from(count).div_ceil(256), max_dim)?;
                        let params = RunParams {
                            runs: count,
                            mean: 0,
                            fold_x: grid.x.max(1),
                            total_wg: grid.total,
                        };
                        let uniform = dispatch::uniform(gpu, "tie empty groups", &params);
                        Some((
                            up("tie empty groups", &quad_padded(empty_groups)),
                            Pass {
                                uniforms: [uniform.clone(), uniform],
                                grid,
                            },
                        ))
                    };
                    ReducePlan::Scalar {
                        perm,
                        staged,
                        levels,
                        partials,
                        empty,
                    }
                }
                TieLayout::Blocks { outer, rows, inner } => {
                    let cols = outer * inner;
                    // The first pass's columns: quads when the inner extent is whole quads.
                    let quads = inner % 4 == 0 && inner > 0;
                    let lane = if quads { 4 } else { 1 };
                    let col_blocks = (cols / lane).div_ceil(256).max(1);
                    let piece_col_blocks = cols.div_ceil(256).max(1);
                    let mut pieces: Vec<[u32; 4]> = Vec::new();
                    let mut entries: Vec<[u32; 4]> = Vec::new();
                    let mut slots = 0u32;
                    for g in 0..map.groups() as usize {
                        let (lo, hi) = (offsets[g], offsets[g + 1]);
                        let size = hi - lo;
                        let n = size.div_ceil(PIECE_ROWS);
                        if n > MAX_PIECES {
                            return Err(Error::LimitExceeded {
                                limit: "rows in one tied group",
                                needed: u64::from(size),
                                allowed: u64::from(MAX_PIECES * PIECE_ROWS),
                                hint: "; split the group".into(),
                            });
                        }
                        if n == 1 {
                            pieces.push([g as u32, lo, size, 0]);
                        } else {
                            entries.push([g as u32, slots, n, size]);
                            for j in 0..n {
                                let start = lo + j * PIECE_ROWS;
                                pieces.push([
                                    g as u32,
                                    start,
                                    PIECE_ROWS.min(hi - start),
                                    slots + 1,
                                ]);
                                slots += 1;
                            }
                        }
                    }
                    check_binding_size(
                        gpu,
                        "tie block partials",
                        u64::from(slots) * u64::from(cols) * 4,
                    )?;
                    check_binding_size(gpu, "tie pieces", pieces.len() as u64 * 16)?;
                    let grid = Grid::fold(pieces.len() as u64 * u64::from(col_blocks), max_dim)?;
                    let grid2 =
                        Grid::fold(entries.len() as u64 * u64::from(piece_col_blocks), max_dim)?;
                    let first = Pass {
                        uniforms: mean_flags.map(|mean| {
                            dispatch::uniform(
                                gpu,
                                "tie reduce blocks",
                                &BlockParams {
                                    outer,
                                    rows,
                                    inner: inner / lane,
                                    cols: cols / lane,
                                    col_blocks,
                                    mean,
                                    fold_x: grid.x.max(1),
                                    total_wg: grid.total,
                                    values: ValuesView {
                                        stride: values.stride / lane,
                                        offset: values.offset / lane,
                                    },
                                    _pad: [0; 2],
                                },
                            )
                        }),
                        grid,
                    };
                    let second = Pass {
                        uniforms: mean_flags.map(|mean| {
                            dispatch::uniform(
                                gpu,
                                "tie reduce block pieces",
                                &PieceParams {
                                    cols,
                                    col_blocks: piece_col_blocks,
                                    mean,
                                    entries: entries.len() as u32,
                                    fold_x: grid2.x.max(1),
                                    total_wg: grid2.total,
                                    values,
                                },
                            )
                        }),
                        grid: grid2,
                    };
                    let (row_perm, pieces, entries, partials) = match tables {
                        Some(Single {
                            reduce:
                                ReducePlan::Blocks {
                                    row_perm,
                                    pieces,
                                    entries,
                                    partials,
                                    ..
                                },
                            ..
                        }) => (
                            row_perm.clone(),
                            pieces.clone(),
                            entries.clone(),
                            partials.clone(),
                        ),
                        _ => (
                            up("tie row perm", &perm),
                            dispatch::storage_init(
                                gpu,
                                "tie pieces",
                                &pieces,
                                wgpu::BufferUsages::empty(),
                            ),
                            dispatch::storage_init(
                                gpu,
                                "tie piece groups",
                                &entries,
                                wgpu::BufferUsages::empty(),
                            ),
                            dispatch::storage_init(
                                gpu,
                                "tie block partials",
                                // At least one quad: a vec4 binding needs 16 bytes.
                                &vec![0f32; (slots as usize * cols as usize).max(4)],
                                wgpu::BufferUsages::empty(),
                            ),
                        ),
                    };
                    ReducePlan::Blocks {
                        row_perm,
                        pieces,
                        entries,
                        partials,
                        quads,
                        first,
                        second,
                    }
                }
            };
            let (_, rows, inner) = layout.view();
            let len = layout.params_len() as u64;
            // Scalars: whole quads four at a time, the rest (from `first`) one by one. Blocks
            // whose inner extent is whole quads: all in quads.
            let (quads, first) = match layout {
                TieLayout::Scalar { .. } => (len / 4, len / 4 * 4),
                TieLayout::Blocks { .. } if inner % 4 == 0 && inner > 0 => (len / 4, len),
                TieLayout::Blocks { .. } => (0, 0),
            };
            let mut broadcast = Vec::new();
            for (table, quads) in runs.pieces(device) {
                let kernel = if quads {
                    BroadcastKernel::QuadRuns
                } else {
                    BroadcastKernel::Runs
                };
                let grid = Grid::fold((table.len() as u64).div_ceil(256), max_dim)?;
                let (n, fold_x) = (table.len() as u32, grid.x.max(1));
                let uniform = match kernel {
                    BroadcastKernel::QuadRuns => dispatch::uniform(
                        gpu,
                        "tie broadcast runs",
                        &QuadParams {
                            quads: n,
                            fold_x,
                            total_wg: grid.total,
                            ..Default::default()
                        },
                    ),
                    _ => dispatch::uniform(
                        gpu,
                        "tie broadcast runs",
                        &BroadcastParams {
                            len: n,
                            fold_x,
                            total_wg: grid.total,
                            values,
                            ..Default::default()
                        },
                    ),
                };
                broadcast.push(BroadcastPass {
                    kernel,
                    uniform,
                    grid,
                    runs: Some(dispatch::storage_init(
                        gpu,
                        "tie broadcast runs",
                        table,
                        wgpu::BufferUsages::empty(),
                    )),
                });
            }
            // A map read in place is broadcast by its runs alone.
            if quads > 0 && !in_place {
                let (kernel, per_thread) = match layout {
                    TieLayout::Scalar { .. } => (BroadcastKernel::Quads, QUADS_PER_THREAD),
                    TieLayout::Blocks { .. } => {
                        (BroadcastKernel::BlockQuads, BLOCK_QUADS_PER_THREAD)
                    }
                };
                let grid = Grid::fold(quads.div_ceil(per_thread * 256), max_dim)?;
                let (rows, inner4) = (rows.max(1), (inner / 4).max(1));
                let qp = QuadParams {
                    quads: quads as u32,
                    fold_x: grid.x.max(1),
                    total_wg: grid.total,
                    stride: grid.total * 256,
                    rows,
                    inner4,
                    step_i: 256 % inner4,
                    step_r: (256 / inner4) % rows,
                    step_o: 256 / inner4 / rows,
                    values_stride4: values.stride / 4,
                    values_offset4: values.offset / 4,
                    _pad: 0,
                };
                broadcast.push(BroadcastPass {
                    kernel,
                    uniform: dispatch::uniform(gpu, "tie broadcast quads", &qp),
                    grid,
                    runs: None,
                });
            }
            if len > first && !in_place {
                let per_thread = match layout {
                    TieLayout::Scalar { .. } => 1,
                    TieLayout::Blocks { .. } => BLOCKS_PER_THREAD,
                };
                let grid = Grid::fold((len - first).div_ceil(per_thread * 256), max_dim)?;
                let (rows, inner) = (rows.max(1), inner.max(1));
                let bp = BroadcastParams {
                    len: len as u32,
                    rows,
                    inner,
                    fold_x: grid.x.max(1),
                    total_wg: grid.total,
                    first: first as u32,
                    step_i: 256 % inner,
                    step_r: (256 / inner) % rows,
                    step_o: 256 / inner / rows,
                    values,
                    _pad: 0,
                };
                broadcast.push(BroadcastPass {
                    kernel: match layout {
                        TieLayout::Scalar { .. } => BroadcastKernel::Scalar,
                        TieLayout::Blocks { .. } => BroadcastKernel::Blocks,
                    },
                    uniform: dispatch::uniform(gpu, "tie broadcast", &bp),
                    grid,
                    runs: None,
                });
            }
            Ok(Single {
                ids,
                reduce,
                broadcast,
            })
        })
    }

    /// Per-group reduction from a host slice: returns `[groups][unit_len]`.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`], plan and recording errors, device loss.
    pub async fn reduce(&self, map: &TieMap, src: &[f32], how: Reduction) -> Result<Vec<f32>> {
        check_len("src", map.layout().params_len(), src)?;
        let plan = self.plan(map)?;
        let gpu = &self.gpu;
        let out = dispatch::record_and_submit(gpu, |encoder| {
            let src = dispatch::upload(gpu, "tie src", src);
            let out = dispatch::zeros(gpu, "tie values", map.values_len());
            plan.record_reduce(encoder, &src, &out, how)?;
            Ok(out)
        })
        .await?;
        dispatch::read_back(gpu, &out, map.values_len()).await
    }

    /// Reduce then broadcast back into the tensor (the training step), from a host slice:
    /// returns the new tensor. With `values = None` the group values come from `tensor`
    /// itself; with `Some(v)` they are broadcast as given.
    ///
    /// `tensor_name` is the caller's name for `tensor` (`target`, `grads`, `weights`).
    async fn run_broadcast(
        &self,
        map: &TieMap,
        (tensor_name, tensor): (&'static str, &[f32]),
        values: Option<&[f32]>,
        how: Reduction,
    ) -> Result<Vec<f32>> {
        check_len(tensor_name, map.layout().params_len(), tensor)?;
        if let Some(v) = values {
            check_len("values", map.values_len(), v)?;
        }
        let plan = self.plan(map)?;
        let gpu = &self.gpu;
        let buf = dispatch::record_and_submit(gpu, |encoder| {
            let buf = dispatch::upload(gpu, "tie tensor", tensor);
            let vals = match values {
                Some(v) => dispatch::upload(gpu, "tie values", v),
                None => dispatch::zeros(gpu, "tie values", map.values_len()),
            };
            // Named as the caller named the slices.
            match values {
                None => plan.record_fused(encoder, (tensor_name, &buf), &vals, how)?,
                Some(_) => dispatch::record_checked(gpu, encoder, |rec| {
                    plan.build_broadcast(rec, ("values", &vals), (tensor_name, &buf))
                })?,
            }
            Ok(buf)
        })
        .await?;
        dispatch::read_back(gpu, &buf, map.layout().params_len()).await
    }

    /// Writes `values` (`[groups][unit_len]`) to the members of `target`; untied units keep
    /// their values. Returns the new tensor.
    ///
    /// # Errors
    /// As [`Ties::reduce`].
    pub async fn broadcast(
        &self,
        map: &TieMap,
        values: &[f32],
        target: &[f32],
    ) -> Result<Vec<f32>> {
        self.run_broadcast(map, ("target", target), Some(values), Reduction::Sum)
            .await
    }

    /// Fused reduce-then-broadcast of gradients: every tied gradient becomes its group's sum
    /// (or mean). Returns the new gradients.
    ///
    /// # Errors
    /// As [`Ties::reduce`].
    pub async fn reduce_broadcast(
        &self,
        map: &TieMap,
        grads: &[f32],
        how: Reduction,
    ) -> Result<Vec<f32>> {
        self.run_broadcast(map, ("grads", grads), None, how).await
    }

    /// The tying projection: every tied unit of `weights` becomes its group's mean.
    ///
    /// # Errors
    /// As [`Ties::reduce`].
    pub async fn project(&self, map: &TieMap, weights: &[f32]) -> Result<Vec<f32>> {
        self.run_broadcast(map, ("weights", weights), None, Reduction::Mean)
            .await
    }

    /// Blocking [`Ties::reduce`] (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn reduce_blocking(&self, map: &TieMap, src: &[f32], how: Reduction) -> Result<Vec<f32>> {
        pollster::block_on(self.reduce(map, src, how))
    }

    /// Blocking [`Ties::broadcast`] (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn broadcast_blocking(
        &self,
        map: &TieMap,
        values: &[f32],
        target: &[f32],
    ) -> Result<Vec<f32>> {
        pollster::block_on(self.broadcast(map, values, target))
    }

    /// Blocking [`Ties::reduce_broadcast`] (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn reduce_broadcast_blocking(
        &self,
        map: &TieMap,
        grads: &[f32],
        how: Reduction,
    ) -> Result<Vec<f32>> {
        pollster::block_on(self.reduce_broadcast(map, grads, how))
    }

    /// Blocking [`Ties::project`] (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn project_blocking(&self, map: &TieMap, weights: &[f32]) -> Result<Vec<f32>> {
        pollster::block_on(self.project(map, weights))
    }
}

impl Single {
    /// The staged copy of a staged scalar plan.
    fn staged_copy(&self) -> Option<&wgpu::Buffer> {
        match &self.reduce {
            ReducePlan::Scalar {
                staged: Some(staged),
                ..
            } => Some(&staged.values),
            _ => None,
        }
    }

    fn build_reduce(
        &self,
        k: &TieKernels,
        dev: &wgpu::Device,
        rec: &mut Recording,
        src: wgpu::BufferBinding<'_>,
        values: wgpu::BufferBinding<'_>,
        how: Reduction,
    ) {
        match &self.reduce {
            ReducePlan::Scalar {
                perm,
                staged,
                levels,
                partials,
                empty,
            } => {
                // Level 1 gathers from the staged copy when there is one.
                let src = match staged {
                    Some(staged) => {
                        k.stage.run_ranges(
                            dev,
                            rec,
                            &[
                                whole(&staged.uniform),
                                whole(&staged.offsets),
                                src,
                                whole(&staged.values),
                            ],
                            staged.grid,
                        );
                        whole(&staged.values)
                    }
                    None => src,
                };
                let bytes = |b: &wgpu::BufferBinding<'_>| {
                    b.size.map_or(b.buffer.size() - b.offset, |s| s.get())
                };
                for (i, passes) in levels.iter().enumerate() {
                    for RunPass { runs, quads, pass } in passes {
                        // Level 1 reads the members (through `perm` unless read in place),
                        // later levels the partials of the level below. Unused bindings (and
                        // a tensor too small for a quad, which then has no run of quads) take
                        // the run table.
                        let (input, at, gather) = match (i, perm) {
                            (0, Some(perm)) => (src.clone(), whole(perm), true),
                            (0, None) => (src.clone(), whole(runs), false),
                            _ => (whole(&partials[(i - 1) % 2]), whole(runs), false),
                        };
                        let input_quads = if bytes(&input) >= 16 {
                            input.clone()
                        } else {
                            whole(runs)
                        };
                        k.reduce_runs[usize::from(*quads)][usize::from(gather)].run_ranges(
                            dev,
                            rec,
                            &[
                                whole(pass.uniform(how)),
                                whole(runs),
                                input,
                                at,
                                values.clone(),
                                whole(&partials[i % 2]),
                                input_quads,
                            ],
                            pass.grid,
                        );
                    }
                }
                if let Some((list, pass)) = empty {
                    k.reduce_empty.run_ranges(
                        dev,
                        rec,
                        &[
                            whole(pass.uniform(how)),
                            whole(list),
                            whole(&partials[0]),
                            whole(list),
                            values.clone(),
                            whole(&partials[1]),
                            whole(&partials[0]),
                        ],
                        pass.grid,
                    );
                }
            }
            ReducePlan::Blocks {
                row_perm,
                pieces,
                entries,
                partials,
                quads,
                first,
                second,
            } => {
                k.reduce_blocks[usize::from(*quads)].run_ranges(
                    dev,
                    rec,
                    &[
                        whole(first.uniform(how)),
                        src,
                        whole(row_perm),
                        whole(pieces),
                        values.clone(),
                        whole(partials),
                    ],
                    first.grid,
                );
                k.reduce_block_pieces.run_ranges(
                    dev,
                    rec,
                    &[
                        whole(second.uniform(how)),
                        whole(entries),
                        whole(partials),
                        values,
                    ],
                    second.grid,
                );
            }
        }
    }

    fn build_broadcast(
        &self,
        k: &TieKernels,
        dev: &wgpu::Device,
        rec: &mut Recording,
        values: &wgpu::Buffer,
        target: wgpu::BufferBinding<'_>,
    ) {
        for pass in &self.broadcast {
            let kernel = match pass.kernel {
                BroadcastKernel::Runs => &k.broadcast_runs,
                BroadcastKernel::QuadRuns => &k.broadcast_quad_runs,
                BroadcastKernel::Quads => &k.broadcast_quads,
                BroadcastKernel::Scalar => &k.broadcast_scalar,
                BroadcastKernel::Blocks => &k.broadcast_blocks,
                BroadcastKernel::BlockQuads => &k.broadcast_block_quads,
            };
            kernel.run_ranges(
                dev,
                rec,
                &[
                    whole(&pass.uniform),
                    whole(pass.runs.as_ref().unwrap_or(&self.ids)),
                    whole(values),
                    target.clone(),
                ],
                pass.grid,
            );
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

    fn device(&self) -> &wgpu::Device {
        self.ties.gpu.device()
    }

    /// Records the per-group reduction of `src` (the parameter tensor's layout) into `values`
    /// (`[groups][unit_len]`, overwritten; empty groups get 0). Never submits.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`], [`Error::MissingUsage`] (both need `STORAGE`),
    /// [`Error::Aliasing`], [`Error::BufferMapped`], a buffer past the binding limit, or
    /// [`Error::Validation`] for a buffer wgpu refuses. Nothing is recorded on error.
    pub fn record_reduce(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        src: &wgpu::Buffer,
        values: &wgpu::Buffer,
        how: Reduction,
    ) -> Result<()> {
        dispatch::record_checked(&self.ties.gpu, encoder, |rec| {
            self.build_reduce(rec, ("src", src), ("values", values), how)
        })
    }

    /// The reduction of `src` into `values`, each given with the caller's name for it.
    fn build_reduce(
        &self,
        rec: &mut Recording,
        (src_name, src): (&'static str, &wgpu::Buffer),
        (values_name, values): (&'static str, &wgpu::Buffer),
        how: Reduction,
    ) -> Result<()> {
        let dev = self.device();
        let st = wgpu::BufferUsages::STORAGE;
        self.check_tensor(src_name, src)?;
        let values_len = self.values_len() as u64;
        check_buffer(&self.ties.gpu, values_name, values, values_len, st)?;
        check_distinct(values_name, values, &[(src_name, src)])?;
        if self.values_len() == 0 {
            return Ok(());
        }
        let k = &self.ties.kernels;
        match &self.body {
            Body::Single(single) => {
                single.build_reduce(k, dev, rec, whole(src), whole(values), how)
            }
            Body::Windowed(win) => match &win.combine {
                Some(combine) => {
                    let values_bytes = self.values_len() as u64 * 4;
                    for (w, window) in win.windows.iter().enumerate() {
                        window.plan.build_reduce(
                            k,
                            dev,
                            rec,
                            range(src, window.offset, window.bytes),
                            range(
                                &combine.partials,
                                w as u64 * combine.slot_bytes,
                                values_bytes,
                            ),
                            Reduction::Sum,
                        );
                    }
                    k.combine.run(
                        dev,
                        rec,
                        &[
                            combine.pass.uniform(how),
                            &combine.partials,
                            &combine.sizes,
                            values,
                        ],
                        combine.pass.grid,
                    );
                }
                None => {
                    for window in &win.windows {
                        window.plan.build_reduce(
                            k,
                            dev,
                            rec,
                            range(src, window.offset, window.bytes),
                            whole(values),
                            how,
                        );
                    }
                }
            },
        }
        Ok(())
    }

    /// Checks a tensor-sized caller buffer: whole-binding limits only apply to unwindowed plans.
    fn check_tensor(&self, name: &'static str, buffer: &wgpu::Buffer) -> Result<()> {
        dispatch::check_buffer_windowed(
            &self.ties.gpu,
            name,
            buffer,
            self.layout.params_len() as u64,
            wgpu::BufferUsages::STORAGE,
            matches!(self.body, Body::Windowed(_)),
        )
    }

    /// Records the broadcast of `values` (`[groups][unit_len]`) into `target` (the parameter
    /// tensor's layout): tied units are overwritten with their group's value, untied units
    /// are left as they are. Never submits.
    ///
    /// # Errors
    /// As [`TiePlan::record_reduce`].
    pub fn record_broadcast(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        values: &wgpu::Buffer,
        target: &wgpu::Buffer,
    ) -> Result<()> {
        dispatch::record_checked(&self.ties.gpu, encoder, |rec| {
            self.build_broadcast(rec, ("values", values), ("target", target))
        })
    }

    /// The broadcast of `values` into `target`, each given with the caller's name for it.
    fn build_broadcast(
        &self,
        rec: &mut Recording,
        (values_name, values): (&'static str, &wgpu::Buffer),
        (target_name, target): (&'static str, &wgpu::Buffer),
    ) -> Result<()> {
        let dev = self.device();
        let st = wgpu::BufferUsages::STORAGE;
        let values_len = self.values_len() as u64;
        check_buffer(&self.ties.gpu, values_name, values, values_len, st)?;
        self.check_tensor(target_name, target)?;
        check_distinct(target_name, target, &[(values_name, values)])?;
        if self.values_len() == 0 || self.layout.params_len() == 0 {
            // No group values, so no tied unit; or no unit at all.
            return Ok(());
        }
        let k = &self.ties.kernels;
        match &self.body {
            Body::Single(single) => single.build_broadcast(k, dev, rec, values, whole(target)),
            Body::Windowed(win) => {
                for window in &win.windows {
                    let target = range(target, window.offset, window.bytes);
                    window.plan.build_broadcast(k, dev, rec, values, target);
                }
            }
        }
        Ok(())
    }

    /// Records the training step's fused reduce-then-broadcast: `grads` is reduced into
    /// `scratch_values` (`[groups][unit_len]`) and every tied gradient is replaced by its
    /// group's sum or mean, in place.
    ///
    /// # Errors
    /// As [`TiePlan::record_reduce`].
    pub fn record_reduce_broadcast(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        grads: &wgpu::Buffer,
        scratch_values: &wgpu::Buffer,
        how: Reduction,
    ) -> Result<()> {
        self.record_fused(encoder, ("grads", grads), scratch_values, how)
    }

    /// The fused reduce-then-broadcast of `tensor`, named as the caller names it.
    fn record_fused(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        tensor: (&'static str, &wgpu::Buffer),
        scratch_values: &wgpu::Buffer,
        how: Reduction,
    ) -> Result<()> {
        let scratch = ("scratch_values", scratch_values);
        dispatch::record_checked(&self.ties.gpu, encoder, |rec| {
            self.build_reduce(rec, tensor, scratch, how)?;
            self.build_broadcast(rec, scratch, tensor)
        })
    }

    /// Records the tying projection: every tied unit of `weights` becomes its group's mean
    /// (the group averaging of the GrOWL retraining phase), in place.
    ///
    /// # Errors
    /// As [`TiePlan::record_reduce`].
    pub fn record_project(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        weights: &wgpu::Buffer,
        scratch_values: &wgpu::Buffer,
    ) -> Result<()> {
        self.record_fused(
            encoder,
            ("weights", weights),
            scratch_values,
            Reduction::Mean,
        )
    }
}

/// `indices` padded with `pad` to whole quads, at least one (a vec4 view needs 16 bytes).
fn quad_padded_with(mut indices: Vec<u32>, pad: u32) -> Vec<u32> {
    indices.resize(indices.len().div_ceil(4).max(1) * 4, pad);
    indices
}

/// `indices` padded with zeros to whole quads, at least one.
fn quad_padded(indices: Vec<u32>) -> Vec<u32> {
    quad_padded_with(indices, 0)
}

/// A run of a sequence of values: at most [`REDUCE_RUN`] neighbours of one group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    first: u32,
    len: u32,
    /// Starts on a quad and holds whole quads: read or written four values at a time.
    quads: bool,
}

/// Positions `first..first + len` of one group cut into runs, in order. A stretch of at most
/// [`REDUCE_RUN`] is one run; a longer one is cut at quad edges: the values before its first
/// quad edge, runs of at most [`REDUCE_RUN`] whole quads, the values after its last quad
/// edge.
fn cut_runs(first: u32, len: u32) -> Vec<Run> {
    let end = first + len;
    if len <= REDUCE_RUN {
        let quads = first.is_multiple_of(4) && len.is_multiple_of(4);
        return vec![Run { first, len, quads }];
    }
    let (head, tail) = (first.next_multiple_of(4), end / 4 * 4);
    let mut runs = Vec::new();
    if head > first {
        runs.push(Run {
            first,
            len: head - first,
            quads: false,
        });
    }
    runs.extend((head..tail).step_by(REDUCE_RUN as usize).map(|at| Run {
        first: at,
        len: REDUCE_RUN.min(tail - at),
        quads: true,
    }));
    if end > tail {
        runs.push(Run {
            first: tail,
            len: end - tail,
            quads: false,
        });
    }
    runs
}

/// How many runs [`cut_runs`] cuts `first..first + len` into.
fn run_count(first: u32, len: u32) -> usize {
    if len <= REDUCE_RUN {
        return 1;
    }
    let (head, tail) = (first.next_multiple_of(4), (first + len) / 4 * 4);
    usize::from(head > first)
        + (tail - head).div_ceil(REDUCE_RUN) as usize
        + usize::from(first + len > tail)
}

/// One level's run tables, `[first, length, destination, count]` each, longest first
/// (stable), so neighbouring threads loop alike: the runs of whole quads (first and length in
/// quads), and the others (in values).
#[derive(Debug, Default)]
struct RunTables {
    quads: Vec<[u32; 4]>,
    values: Vec<[u32; 4]>,
}

impl RunTables {
    /// Both tables cut into pieces that each fit one storage binding of `device` (a map of
    /// many tiny groups has 16 bytes of runs per member): (runs, whether runs of quads).
    fn pieces(&self, device: &wgpu::Device) -> impl Iterator<Item = (&[[u32; 4]], bool)> {
        let max_runs = (device.limits().max_storage_buffer_binding_size / 16)
            .min(u64::from(u32::MAX)) as usize;
        [(&self.quads, true), (&self.values, false)]
            .into_iter()
            .flat_map(move |(runs, quads)| runs.chunks(max_runs).map(move |piece| (piece, quads)))
    }

    fn push(&mut self, run: Run, destination: u32, count: u32) {
        if run.quads {
            self.quads
                .push([run.first / 4, run.len / 4, destination, count]);
        } else {
            self.values.push([run.first, run.len, destination, count]);
        }
    }

    fn sorted(mut self) -> Self {
        self.quads.sort_by_key(|r| std::cmp::Reverse(r[1]));
        self.values.sort_by_key(|r| std::cmp::Reverse(r[1]));
        self
    }
}

/// Groups to reduce: per group (group, member count, first stretch, stretches), indexing
/// `stretches`, the stretches of a sequence that hold its values, in order, as (first, length).
#[derive(Clone, Debug, Default)]
struct OpenGroups {
    groups: Vec<[u32; 4]>,
    stretches: Vec<(u32, u32)>,
}

impl OpenGroups {
    fn push(&mut self, group: u32, count: u32, stretches: impl IntoIterator<Item = (u32, u32)>) {
        let first = self.stretches.len() as u32;
        self.stretches.extend(stretches);
        let n = self.stretches.len() as u32 - first;
        self.groups.push([group, count, first, n]);
    }

    /// Group entry `[group, count, first, n]`'s stretches.
    fn of(&self, entry: &[u32; 4]) -> &[(u32, u32)] {
        &self.stretches[entry[2] as usize..(entry[2] + entry[3]) as usize]
    }
}

/// The non-empty groups over the members in group order, where group `g` holds positions
/// `offsets[g]..offsets[g + 1]`: one stretch each.
fn sorted_groups(offsets: &[u32]) -> OpenGroups {
    let mut open = OpenGroups::default();
    for (g, w) in offsets.windows(2).enumerate().filter(|(_, w)| w[1] > w[0]) {
        open.push(g as u32, w[1] - w[0], [(w[0], w[1] - w[0])]);
    }
    open
}

/// Each group's members (`perm`, in group order and, within a group, ascending) as stretches
/// of neighbouring parameters, in order: `visit(group, first, length)`.
fn for_each_stretch(perm: &[u32], offsets: &[u32], mut visit: impl FnMut(u32, u32, u32) -> bool) {
    for (g, w) in offsets.windows(2).enumerate().filter(|(_, w)| w[1] > w[0]) {
        let members = &perm[w[0] as usize..w[1] as usize];
        let mut first = members[0];
        let mut len = 1;
        for &param in &members[1..] {
            if param == first + len {
                len += 1;
            } else {
                if !visit(g as u32, first, len) {
                    return;
                }
                (first, len) = (param, 1);
            }
        }
        if !visit(g as u32, first, len) {
            return;
        }
    }
}

/// Whether the runs of a reduction in place (`in_place_groups` cut by [`cut_runs`]) number at
/// most `limit` (and at least one); counted without building them, stopping past the limit.
fn runs_in_place_at_most(perm: &[u32], offsets: &[u32], limit: usize) -> bool {
    let mut runs = 0usize;
    for_each_stretch(perm, offsets, |_, first, len| {
        runs += run_count(first, len);
        runs <= limit
    });
    runs >= 1 && runs <= limit
}

/// The non-empty groups over the tensor itself: each group's members cut into stretches of
/// neighbouring parameters.
fn in_place_groups(perm: &[u32], offsets: &[u32]) -> OpenGroups {
    let mut open = OpenGroups::default();
    let mut current: Option<u32> = None;
    for_each_stretch(perm, offsets, |g, first, len| {
        if current != Some(g) {
            let count = offsets[g as usize + 1] - offsets[g as usize];
            open.groups.push([g, count, open.stretches.len() as u32, 0]);
            current = Some(g);
        }
        open.stretches.push((first, len));
        open.groups.last_mut().expect("pushed above")[3] += 1;
        true
    });
    open
}

/// The runs of a broadcast in place (`runs` of `shaders/tie_broadcast.wgsl` and
/// `shaders/tie_broadcast_quads.wgsl`): each group's stretches cut by [`cut_runs`], with the
/// group as destination.
fn broadcast_runs(open: &OpenGroups) -> RunTables {
    let mut tables = RunTables::default();
    for entry in &open.groups {
        for &(first, len) in open.of(entry) {
            for run in cut_runs(first, len) {
                tables.push(run, entry[0], 0);
            }
        }
    }
    tables.sorted()
}

/// The run tables of a scalar reduction (see `shaders/tie_reduce_runs.wgsl`) of the groups
/// `open`, whose stretches level 1 reads ([`sorted_groups`] or [`in_place_groups`]).
///
/// Level 1 cuts each group's stretches by [`cut_runs`]; each later level cuts the run sums of
/// the groups that had several runs on the level below (numbered in group and run order:
/// their slots in the partials). A group's only run on a level has its group as destination
/// and its member count as `count`; other runs have their slot as destination and `count` 0.
fn run_levels(mut open: OpenGroups) -> Vec<RunTables> {
    let mut levels = Vec::new();
    while !open.groups.is_empty() {
        let mut tables = RunTables::default();
        let mut next = OpenGroups::default();
        let mut slots = 0u32;
        for entry in &open.groups {
            let [group, count, ..] = *entry;
            let stretches = open.of(entry);
            if let [(first, len)] = *stretches {
                if let [run] = cut_runs(first, len)[..] {
                    tables.push(run, group, count);
                    continue;
                }
            }
            let start = slots;
            for &(first, len) in stretches {
                for run in cut_runs(first, len) {
                    tables.push(run, slots, 0);
                    slots += 1;
                }
            }
            next.push(group, count, [(start, slots - start)]);
        }
        levels.push(tables.sorted());
        open = next;
    }
    levels
}

/// The staged layout of a scalar plan of `len` parameters whose members, in group order, are
/// the parameters `perm`: each chunk of [`STAGE_CHUNK`] parameters keeps its place, and its
/// members fill it from the start in group order. Returns each member's slot (group order) and,
/// per slot of the whole quads of `len`, the offset inside its chunk of the parameter it takes
/// (0 for slots no member fills: a valid parameter, read and never used).
fn stage_slots(len: u32, perm: &[u32]) -> (Vec<u32>, Vec<u32>) {
    let mut filled = vec![0u32; len.div_ceil(STAGE_CHUNK) as usize];
    let mut offsets = vec![0u32; len.div_ceil(4) as usize * 4];
    let slots = perm
        .iter()
        .map(|&param| {
            let chunk = param / STAGE_CHUNK;
            let slot = chunk * STAGE_CHUNK + filled[chunk as usize];
            filled[chunk as usize] += 1;
            offsets[slot as usize] = param - chunk * STAGE_CHUNK;
            slot
        })
        .collect();
    (slots, offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every level's runs hold 1..=32 values, longest first, runs of quads start on a quad;
    /// summing level by level as the shader does gives every non-empty group the sum of
    /// exactly its members (checked in integers), and its member count with its last run.
    #[test]
    fn run_levels_sum_every_group_once() {
        let sizes = [
            0u32,
            1,
            2,
            31,
            32,
            33,
            0,
            64,
            1023,
            1024,
            1025,
            5,
            32 * 32 * 32 + 1,
            3,
        ];
        let mut offsets = vec![0u32];
        for size in sizes {
            offsets.push(offsets.last().unwrap() + size);
        }
        let members = *offsets.last().unwrap() as usize;
        let levels = run_levels(sorted_groups(&offsets));
        assert_eq!(levels.len(), 4, "32,769 members take four levels");
        assert!(levels[0].quads.len() > 1000 && !levels[0].values.is_empty());
        let mut input: Vec<u64> = (0..members as u64).map(|i| i * i + 1).collect();
        let mut done = vec![None; sizes.len()];
        for level in &levels {
            let slots = level.quads.iter().chain(&level.values);
            let mut partials = vec![None; slots.filter(|r| r[3] == 0).count()];
            for (table, width) in [(&level.quads, 4), (&level.values, 1)] {
                assert!(
                    table.windows(2).all(|w| w[0][1] >= w[1][1]),
                    "longest first"
                );
                for &[first, len, dest, count] in table {
                    let (first, len) = (first * width, len * width);
                    assert!((1..=REDUCE_RUN).contains(&len));
                    let sum: u64 = input[first as usize..(first + len) as usize].iter().sum();
                    if count == 0 {
                        assert!(partials[dest as usize].replace(sum).is_none());
                    } else {
                        assert!(done[dest as usize].replace((sum, count)).is_none());
                    }
                }
            }
            input = partials.into_iter().map(Option::unwrap).collect();
        }
        assert!(input.is_empty());
        for (g, size) in sizes.into_iter().enumerate() {
            let (lo, hi) = (offsets[g] as u64, offsets[g + 1] as u64);
            let want = (size > 0).then(|| ((lo..hi).map(|i| i * i + 1).sum::<u64>(), size));
            assert_eq!(done[g], want, "group {g}");
        }
        assert!(run_levels(sorted_groups(&[0, 0, 0])).is_empty());
    }

    /// Each group's members (ascending) split where a parameter does not follow the one before.
    #[test]
    fn in_place_groups_cut_stretches_of_neighbours() {
        // Group 0: 0-3, 8-9; group 1: empty; group 2: 4, 6, 7.
        let perm = [0, 1, 2, 3, 8, 9, 4, 6, 7];
        let open = in_place_groups(&perm, &[0, 6, 6, 9]);
        let got: Vec<_> = open
            .groups
            .iter()
            .map(|e| (e[0], e[1], open.of(e).to_vec()))
            .collect();
        assert_eq!(
            got,
            [(0, 6, vec![(0, 4), (8, 2)]), (2, 3, vec![(4, 1), (6, 2)])]
        );
        // Four stretches, one run each: at most 4 runs, not 3.
        assert!(runs_in_place_at_most(&perm, &[0, 6, 6, 9], 4));
        assert!(!runs_in_place_at_most(&perm, &[0, 6, 6, 9], 3));
        // Level 1 reads four runs (one of a whole quad), each a partial of its group.
        let levels = run_levels(open);
        assert_eq!(levels[0].quads, [[0, 1, 0, 0]]);
        assert_eq!(levels.len(), 2);
    }

    /// A long stretch is cut at quad edges into a ragged head, whole-quad runs and a ragged
    /// tail, in order and covering it once; a short one stays whole.
    #[test]
    fn cut_runs_at_quad_edges() {
        let run = |first, len, quads| Run { first, len, quads };
        assert_eq!(cut_runs(8, 32), [run(8, 32, true)]);
        assert_eq!(cut_runs(9, 30), [run(9, 30, false)]);
        assert_eq!(
            cut_runs(5, 70),
            [
                run(5, 3, false),
                run(8, 32, true),
                run(40, 32, true),
                run(72, 3, false)
            ]
        );
        for (first, len) in [(0u32, 33u32), (3, 100), (7, 36), (1, 1000), (5, 9), (4, 64)] {
            let runs = cut_runs(first, len);
            assert_eq!(run_count(first, len), runs.len());
            let mut at = first;
            for r in &runs {
                assert_eq!(r.first, at);
                assert!(r.len >= 1 && r.len <= REDUCE_RUN);
                assert!(!r.quads || (r.first % 4 == 0 && r.len % 4 == 0));
                at += r.len;
            }
            assert_eq!(at, first + len);
        }
    }

    /// Every member lands in its own chunk, members of one chunk fill it from the start in group
    /// order, and each slot's offset leads back to the member's parameter.
    #[test]
    fn stage_slots_keep_chunks_and_group_order() {
        let len = 3 * STAGE_CHUNK + 6;
        // Every third parameter, in a scrambled group order that visits every chunk.
        let perm: Vec<u32> = (0..len)
            .step_by(3)
            .map(|i| (i * 7919) % len)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .rev()
            .collect();
        let (slots, offsets) = stage_slots(len, &perm);
        assert_eq!(slots.len(), perm.len());
        assert_eq!(offsets.len(), len.div_ceil(4) as usize * 4);
        let mut next = vec![0u32; len.div_ceil(STAGE_CHUNK) as usize];
        for (&param, &slot) in perm.iter().zip(&slots) {
            let chunk = param / STAGE_CHUNK;
            assert_eq!(slot, chunk * STAGE_CHUNK + next[chunk as usize]);
            next[chunk as usize] += 1;
            assert_eq!(chunk * STAGE_CHUNK + offsets[slot as usize], param);
        }
    }
}
