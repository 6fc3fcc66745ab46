//! NCHW <-> NHWC conversion on the GPU (`shaders/layout_transpose.wgsl`).

use crate::buffer::BufferRange;
use crate::dispatch::{self, check_op, whole, Grid};
use crate::dispatch::{Recording, WORKGROUP_SIZE};
use crate::error::Result;
use crate::gpu::Gpu;

/// Rows and columns of the square tile one workgroup moves (`TRANSPOSE_TILE` in WGSL).
const TRANSPOSE_TILE: u32 = 32;
// The workgroup moves the tile in whole rows of threads.
const _: () = assert!(WORKGROUP_SIZE.is_multiple_of(TRANSPOSE_TILE));

crate::uniform_struct! {
    /// `layout_transpose`: `batch` sources of `rows x cols`, cut into `tiles_r x tiles_c`
    /// tiles.
    struct TransposeParams {
        batch: u32,
        rows: u32,
        cols: u32,
        tiles_r: u32,
        tiles_c: u32,
        fold_x: u32,
        total_wg: u32,
        pad: u32,
    }
}

crate::bindings! {
    struct TransposeBindings {
        p @ 0: uniform(TransposeParams),
        src @ 1: read,
        dst @ 2: read_write,
    }
}

crate::module!(LAYOUT_TRANSPOSE_MODULE = "layout_transpose", [TransposeParams], constants: &[("TRANSPOSE_TILE", TRANSPOSE_TILE)]);

crate::kernel! {
    /// Batched tiled transpose (NCHW <-> NHWC).
    pub(super) LAYOUT_TRANSPOSE = "layout_transpose", LAYOUT_TRANSPOSE_MODULE, TransposeBindings
}

/// Converts activations between NCHW (the layout of [`crate::conv::Conv2d`]) and NHWC, with a
/// tiled, coalesced batched transpose. Build once per device; [`LayoutTranspose::plan`] once
/// per tensor shape.
#[derive(Debug, Clone)]
pub struct LayoutTranspose {
    gpu: Gpu,
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
            gpu.kernel(&LAYOUT_TRANSPOSE, 0);
            Ok(Self { gpu: gpu.clone() })
        })
    }

    /// Prepares both conversions of `[n, c, h, w]` tensors.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`](crate::Error::LimitExceeded) when the tensor does not fit one
    /// binding or the grid one dispatch; errors captured while creating buffers.
    pub fn plan(&self, [n, c, h, w]: [u32; 4]) -> Result<TransposePlan> {
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
            let (tiles_r, tiles_c) = (rows.div_ceil(TRANSPOSE_TILE), cols.div_ceil(TRANSPOSE_TILE));
            let grid = Grid::for_workgroups(
                &self.gpu,
                u64::from(batch) * u64::from(tiles_r) * u64::from(tiles_c),
            )?;
            let params = TransposeParams {
                batch,
                rows,
                cols,
                tiles_r,
                tiles_c,
                fold_x: grid.fold_x(),
                total_wg: grid.total,
                pad: 0,
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

    /// NCHW -> NHWC from a host slice: uploads, runs, reads back.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`](crate::Error::LengthMismatch), and errors from planning,
    /// recording or readback.
    pub async fn nchw_to_nhwc(&self, dims: [u32; 4], x: &[f32]) -> Result<Vec<f32>> {
        let plan = self.plan(dims)?;
        let len = plan.len as usize;
        crate::error::check_len("x", len, x)?;
        let gpu = &self.gpu;
        let dst = dispatch::record_and_submit(gpu, |encoder| {
            let src = dispatch::upload(gpu, "nchw", x);
            let dst = dispatch::zeros(gpu, "nhwc", len);
            plan.record_nchw_to_nhwc(encoder, &src, &dst)?;
            Ok(dst)
        })
        .await?;
        dispatch::read_back(gpu, &dst, len).await
    }

    crate::blocking_calls! {
        /// Blocking [`LayoutTranspose::nchw_to_nhwc`] (native only).
        pub fn nchw_to_nhwc_blocking(&self, dims: [u32; 4], x: &[f32]) -> Result<Vec<f32>> => nchw_to_nhwc;
    }
}

crate::on_gpu!(TransposePlan => layouts.gpu);

impl TransposePlan {
    crate::record_calls! {
        /// Records NCHW `src` -> NHWC `dst`. Never submits.
        ///
        /// # Errors
        /// Buffer size, usage, range or binding-limit errors; `src` and `dst` must not
        /// overlap. Nothing is recorded on error.
        pub fn record_nchw_to_nhwc(&self, src, dst)
            => |rec| self.build(rec, &self.to_nhwc, src, dst);

        /// Records NHWC `src` -> NCHW `dst`. Never submits.
        ///
        /// # Errors
        /// As [`TransposePlan::record_nchw_to_nhwc`].
        pub fn record_nhwc_to_nchw(&self, src, dst)
            => |rec| self.build(rec, &self.to_nchw, src, dst);
    }

    fn build(
        &self,
        rec: &mut Recording,
        t: &Transpose,
        src: BufferRange<'_>,
        dst: BufferRange<'_>,
    ) -> Result<()> {
        let gpu = &self.layouts.gpu;
        check_op(gpu, &[("src", src, self.len), ("dst", dst, self.len)], 1)?;
        if self.len == 0 {
            return Ok(());
        }
        let bindings = TransposeBindings {
            p: whole(&t.uniform),
            src: whole(src),
            dst: whole(dst),
        };
        gpu.kernel(&LAYOUT_TRANSPOSE, 0)
            .run(gpu.device(), rec, &bindings, t.grid);
        Ok(())
    }
}
