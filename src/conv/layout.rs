//! NCHW <-> NHWC conversion on the GPU (`shaders/layout_transpose.wgsl`).

use std::collections::hash_map::{Entry, HashMap};
use std::sync::Mutex;

use crate::dispatch::{self, check_buffer, check_distinct, Binding, Grid, Kernel};
use crate::error::{check_len, Result};
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
/// tiled, coalesced batched transpose. Build once per device.
#[derive(Debug)]
pub struct LayoutTranspose {
    gpu: Gpu,
    kernel: Kernel,
    /// Uniforms per `(batch, rows, cols)`, made on first use: a repeated call only records.
    uniforms: Mutex<HashMap<[u32; 3], (wgpu::Buffer, Grid)>>,
}

impl LayoutTranspose {
    /// Compiles the transpose pipeline.
    ///
    /// # Errors
    /// Errors captured while creating the pipeline.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        gpu.scoped(|| Ok(Self::new_unchecked(gpu)))
    }

    fn new_unchecked(gpu: &Gpu) -> Self {
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
        Self {
            gpu: gpu.clone(),
            kernel,
            uniforms: Mutex::new(HashMap::new()),
        }
    }

    /// Records NCHW `src` -> NHWC `dst` for `[n, c, h, w]`.
    ///
    /// # Errors
    /// Buffer size, usage or binding-limit errors; `src` and `dst` must differ.
    pub fn record_nchw_to_nhwc(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        [n, c, h, w]: [u32; 4],
        src: &wgpu::Buffer,
        dst: &wgpu::Buffer,
    ) -> Result<()> {
        self.record(encoder, n, c, h.saturating_mul(w), src, dst)
    }

    /// Records NHWC `src` -> NCHW `dst` for `[n, c, h, w]`.
    ///
    /// # Errors
    /// As [`LayoutTranspose::record_nchw_to_nhwc`].
    pub fn record_nhwc_to_nchw(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        [n, c, h, w]: [u32; 4],
        src: &wgpu::Buffer,
        dst: &wgpu::Buffer,
    ) -> Result<()> {
        self.record(encoder, n, h.saturating_mul(w), c, src, dst)
    }

    fn record(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        batch: u32,
        rows: u32,
        cols: u32,
        src: &wgpu::Buffer,
        dst: &wgpu::Buffer,
    ) -> Result<()> {
        let device = self.gpu.device();
        let len = u64::from(batch) * u64::from(rows) * u64::from(cols);
        let st = wgpu::BufferUsages::STORAGE;
        check_buffer(device, "src", src, len, st)?;
        check_buffer(device, "dst", dst, len, st)?;
        check_distinct("dst", dst, &[src])?;
        if len == 0 {
            return Ok(());
        }
        // A poisoned cache is still a valid cache (entries are inserted whole).
        let mut cache = self.uniforms.lock().unwrap_or_else(|e| e.into_inner());
        let (uniform, grid) = match cache.entry([batch, rows, cols]) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
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
                e.insert((
                    dispatch::uniform(&self.gpu, "layout_transpose params", &params),
                    grid,
                ))
            }
        };
        self.kernel
            .run(device, encoder, &[uniform, src, dst], *grid);
        Ok(())
    }

    /// NCHW -> NHWC from a host slice (blocking, native only).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`], and errors from recording or readback.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn nchw_to_nhwc_blocking(&self, dims: [u32; 4], x: &[f32]) -> Result<Vec<f32>> {
        let len = dims.iter().map(|&d| d as usize).product::<usize>();
        check_len("x", len, x)?;
        let gpu = &self.gpu;
        pollster::block_on(async {
            let dst = dispatch::record_and_submit(gpu, |encoder| {
                let src = dispatch::upload(gpu, "nchw", x);
                let dst = dispatch::zeros(gpu, "nhwc", len);
                self.record_nchw_to_nhwc(encoder, dims, &src, &dst)?;
                Ok(dst)
            })
            .await?;
            dispatch::read_back(gpu, &dst, len).await
        })
    }
}
