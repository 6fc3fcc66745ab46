//! The GrOWL tensor as the kernels see it: the `[outer][groups][inner]` view of a
//! [`GroupLayout`], cut into windows that each fit one storage binding and whose groups each
//! reduce under software drivers' loop limiter, and each window's uniform and grids.

use crate::buffer::BufferRange;
use crate::dispatch::{self, range, whole, Grid, WORKGROUP_SIZE};
use crate::error::{Error, Result};
use crate::gpu::Gpu;

use super::growl_kernels::{
    GrowlParams, NormsBindings, RescaleBindings, RESCALE_PER_THREAD, RESCALE_QUADS_PER_THREAD,
};
use super::{GroupLayout, GrowlOptions};

/// `norms_role` bit: combine with the partial norms earlier windows left (`NORMS_ACCUMULATE`
/// in WGSL).
pub(crate) const NORMS_ACCUMULATE: u32 = 1;
/// `norms_role` bit: finish the norms (threshold, new norms) (`NORMS_FINISH` in WGSL).
pub(crate) const NORMS_FINISH: u32 = 2;

/// Longest group one norms workgroup reduces (`WORKGROUP_SIZE` threads x 60,000 steps: under
/// the loop limiter).
pub(crate) const MAX_GROUP_LEN: u64 = WORKGROUP_SIZE as u64 * 60_000;

/// Where one window sits in the `[outer][groups][inner]` view: either whole groups of a row
/// layout (`outers == 1`) or whole outer slabs of every group.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WindowSpan {
    first_outer: u32,
    outers: u32,
    first_group: u32,
    groups: u32,
    /// `GrowlParams::norms_role`.
    norms_role: u32,
}

impl WindowSpan {
    /// The whole tensor as one window.
    pub(crate) fn whole(outer: u32, groups: u32) -> Self {
        Self {
            first_outer: 0,
            outers: outer,
            first_group: 0,
            groups,
            norms_role: NORMS_FINISH,
        }
    }
}

/// Cuts the `[outer][groups][inner]` view into windows that each fit one binding and whose
/// groups each reduce under the loop limiter (`MAX_GROUP_LEN`).
pub(crate) fn window_spans(
    gpu: &Gpu,
    outer: u32,
    groups: u32,
    inner: u32,
) -> Result<Vec<WindowSpan>> {
    let device = gpu.device();
    let max_binding = device.limits().max_storage_buffer_binding_size;
    let (outer64, groups64, inner64) = (u64::from(outer), u64::from(groups), u64::from(inner));
    let bytes = outer64 * groups64 * inner64 * 4;
    let too_long = |needed: u64| Error::LimitExceeded {
        limit: "GrOWL group length",
        needed,
        allowed: MAX_GROUP_LEN,
        hint: "; split the tensor into smaller groups".into(),
    };
    if bytes <= max_binding && outer64 * inner64 <= MAX_GROUP_LEN {
        return Ok(vec![WindowSpan::whole(outer, groups)]);
    }
    // Windows cut across groups (rows) or outer slabs, never inside a run of `inner`.
    if inner64 > MAX_GROUP_LEN {
        return Err(too_long(inner64));
    }
    if outer == 1 {
        // Rows: windows of whole groups.
        let per = dispatch::window_units(gpu, "one matrix row", inner64 * 4, max_binding)?;
        let per = u32::try_from(per).unwrap_or(u32::MAX);
        return Ok((0..groups.div_ceil(per))
            .map(|w| WindowSpan {
                first_outer: 0,
                outers: 1,
                first_group: w * per,
                groups: per.min(groups - w * per),
                norms_role: NORMS_FINISH,
            })
            .collect());
    }
    // Interleaved groups: windows of whole outer slabs, as many as fit a binding and keep
    // each window's share of a group under the limiter.
    let slab_bytes = groups64 * inner64 * 4;
    let longest = (MAX_GROUP_LEN / inner64.max(1)) * slab_bytes;
    let per = dispatch::window_units(
        gpu,
        "one outer slab [groups][inner] of the tensor",
        slab_bytes,
        max_binding.min(longest),
    )?;
    let per = u32::try_from(per).unwrap_or(u32::MAX);
    let count = outer.div_ceil(per);
    Ok((0..count)
        .map(|w| WindowSpan {
            first_outer: w * per,
            outers: per.min(outer - w * per),
            first_group: 0,
            groups,
            norms_role: if w > 0 { NORMS_ACCUMULATE } else { 0 }
                | if w + 1 == count { NORMS_FINISH } else { 0 },
        })
        .collect())
}

/// `(outer, groups, inner)` of the `[outer][groups][inner]` view.
///
/// # Errors
/// [`Error::Shape`] when the tensor has 2^32 elements or more (u32 indexing).
pub(crate) fn view(layout: GroupLayout) -> Result<(u32, u32, u32)> {
    let (o, g, i) = match layout {
        GroupLayout::Rows { rows, cols } => (1, rows, cols),
        GroupLayout::Columns { rows, cols } => (rows, cols, 1),
        GroupLayout::ConvInChannels { c_out, c_in, khw } => (c_out, c_in, khw),
    };
    // Checked: three `usize` extents can overflow even 128 bits.
    let fits = (o as u128)
        .checked_mul(g as u128)
        .and_then(|og| og.checked_mul(i as u128))
        .is_some_and(|n| n < 1 << 32);
    match (u32::try_from(o), u32::try_from(g), u32::try_from(i)) {
        (Ok(o), Ok(g), Ok(i)) if fits => Ok((o, g, i)),
        _ => Err(Error::shape(format!(
            "{layout:?} has 2^32 elements or more: GrOWL tensors use u32 indices"
        ))),
    }
}

/// The uniform of a window `span` of a tensor whose groups have `inner` elements per slab,
/// with the element-wise and quad-wise rescale grids. One uniform serves grids of several
/// sizes: a grid that folds is `max_dim` wide, and one that does not has a single row, where
/// `fold_x` does not matter.
pub(crate) fn window_params(
    gpu: &Gpu,
    span: &WindowSpan,
    inner: u32,
    options: GrowlOptions,
    elem_grid: &Grid,
    quad_grid: &Grid,
) -> GrowlParams {
    let max_dim = gpu.device().limits().max_compute_workgroups_per_dimension;
    let group_len = u64::from(span.outers) * u64::from(inner);
    let inner4 = (inner / 4).max(1);
    GrowlParams {
        outer: span.outers,
        groups: span.groups,
        inner,
        len: (group_len * u64::from(span.groups)) as u32,
        fold_x: max_dim,
        total_wg: elem_grid.total,
        group_len: group_len as u32,
        step_o: WORKGROUP_SIZE / inner.max(1),
        step_i: WORKGROUP_SIZE % inner.max(1),
        step_g: (WORKGROUP_SIZE / inner.max(1)) % span.groups.max(1),
        group_base: span.first_group,
        norms_role: span.norms_role,
        zero_below: options.zero_below,
        quad_step_g: (WORKGROUP_SIZE / inner4) % span.groups.max(1),
        quad_step_i: WORKGROUP_SIZE % inner4,
        quad_total_wg: quad_grid.total,
    }
}

/// A range of the tensor that fits one binding (see [`window_spans`]): the whole tensor, or
/// consecutive rows, or consecutive outer slabs.
#[derive(Debug)]
pub(crate) struct GrowlWindow {
    uniform: wgpu::Buffer,
    offset: u64,
    bytes: u64,
    /// One workgroup per group of the window (the norms).
    pub(crate) group_grid: Grid,
    /// The element-wise rescale.
    pub(crate) elem_grid: Grid,
    /// The quad-wise rescale.
    pub(crate) quad_grid: Grid,
}

impl GrowlWindow {
    /// The window `span` of a tensor with `groups` groups of `inner` elements per slab.
    pub(crate) fn new(
        gpu: &Gpu,
        span: &WindowSpan,
        groups: u32,
        inner: u32,
        options: GrowlOptions,
    ) -> Result<Self> {
        let wg = u64::from(WORKGROUP_SIZE);
        let elems = u64::from(span.outers) * u64::from(span.groups) * u64::from(inner);
        let elem_grid = Grid::for_items(gpu, elems, wg * u64::from(RESCALE_PER_THREAD))?;
        let quad_grid = Grid::for_items(gpu, elems / 4, wg * u64::from(RESCALE_QUADS_PER_THREAD))?;
        let first_elem = (u64::from(span.first_outer) * u64::from(groups)
            + u64::from(span.first_group))
            * u64::from(inner);
        let params = window_params(gpu, span, inner, options, &elem_grid, &quad_grid);
        Ok(Self {
            uniform: dispatch::uniform(gpu, "growl params", &params),
            offset: first_elem * 4,
            bytes: elems * 4,
            group_grid: Grid::for_workgroups(gpu, u64::from(span.groups))?,
            elem_grid,
            quad_grid,
        })
    }

    /// The norms' buffers: the window's range of `matrix`, the plan's `norms` and `new_norms`.
    pub(crate) fn norms<'a>(
        &'a self,
        matrix: BufferRange<'a>,
        norms: &'a wgpu::Buffer,
        new_norms: &'a wgpu::Buffer,
    ) -> NormsBindings<'a> {
        NormsBindings {
            p: whole(&self.uniform),
            matrix: range(matrix, self.offset, self.bytes),
            norms: whole(norms),
            v: whole(new_norms),
        }
    }

    /// The rescale's buffers: the window's range of `matrix` and the per-group `factor`s.
    pub(crate) fn rescale<'a>(
        &'a self,
        matrix: BufferRange<'a>,
        factor: &'a wgpu::Buffer,
    ) -> RescaleBindings<'a> {
        RescaleBindings {
            p: whole(&self.uniform),
            matrix: range(matrix, self.offset, self.bytes),
            factor: whole(factor),
        }
    }
}
