//! The GrOWL prox on the GPU ([`GrowlProx`], [`GrowlPlan`]; kernels in `growl_kernels.rs`,
//! WGSL in `shaders/growl_*.wgsl`, windows in `windows.rs`, CPU twin
//! [`super::cpu::growl_prox`]): group norms, the OWL prox of the norms ([`OwlPlan`]), each
//! group rescaled by new norm / norm.

use std::sync::Arc;

use super::growl_kernels::{FactorsBindings, GrowlKernels};
use super::owl_prox::{OwlPlan, OwlProx};
use super::prox_plan::ProxPlan;
use super::windows::{view, window_params, window_spans, GrowlWindow, WindowSpan};
use super::{GroupLayout, GrowlOptions, GrowlOutput};
use crate::buffer::{BufferRange, MaybeRange};
use crate::dispatch::{self, check_distinct, whole, Grid, OnGpu, Recording, WORKGROUP_SIZE};
use crate::error::{check_len, Result};
use crate::gpu::Gpu;

/// The GrOWL prox pipelines of one device: group norms, the OWL prox of the norms, the rescale.
#[derive(Debug, Clone)]
pub struct GrowlProx {
    owl: OwlProx,
    kernels: Arc<GrowlKernels>,
}

/// Scratch for the GrOWL prox of tensors of one [`GroupLayout`].
#[derive(Debug)]
pub struct GrowlPlan {
    growl: GrowlProx,
    layout: GroupLayout,
    options: GrowlOptions,
    owl: OwlPlan,
    /// Whole-tensor sizes, for the per-group factors.
    uniform: wgpu::Buffer,
    factor_grid: Grid,
    /// The rescale moves vec4s (inner extent of whole quads).
    quads: bool,
    /// The norms move vec4s (rows of whole quads).
    norms_quads: bool,
    windows: Vec<GrowlWindow>,
    norms: wgpu::Buffer,
    new_norms: wgpu::Buffer,
}

impl GrowlProx {
    /// The OWL prox pipelines inside.
    pub fn owl(&self) -> &OwlProx {
        &self.owl
    }

    /// Compiles the pipelines (the OWL prox's included).
    ///
    /// # Errors
    /// Errors captured while creating the pipelines.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let owl = OwlProx::new(gpu)?;
        gpu.scoped(|| {
            Ok(Self {
                owl,
                kernels: Arc::new(GrowlKernels::new(gpu)),
            })
        })
    }

    /// Prepares scratch for tensors of `layout`. A tensor larger than one storage binding is
    /// cut into windows (each window's norms and rescale are separate dispatches on a range
    /// of the buffer; the OWL prox sees every norm at once): a row layout into runs of whole
    /// rows; a column or conv-channel layout, whose groups interleave, into runs of whole
    /// outer slabs (`[groups][inner]`: one row of an `[out, in]` matrix, one output channel of
    /// a conv kernel), whose partial norms add up in window order. Groups longer than
    /// 15,360,000 elements are cut the same way.
    ///
    /// The plan uses the default [`GrowlOptions`] (groups whose norm is below `f32::EPSILON`
    /// are zero); [`GrowlProx::plan_with`] chooses them.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`](crate::Error::LimitExceeded) when one row, or one outer slab,
    /// does not fit one binding, or a row is longer than 15,360,000 elements.
    pub fn plan(&self, layout: GroupLayout) -> Result<GrowlPlan> {
        self.plan_with(layout, GrowlOptions::default())
    }

    /// [`GrowlProx::plan`] with `options`: groups whose norm is below
    /// [`GrowlOptions::zero_below`] are zero in every [`GrowlPlan::record`] of this plan.
    ///
    /// # Errors
    /// As [`GrowlProx::plan`], and [`Error::Shape`](crate::Error::Shape) for a threshold that
    /// is negative or not finite.
    pub fn plan_with(&self, layout: GroupLayout, options: GrowlOptions) -> Result<GrowlPlan> {
        options.check()?;
        let gpu = &self.owl.gpu;
        let (outer, groups, inner) = view(layout)?;
        let spans = window_spans(gpu, outer, groups, inner)?;
        let owl = self.owl.plan(groups as usize)?;
        // Tensors whose inner extent is whole quads move as vec4s (the norms: rows only).
        let quads = inner % 4 == 0 && inner > 0;
        gpu.scoped(|| {
            let buf = |label: &str| {
                dispatch::scratch(
                    gpu,
                    label,
                    u64::from(groups) * 4,
                    wgpu::BufferUsages::COPY_SRC,
                )
            };
            let windows = spans
                .iter()
                .map(|span| GrowlWindow::new(gpu, span, groups, inner, options))
                .collect::<Result<Vec<_>>>()?;
            let factor_grid = Grid::for_items(gpu, u64::from(groups), u64::from(WORKGROUP_SIZE))?;
            let whole_span = WindowSpan::whole(outer, groups);
            let params =
                window_params(gpu, &whole_span, inner, options, &factor_grid, &factor_grid);
            Ok(GrowlPlan {
                growl: self.clone(),
                layout,
                options,
                owl,
                uniform: dispatch::uniform(gpu, "growl params", &params),
                factor_grid,
                quads,
                norms_quads: quads && outer == 1,
                windows,
                norms: buf("growl norms"),
                new_norms: buf("growl new norms"),
            })
        })
    }

    /// The GrOWL prox of host `matrix` (layout `layout`) with OWL weights `w` (one per group),
    /// with the default [`GrowlOptions`]: see [`GrowlProx::prox_with`].
    ///
    /// # Errors
    /// As [`GrowlProx::prox_with`].
    pub async fn prox(
        &self,
        matrix: &[f32],
        layout: GroupLayout,
        w: &[f32],
    ) -> Result<GrowlOutput> {
        self.prox_with(matrix, layout, w, GrowlOptions::default())
            .await
    }

    /// The GrOWL prox of host `matrix` (layout `layout`) with OWL weights `w` (one per group):
    /// the new tensor, the new group norms, the zero-group mask and the PAV block ids.
    ///
    /// Zero groups: a group whose norm is below `options.zero_below` is zero (its norm enters
    /// the OWL prox as 0 and the group comes out all zeros). The default threshold is the
    /// paper's absolute `f32::EPSILON` (about 1.19e-7): right for weights of order one, but it
    /// zeroes every group of a tensor of small scale (norms of 1e-10, say) even where the prox
    /// would keep it; pass `GrowlOptions::zero_below(0.0)` there, or a threshold of the data's
    /// own scale.
    ///
    /// Accuracy: the group norms are f32 sums of squares, each thread's scaled by a power of
    /// two it raises as larger elements come, then added in a fixed order: within a few f32
    /// roundings of the exact norm for norms anywhere in the f32 range (tested from 1e-30 to
    /// 1e30 in one tensor); the OWL prox of the norms is accurate relative to each PAV block
    /// (see [`OwlProx::prox`]), and each element is its group's factor (new norm / norm)
    /// times the element. Results are the same bits run to run. Subnormal elements, norms and
    /// outputs may be flushed to zero by the GPU; the CPU twin keeps them.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`](crate::Error::LengthMismatch), invalid weights or threshold,
    /// non-finite input or a group whose norm is past `f32::MAX` (an OWL input must be a
    /// finite f32: scale the tensor down); plan, recording and readback errors.
    pub async fn prox_with(
        &self,
        matrix: &[f32],
        layout: GroupLayout,
        w: &[f32],
        options: GrowlOptions,
    ) -> Result<GrowlOutput> {
        check_len("weights matrix", layout.checked_len()?, matrix)?;
        check_len("OWL weights", layout.groups(), w)?;
        super::validate(w)?;
        super::check_matrix(matrix)?;
        let groups = layout.groups();
        // The GPU's norm of a group whose true norm is just below f32::MAX may round past it.
        super::group_norms(&super::cpu::group_squares(matrix, layout), options, 1e-6)?;
        if groups == 0 || matrix.is_empty() {
            return Ok(GrowlOutput {
                weights: matrix.to_vec(),
                norms: vec![0.0; groups],
                zero: vec![true; groups],
                blocks: vec![0; groups],
            });
        }
        let plan = self.plan_with(layout, options)?;
        let gpu = &self.owl.gpu;
        let (mb, bb) = dispatch::record_and_submit(gpu, |encoder| {
            let mb = dispatch::upload(gpu, "growl matrix", matrix);
            let wb = dispatch::upload(gpu, "growl owl weights", w);
            let bb = dispatch::zeros(gpu, "growl blocks", groups);
            plan.record(encoder, &mb, &wb, Some(&bb))?;
            Ok((mb, bb))
        })
        .await?;
        let weights = dispatch::read_back(gpu, &mb, matrix.len()).await?;
        let norms = dispatch::read_back(gpu, &plan.new_norms, groups).await?;
        let blocks = dispatch::read_back_u32(gpu, &bb, groups).await?;
        Ok(GrowlOutput {
            weights,
            zero: norms.iter().map(|&r| r == 0.0).collect(),
            norms,
            blocks,
        })
    }

    crate::blocking_calls! {
        /// Blocking [`GrowlProx::prox`] (native only).
        pub fn prox_blocking(
            &self,
            matrix: &[f32],
            layout: GroupLayout,
            w: &[f32],
        ) -> Result<GrowlOutput> => prox;

        /// Blocking [`GrowlProx::prox_with`] (native only).
        pub fn prox_blocking_with(
            &self,
            matrix: &[f32],
            layout: GroupLayout,
            w: &[f32],
            options: GrowlOptions,
        ) -> Result<GrowlOutput> => prox_with;
    }
}

crate::on_gpu!(GrowlPlan => growl.owl.gpu);

impl GrowlPlan {
    /// The options the plan was made with.
    pub fn options(&self) -> GrowlOptions {
        self.options
    }

    /// Binding windows the tensor is cut into (1 when it fits one binding).
    pub fn windows(&self) -> usize {
        self.windows.len()
    }

    /// The new group norms after [`GrowlPlan::record`] (f32 per group; 0 marks a zero group).
    pub fn new_norms(&self) -> &wgpu::Buffer {
        &self.new_norms
    }

    crate::record_calls! {
        /// Records the GrOWL prox of `matrix` (in place) with OWL weights `w` (one per group,
        /// non-negative and non-increasing: validate with [`super::validate`]). `blocks`, when
        /// given, receives each group's PAV block id. Never submits.
        ///
        /// Groups whose norm is below the plan's [`GrowlOptions::zero_below`]
        /// ([`GrowlPlan::options`]; `f32::EPSILON` unless made by [`GrowlProx::plan_with`])
        /// are zeroed. The group norms are power-of-two-scaled f32 sums of squares, good over
        /// the whole f32 range (see [`GrowlProx::prox_with`] for accuracy and subnormals): the
        /// matrix must hold finite values whose group norms stay below `f32::MAX`; the GPU
        /// cannot report a violation. The host-slice [`GrowlProx::prox`] checks both.
        ///
        /// An empty matrix (no elements, whatever the group count) records nothing: `blocks`
        /// and [`GrowlPlan::new_norms`] are left as they are (the host-slice call reports zero
        /// norms and block 0 for every group).
        ///
        /// # Errors
        /// Buffer size, usage, map-state and aliasing errors (of `matrix`, `w` and `blocks`),
        /// [`Error::Validation`](crate::Error::Validation) for a buffer wgpu refuses. Nothing
        /// is recorded on error.
        pub fn record(&self, matrix, w, blocks: impl Into<MaybeRange<'a>>)
            => |rec| self.build(rec, matrix, w, blocks.into());

        /// Out-of-place [`GrowlPlan::record`]: copies `matrix` (needs `COPY_SRC`) into `out`
        /// (needs `STORAGE | COPY_DST`) and computes the prox there.
        ///
        /// # Errors
        /// As [`GrowlPlan::record`], plus missing copy usages. The copy is validated before
        /// anything is recorded: a mapped `matrix`, or one of another device, is an error.
        pub fn record_into(&self, matrix, w, out, blocks: impl Into<MaybeRange<'a>>)
            => |rec| self.build_into(rec, matrix, w, out, blocks.into());
    }
}

impl ProxPlan for GrowlPlan {
    const TARGET: &'static str = "matrix";

    fn elements(&self) -> u64 {
        self.layout.len() as u64
    }

    /// Whole-binding limits only apply to one window.
    fn check_target(
        &self,
        name: &'static str,
        buffer: BufferRange<'_>,
        usage: wgpu::BufferUsages,
    ) -> Result<()> {
        let windowed = self.windows.len() > 1;
        let gpu = self.gpu();
        dispatch::check_buffer_windowed(gpu, name, buffer, self.elements(), usage, windowed)
    }

    fn check_named(
        &self,
        name: &'static str,
        matrix: BufferRange<'_>,
        w: BufferRange<'_>,
        blocks: Option<BufferRange<'_>>,
    ) -> Result<()> {
        self.check_target(name, matrix, wgpu::BufferUsages::STORAGE)?;
        // The plan's own norms (public through `new_norms`) are written too.
        let new_norms = BufferRange::whole(&self.new_norms);
        check_distinct(name, matrix, &[("w", w), ("new_norms", new_norms)])?;
        self.owl.check_named("new_norms", new_norms, w, blocks)?;
        if let Some(b) = blocks {
            check_distinct("blocks", b, &[(name, matrix)])?;
        }
        Ok(())
    }

    fn build_checked(
        &self,
        rec: &mut Recording,
        matrix: BufferRange<'_>,
        w: BufferRange<'_>,
        blocks: Option<BufferRange<'_>>,
    ) -> Result<()> {
        if self.layout.is_empty() {
            return Ok(());
        }
        let device = self.gpu().device();
        let k = &self.growl.kernels;
        let norms = if self.norms_quads {
            &k.norms_quads
        } else {
            &k.norms
        };
        for win in &self.windows {
            let b = win.norms(matrix, &self.norms, &self.new_norms);
            norms.run(device, rec, &b, win.group_grid);
        }
        let new_norms = BufferRange::whole(&self.new_norms);
        self.owl.build_checked(rec, new_norms, w, blocks)?;
        // The norms become the factors, in place.
        let factors = FactorsBindings {
            p: whole(&self.uniform),
            factor: whole(&self.norms),
            new_norms: whole(&self.new_norms),
        };
        k.factors.run(device, rec, &factors, self.factor_grid);
        for win in &self.windows {
            let b = win.rescale(matrix, &self.norms);
            if self.quads {
                k.rescale_quads.run(device, rec, &b, win.quad_grid);
            } else {
                k.rescale.run(device, rec, &b, win.elem_grid);
            }
        }
        Ok(())
    }
}
