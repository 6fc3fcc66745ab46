//! The OWL prox's kernels, declared for the kernel table (`shaders/owl_*.wgsl`): one module
//! per stage (the common `owl_prox.wgsl`, then the stage's files), one [`KernelDecl`] per
//! pipeline, one bindings struct per entry point with exactly the buffers it uses.
//!
//! The stages, around the radix sort (see `shaders/owl_prox.wgsl` for the method):
//! `owl_prepare` (keys = |v|, payload = index), `owl_make_z` (z = sorted - w, block-scaled),
//! `owl_scan_block` / `owl_scan_add` (suffix sums), `owl_leaf` (hulls of `CHUNK` points),
//! `owl_compact`, `owl_bridge` / `owl_copy` (one merge level each), `owl_finish` and
//! `owl_blocks` (slopes or block ids, scattered back).

use crate::dispatch::{self, KernelDecl};
use crate::gpu::Gpu;
use crate::scan::{ScanKernels, SCAN_PART};

/// Points per leaf hull (`CHUNK` in WGSL).
pub(crate) const CHUNK: u32 = 256;

crate::uniform_struct! {
    /// The uniform block `p` of every OWL stage (`shaders/owl_prox.wgsl`).
    pub(crate) struct OwlParams {
        /// Elements of the vector.
        n: u32,
        /// Points of the cumulative-sum diagram: `n + 1`.
        points: u32,
        /// Values the scan level scans (`owl_scan`; otherwise `n`).
        len: u32,
        /// Hulls entering a merge level (`owl_bridge`, `owl_copy`).
        nodes_in: u32,
        /// Width of the folded grid (`linear_workgroup`).
        fold_x: u32,
        /// Workgroups of the grid (the scan stops the rest).
        total_wg: u32,
        /// Leaf hulls: `points` in chunks of `CHUNK`.
        chunks: u32,
        pad: u32,
    }
}

/// Declares one OWL stage module: the host's `CHUNK`, `OwlParams`, the common
/// `owl_prox.wgsl`, then `parts` (which define the stage's `fn stage(t: u32)`), then the
/// shared entry point `owl_stage.wgsl`.
macro_rules! owl_module {
    ($static:ident, $name:literal, [$($part:literal),*]) => {
        crate::module!($static = $name, [OwlParams], constants: &[("CHUNK", CHUNK)],
            parts: ["owl_prox", $($part,)* "owl_stage"]);
    };
}

owl_module!(PREPARE_MODULE, "owl_prepare", ["owl_prepare"]);
owl_module!(MAKE_Z_MODULE, "owl_make_z", ["owl_make_z"]);
owl_module!(LEAF_MODULE, "owl_leaf", ["owl_geometry", "owl_leaf"]);
owl_module!(COMPACT_MODULE, "owl_compact", ["owl_compact"]);
owl_module!(BRIDGE_MODULE, "owl_bridge", ["owl_geometry", "owl_bridge"]);
owl_module!(COPY_MODULE, "owl_copy", ["owl_copy"]);
owl_module!(FINISH_MODULE, "owl_finish", ["owl_geometry", "owl_finish"]);

crate::module!(
    /// The scan of the block-scaled sums: `scan.wgsl` after `owl_prox.wgsl` and `owl_scan.wgsl`.
    SCAN_MODULE = "owl_scan", [OwlParams], constants: &[("SCAN_BLOCK", crate::scan::SCAN_BLOCK)],
    parts: ["owl_prox", "owl_scan", SCAN_PART]
);

crate::bindings! {
    /// `owl_prepare`: magnitudes of `v` into `keys`, indices into `payload`.
    pub(crate) struct PrepareBindings {
        p @ 0: uniform(OwlParams),
        v @ 1: read,
        keys @ 2: read_write,
        payload @ 3: read_write,
    }
}

crate::bindings! {
    /// `owl_make_z`: the sorted magnitudes `keys` minus the weights `w`, into `z`.
    pub(crate) struct MakeZBindings {
        p @ 0: uniform(OwlParams),
        keys @ 1: read,
        w @ 2: read,
        z @ 3: read_write,
    }
}

crate::bindings! {
    /// The OWL suffix-sum scan's buffers.
    pub(crate) struct ScanBindings {
        p @ 0: uniform(OwlParams),
        data @ 1: read_write,
        totals @ 2: read_write,
    }
}

crate::bindings! {
    /// `owl_leaf`: the hull of each chunk of the diagram of `sums` into `hull_cap`, its size
    /// into `sizes`.
    pub(crate) struct LeafBindings {
        p @ 0: uniform(OwlParams),
        sums @ 1: read,
        hull_cap @ 2: read_write,
        sizes @ 3: read_write,
    }
}

crate::bindings! {
    /// `owl_compact`: the leaf hulls packed at `offsets` (their sizes scanned) into `verts`.
    pub(crate) struct CompactBindings {
        p @ 0: uniform(OwlParams),
        hull_cap @ 1: read,
        offsets @ 2: read,
        verts @ 3: read_write,
    }
}

crate::bindings! {
    /// `owl_bridge`: the tangents of neighbouring hulls into `bridges`, merged sizes into
    /// `sizes_out`.
    pub(crate) struct BridgeBindings {
        p @ 0: uniform(OwlParams),
        sums @ 1: read,
        verts @ 2: read,
        offsets @ 3: read,
        bridges @ 4: read_write,
        sizes_out @ 5: read_write,
    }
}

crate::bindings! {
    /// `owl_copy`: the kept vertices of one level into the next.
    pub(crate) struct CopyBindings {
        p @ 0: uniform(OwlParams),
        verts_in @ 1: read,
        offsets_in @ 2: read,
        bridges @ 3: read,
        offsets_out @ 4: read,
        verts_out @ 5: read_write,
    }
}

crate::bindings! {
    /// `owl_finish`: the slopes of the final hull, with signs, into `v_out` at `payload`.
    pub(crate) struct FinishBindings {
        p @ 0: uniform(OwlParams),
        sums @ 1: read,
        verts @ 2: read,
        offsets @ 3: read,
        payload @ 4: read,
        v_out @ 5: read_write,
    }
}

crate::bindings! {
    /// `owl_blocks`: each element's hull segment (its PAV block id) into `v_out` at `payload`
    /// (the caller's `blocks`). Needs no sums.
    pub(crate) struct BlocksBindings {
        p @ 0: uniform(OwlParams),
        verts @ 2: read,
        offsets @ 3: read,
        payload @ 4: read,
        v_out @ 5: read_write,
    }
}

crate::kernel!(OWL_PREPARE = "owl_prepare", PREPARE_MODULE, PrepareBindings);

crate::kernel!(OWL_MAKE_Z = "owl_make_z", MAKE_Z_MODULE, MakeZBindings);

crate::kernel!(OWL_SCAN_BLOCK = "owl_scan_block", SCAN_MODULE, ScanBindings, entry: "scan_block");

crate::kernel!(OWL_SCAN_ADD = "owl_scan_add", SCAN_MODULE, ScanBindings, entry: "add_block");

crate::kernel!(OWL_LEAF = "owl_leaf", LEAF_MODULE, LeafBindings);

crate::kernel!(OWL_COMPACT = "owl_compact", COMPACT_MODULE, CompactBindings);

crate::kernel!(OWL_BRIDGE = "owl_bridge", BRIDGE_MODULE, BridgeBindings);

crate::kernel!(OWL_COPY = "owl_copy", COPY_MODULE, CopyBindings);

crate::kernel!(OWL_FINISH = "owl_finish", FINISH_MODULE, FinishBindings);

crate::kernel!(OWL_BLOCKS = "owl_blocks", FINISH_MODULE, BlocksBindings, entry: "blocks");

/// The OWL prox's kernels, for the kernel table.
pub(crate) static KERNELS: &[&KernelDecl] = &[
    &OWL_PREPARE,
    &OWL_MAKE_Z,
    &OWL_SCAN_BLOCK,
    &OWL_SCAN_ADD,
    &OWL_LEAF,
    &OWL_COMPACT,
    &OWL_BRIDGE,
    &OWL_COPY,
    &OWL_FINISH,
    &OWL_BLOCKS,
];

/// The OWL prox pipelines of one device (the sort's are the radix sort's).
#[derive(Debug)]
pub(crate) struct OwlKernels {
    pub(crate) prepare: dispatch::Kernel,
    pub(crate) make_z: dispatch::Kernel,
    /// Inclusive scan of the block-scaled fixed-point sums.
    pub(crate) scan_z: ScanKernels,
    pub(crate) leaf: dispatch::Kernel,
    pub(crate) compact: dispatch::Kernel,
    pub(crate) bridge: dispatch::Kernel,
    pub(crate) copy: dispatch::Kernel,
    pub(crate) finish: dispatch::Kernel,
    pub(crate) blocks: dispatch::Kernel,
}

impl OwlKernels {
    /// Builds (or takes from the device's cache) every OWL pipeline. Call inside the crate's
    /// error scope.
    pub(crate) fn new(gpu: &Gpu) -> Self {
        Self {
            prepare: gpu.kernel(&OWL_PREPARE, 0),
            make_z: gpu.kernel(&OWL_MAKE_Z, 0),
            scan_z: scan_kernels(gpu),
            leaf: gpu.kernel(&OWL_LEAF, 0),
            compact: gpu.kernel(&OWL_COMPACT, 0),
            bridge: gpu.kernel(&OWL_BRIDGE, 0),
            copy: gpu.kernel(&OWL_COPY, 0),
            finish: gpu.kernel(&OWL_FINISH, 0),
            blocks: gpu.kernel(&OWL_BLOCKS, 0),
        }
    }
}

fn scan_kernels(gpu: &Gpu) -> ScanKernels {
    crate::scan::scan_kernels!(gpu, OWL_SCAN_BLOCK, OWL_SCAN_ADD, ScanBindings)
}
