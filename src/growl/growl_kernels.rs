//! The GrOWL prox's kernels, declared for the kernel table (`shaders/growl_*.wgsl`, each
//! after `growl_common.wgsl`): `growl_norms` / `growl_norms_quads` (group norms, one
//! workgroup per group), then the OWL prox of the norms, then `growl_factors` (new norm /
//! norm per group) and `growl_rescale` / `growl_rescale_quads` (every element times its
//! group's factor).

use crate::dispatch::{Kernel, KernelDecl};
use crate::gpu::Gpu;

use super::windows::{NORMS_ACCUMULATE, NORMS_FINISH};

/// Elements each `growl_rescale` thread scales (`PER_THREAD` in `growl_rescale.wgsl`).
pub(crate) const RESCALE_PER_THREAD: u32 = 8;
/// Quads each `growl_rescale_quads` thread scales (`PER_THREAD` there).
pub(crate) const RESCALE_QUADS_PER_THREAD: u32 = 4;

crate::uniform_struct! {
    /// The uniform block `p` of every GrOWL stage (`shaders/growl_common.wgsl`): one window of
    /// the tensor viewed as `[outer][groups][inner]`. Both the norms and the rescale walk
    /// their elements `WORKGROUP_SIZE` apart; the `step_*` fields split that step into view
    /// coordinates once, so indices advance with additions and compares only.
    pub(crate) struct GrowlParams {
        /// Outer slabs in the window.
        outer: u32,
        /// Groups in the window.
        groups: u32,
        /// Elements of a group per outer slab.
        inner: u32,
        /// Elements in the window.
        len: u32,
        /// Width of the folded grids (`linear_workgroup`).
        fold_x: u32,
        /// Workgroups of the element-wise rescale grid.
        total_wg: u32,
        /// Elements of one group in the window: `outer * inner`.
        group_len: u32,
        /// `WORKGROUP_SIZE / inner`.
        step_o: u32,
        /// `WORKGROUP_SIZE % inner`.
        step_i: u32,
        /// `(WORKGROUP_SIZE / inner) % groups`.
        step_g: u32,
        /// The window's first group (row tensors larger than a binding).
        group_base: u32,
        /// `growl_norms` over windows of outer slabs (interleaved tensors larger than a
        /// binding): bit 0 (`NORMS_ACCUMULATE`) combines the partial norm earlier windows
        /// left in `norms` (a scaled hypot); bit 1 (`NORMS_FINISH`) finishes (threshold, new
        /// norms). A window of whole groups has only bit 1.
        norms_role: u32,
        /// `growl_norms`: norms below this are zero (the plan's `GrowlOptions::zero_below`).
        zero_below: f32,
        /// `growl_rescale_quads`: `WORKGROUP_SIZE` quads step the group by this...
        quad_step_g: u32,
        /// ... and the quad within the slab by this.
        quad_step_i: u32,
        /// Workgroups of the quad rescale grid.
        quad_total_wg: u32,
    }
}

/// Declares one GrOWL module: `GrowlParams`, the host constants `constants`, the common
/// `growl_common.wgsl`, then `parts`.
macro_rules! growl_module {
    ($static:ident, $name:literal, $constants:expr, [$($part:literal),*]) => {
        crate::module!($static = $name, [GrowlParams], constants: $constants,
            parts: ["growl_common", $($part),*]);
    };
}

/// The norms' constants (both loaders).
const NORMS_CONSTANTS: &[(&str, u32)] = &[
    ("NORMS_ACCUMULATE", NORMS_ACCUMULATE),
    ("NORMS_FINISH", NORMS_FINISH),
];

growl_module!(
    NORMS_MODULE,
    "growl_norms",
    NORMS_CONSTANTS,
    ["growl_norms", "growl_norms_elements"]
);
growl_module!(
    NORMS_QUADS_MODULE,
    "growl_norms_quads",
    NORMS_CONSTANTS,
    ["growl_norms", "growl_norms_quads"]
);
growl_module!(
    RESCALE_MODULE,
    "growl_rescale",
    &[("PER_THREAD", RESCALE_PER_THREAD)],
    ["view_cursor", "growl_rescale"]
);
growl_module!(
    RESCALE_QUADS_MODULE,
    "growl_rescale_quads",
    &[("PER_THREAD", RESCALE_QUADS_PER_THREAD)],
    ["view_cursor", "growl_rescale_quads"]
);

crate::bindings! {
    /// `growl_norms` and `growl_norms_quads`: the norms of the window's groups of `matrix`
    /// into `norms` and, when the window finishes them, into `v` (the OWL prox's input).
    pub(crate) struct NormsBindings {
        p @ 0: uniform(GrowlParams),
        matrix @ 1: read,
        norms @ 2: read_write,
        v @ 3: read_write,
    }
}

crate::bindings! {
    /// `growl_factors`: `factor` (the norms on entry) becomes new norm / norm.
    pub(crate) struct FactorsBindings {
        p @ 0: uniform(GrowlParams),
        factor @ 2: read_write,
        new_norms @ 3: read,
    }
}

crate::bindings! {
    /// `growl_rescale` and `growl_rescale_quads`: the window's elements of `matrix` times
    /// their group's `factor`.
    pub(crate) struct RescaleBindings {
        p @ 0: uniform(GrowlParams),
        matrix @ 1: read_write,
        factor @ 2: read_write,
    }
}

crate::kernel!(GROWL_NORMS = "growl_norms", NORMS_MODULE, NormsBindings);

crate::kernel! {
    /// Norms of rows of whole quads.
    GROWL_NORMS_QUADS = "growl_norms_quads", NORMS_QUADS_MODULE, NormsBindings
}

crate::kernel!(GROWL_FACTORS = "growl_factors", RESCALE_MODULE, FactorsBindings, entry: "factors");

crate::kernel!(
    GROWL_RESCALE = "growl_rescale",
    RESCALE_MODULE,
    RescaleBindings
);

crate::kernel! {
    /// Rescale of tensors whose inner extent is whole quads.
    GROWL_RESCALE_QUADS = "growl_rescale_quads", RESCALE_QUADS_MODULE, RescaleBindings
}

/// The GrOWL prox's own kernels (the OWL prox's are in `owl_kernels.rs`), for the table.
pub(crate) static KERNELS: &[&KernelDecl] = &[
    &GROWL_NORMS,
    &GROWL_NORMS_QUADS,
    &GROWL_FACTORS,
    &GROWL_RESCALE,
    &GROWL_RESCALE_QUADS,
];

/// The GrOWL pipelines of one device (besides the OWL prox's).
#[derive(Debug)]
pub(crate) struct GrowlKernels {
    pub(crate) norms: Kernel,
    /// Norms of rows of whole quads.
    pub(crate) norms_quads: Kernel,
    pub(crate) factors: Kernel,
    pub(crate) rescale: Kernel,
    /// Rescale of tensors whose inner extent is whole quads.
    pub(crate) rescale_quads: Kernel,
}

impl GrowlKernels {
    /// Builds (or takes from the device's cache) every GrOWL pipeline. Call inside the
    /// crate's error scope.
    pub(crate) fn new(gpu: &Gpu) -> Self {
        Self {
            norms: gpu.kernel(&GROWL_NORMS, 0),
            norms_quads: gpu.kernel(&GROWL_NORMS_QUADS, 0),
            factors: gpu.kernel(&GROWL_FACTORS, 0),
            rescale: gpu.kernel(&GROWL_RESCALE, 0),
            rescale_quads: gpu.kernel(&GROWL_RESCALE_QUADS, 0),
        }
    }
}
