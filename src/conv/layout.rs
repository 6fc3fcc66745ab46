//! NCHW <-> NHWC conversion on the GPU (`shaders/layout_transpose.wgsl`).

use std::sync::Arc;

use crate::dispatch::legacy::{Binding, Kernel};
use crate::dispatch::{self, check_buffer, check_distinct, Grid};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::shaders;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct TransposeParams {
    batch: u32,
    rows: u32,
    cols: u32,
    tiles_r: u32,
    tiles_c: u32,
    fold_x: u32,
    total_wg: u32,
    _pad: u32,
}

/// Converts activations between NCHW (the layout of [`crate::conv::Conv2d`]) and NHWC, with a
/// tiled, coalesced batched transpose. Build once per device; [`LayoutTranspose::plan`] once
/// per tensor shape.
#[derive(Debug, Clone)]
pub struct LayoutTranspose {
    gpu: Gpu,
    kernel: Arc<Kernel>,
}

/// The uniform and grid of one batched `rows x cols` transpose.
#[derive(Debug)]
struct Transpose {
    uniform: wgpu::Buffer,
    grid: Grid,
}

/// Both conversions of one `[n, c, h, w]` shape: recording costs only the dispatch.
#[derive(Debug)]
pub struct TransposePlan {
    layouts: LayoutTranspose,
    len: u64,
    to_nhwc: Transpose,
    to_nchw: Transpose,
}

impl LayoutTranspose {
    /// Compiles the transpose pipeline.
    ///
    /// # Errors
    /// Errors captured while creating the pipeline.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        gpu.scoped(|| {
            let device = gpu.device();
            let module = dispatch::shader(device, "layout_transpose", shaders::LAYOUT_TRANSPOSE);
            let kernel = Kernel::new(
                device,
                "layout_transpose",
                &module,
                "main",
                &[Binding::Uniform, Binding::Read, Binding::ReadWrite],
                &[],
            );
            Ok(Self {
                gpu: gpu.clone(),
                kernel: Arc::new(kernel),
            })
        })
    }

    /// Prepares both conversions of `[n, c, h, w]` tensors.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`](crate::Error::LimitExceeded) when the tensor does not fit one
    /// binding or the grid one dispatch; errors captured while creating buffers.
    pub fn plan(&self, [n, c, h, w]: [u32; 4]) -> Result<TransposePlan> {
        let device = self.gpu.device();
        let len = [n, c, h, w]
            .iter()
            .fold(1u64, |acc, &d| acc.saturating_mul(u64::from(d)));
        // The shader indexes elements with u32.
        if len > u64::from(u32::MAX) {
            return Err(crate::Error::shape(format!(
                "{n} x {c} x {h} x {w} = {len} elements: at most 2^32 - 1 are supported"
            )));
        }
        dispatch::check_binding_size(&self.gpu, "activations", len * 4)?;
        let hw = h.saturating_mul(w);
        let transpose = |batch: u32, rows: u32, cols: u32| -> Result<Transpose> {
            let (tiles_r, tiles_c) = (rows.div_ceil(32), cols.div_ceil(32));
            let grid = Grid::fold(
                u64::from(batch) * u64::from(tiles_r) * u64::from(tiles_c),
                device.limits().max_compute_workgroups_per_dimension,
            )?;
            let params = TransposeParams {
                batch,
                rows,
                cols,
                tiles_r,
                tiles_c,
                fold_x: grid.x,
                total_wg: grid.total,
                _pad: 0,
            };
            let uniform = dispatch::uniform(&self.gpu, "layout_transpose params", &params);
            Ok(Transpose { uniform, grid })
        };
        self.gpu.scoped(|| {
            Ok(TransposePlan {
                layouts: self.clone(),
                len,
                to_nhwc: transpose(n, c, hw)?,
                to_nchw: transpose(n, hw, c)?,
            })
        })
    }

    /// NCHW -> NHWC from a host slice (blocking, native only).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`](crate::Error::LengthMismatch), and errors from planning,
    /// recording or readback.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn nchw_to_nhwc_blocking(&self, dims: [u32; 4], x: &[f32]) -> Result<Vec<f32>> {
        let plan = self.plan(dims)?;
        let len = plan.len as usize;
        crate::error::check_len("x", len, x)?;
        let gpu = &self.gpu;
        pollster::block_on(async {
            let dst = dispatch::record_and_submit(gpu, |encoder| {
                let src = dispatch::upload(gpu, "nchw", x);
                let dst = dispatch::zeros(gpu, "nhwc", len);
                plan.record_nchw_to_nhwc(encoder, &src, &dst)?;
                Ok(dst)
            })
            .await?;
            dispatch::read_back(gpu, &dst, len).await
        })
    }
}

impl TransposePlan {
    /// Records NCHW `src` -> NHWC `dst`. Never submits.
    ///
    /// # Errors
    /// Buffer size, usage or binding-limit errors; `src` and `dst` must differ. Nothing is
    /// recorded on error.
    pub fn record_nchw_to_nhwc(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        src: &wgpu::Buffer,
        dst: &wgpu::Buffer,
    ) -> Result<()> {
        self.record(encoder, &self.to_nhwc, src, dst)
    }

    /// Records NHWC `src` -> NCHW `dst`. Never submits.
    ///
    /// # Errors
    /// As [`TransposePlan::record_nchw_to_nhwc`].
    pub fn record_nhwc_to_nchw(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        src: &wgpu::Buffer,
        dst: &wgpu::Buffer,
    ) -> Result<()> {
        self.record(encoder, &self.to_nchw, src, dst)
    }

    fn record(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        t: &Transpose,
        src: &wgpu::Buffer,
        dst: &wgpu::Buffer,
    ) -> Result<()> {
        let device = self.layouts.gpu.device();
        let st = wgpu::BufferUsages::STORAGE;
        let gpu = &self.layouts.gpu;
        check_buffer(gpu, "src", src, self.len, st)?;
        check_buffer(gpu, "dst", dst, self.len, st)?;
        check_distinct("dst", dst, &[("src", src)])?;
        if self.len == 0 {
            return Ok(());
        }
        dispatch::record_checked(&self.layouts.gpu, encoder, |rec| {
            self.layouts
                .kernel
                .run(device, rec, &[&t.uniform, src, dst], t.grid);
            Ok(())
        })
    }
}
