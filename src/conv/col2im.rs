//! The columns path of the input gradient: one GEMM into columns, then a col2im gather
//! (`shaders/conv_col2im.wgsl`), instead of one implicit GEMM per stride phase.
//!
//! With the weight viewed as `[C_out][C_in * k_h * k_w]`, the columns
//! `cols[b][(ci * k_h + kh) * k_w + kw][oh][ow] = sum_co w[co][ci][kh][kw] dy[b][co][oh][ow]`
//! are the input gradient of the 1 x 1 conv from `C_in * k_h * k_w` channels to `C_out` on the
//! `out_h x out_w` output: a plain GEMM (`m` = column row, `n` = position, K = `C_out`) that
//! the pointwise tiles run with contiguous, coalesced loads and no tap decoding. Each input
//! gradient element then adds the columns of the taps that reach it, in a fixed order.
//!
//! It wins where the implicit GEMM's `m` (input channels) is small and K (`C_out` x taps)
//! long: few input channels (an RGB or greyscale first layer) and strided convs, whose stride
//! phases each run a short GEMM. On a real GPU the same holds: the implicit GEMM of `C_in = 1`
//! fills one row of a 4-row tile and decodes a tap per K step, while the columns GEMM has
//! `C_in * k_h * k_w` rows of dense work and the gather is one coalesced pass. The price is
//! the columns buffer (`batch x C_in x k_h x k_w x out_h x out_w` floats), which the plan
//! allocates once and which must fit one binding.
//!
//! Only for ungrouped shapes that are neither pointwise (already a plain GEMM) nor fully
//! connected (their own plain GEMM).

use super::kernels::{Col2imBindings, ConvParams, CONV_COL2IM};
use super::pointwise;
use super::{BackwardDataBuffers, Conv2d, Conv2dChoice, Conv2dPlan, Conv2dShape};
use crate::buffer::BufferRange;
use crate::dispatch::{self, whole, Grid, Recording, WORKGROUP_SIZE};
use crate::error::{Error, Result};

/// Most kernel taps the gather adds per element: bounds its loop far below the 65,535
/// iterations software drivers allow per invocation.
pub(super) const MAX_COL2IM_TAPS: u32 = 4096;

/// The columns path of a plan: the 1 x 1 conv whose input gradient writes the columns, the
/// columns buffer, and the gather's uniform and grid.
#[derive(Debug)]
pub(super) struct Col2im {
    pub(super) columns: Box<Conv2dPlan>,
    cols: wgpu::Buffer,
    uniform: wgpu::Buffer,
    grid: Grid,
}

/// The 1 x 1 conv whose input gradient is the columns of `s` (see the module docs).
pub(super) fn columns_shape(s: &Conv2dShape) -> Conv2dShape {
    Conv2dShape::new(
        s.batch,
        s.in_channels * s.kernel[0] * s.kernel[1],
        s.out_channels,
        s.out_size(),
        [1, 1],
    )
}

/// Why `s` cannot run the columns path, or `None` when it can (the columns' binding size is
/// checked when planning).
pub(super) fn ineligible(s: &Conv2dShape) -> Option<&'static str> {
    let fully_connected = s.kernel == s.in_size && s.padding == [0, 0] && s.dilation == [1, 1];
    if s.groups != 1 {
        Some("grouped shapes")
    } else if pointwise::eligible(s) {
        Some("pointwise shapes (their input gradient is a plain GEMM already)")
    } else if fully_connected {
        Some("fully connected shapes (their input gradient is a plain GEMM already)")
    } else if s.kernel[0] * s.kernel[1] > MAX_COL2IM_TAPS {
        Some("kernels of more than 4096 taps")
    } else {
        None
    }
}

impl Conv2d {
    /// The columns path of `s` (validated; `base`: its values shared by every launch), the
    /// columns GEMM planned with `columns` (the input-gradient choice of the 1 x 1 conv of
    /// [`columns_shape`]).
    ///
    /// # Errors
    /// [`Error::Shape`] when `s` cannot run it (see [`ineligible`]); [`Error::LimitExceeded`]
    /// when the columns do not fit one binding; the columns plan's errors.
    pub(super) fn col2im(
        &self,
        s: &Conv2dShape,
        columns: Conv2dChoice,
        base: ConvParams,
    ) -> Result<Col2im> {
        if let Some(why) = ineligible(s) {
            return Err(Error::shape(format!(
                "the col2im input gradient does not run {why}: {}",
                s.describe()
            )));
        }
        let inner = columns_shape(s);
        dispatch::check_binding_size(&self.gpu, "col2im columns", inner.input_len() as u64 * 4)?;
        let columns = Box::new(self.plan_choice(&inner, columns)?);
        let len = s.input_len() as u64;
        let grid = Grid::for_items(&self.gpu, len, u64::from(WORKGROUP_SIZE))?;
        // The shape's values, with the gather's grid.
        let params = ConvParams {
            fold_x: grid.fold_x(),
            total_wg: grid.total,
            ..base
        };
        let gpu = &self.gpu;
        gpu.scoped(|| {
            Ok(Col2im {
                columns,
                cols: dispatch::scratch(
                    gpu,
                    "col2im columns",
                    (inner.input_len().max(1) * 4) as u64,
                    wgpu::BufferUsages::empty(),
                ),
                uniform: dispatch::uniform(gpu, "col2im params", &params),
                grid,
            })
        })
    }
}

impl Col2im {
    /// Records the columns GEMM, then the gather into `b.grad_input` (the caller has checked
    /// the buffers against the outer shape).
    pub(super) fn record(
        &self,
        rec: &mut Recording,
        b: BackwardDataBuffers<BufferRange<'_>>,
    ) -> Result<()> {
        let cols = BufferRange::whole(&self.cols);
        self.columns.build_backward_data(
            rec,
            BackwardDataBuffers {
                grad_output: b.grad_output,
                weight: b.weight,
                grad_input: cols,
            },
        )?;
        let gpu = &self.columns.conv.gpu;
        let bindings = Col2imBindings {
            p: whole(&self.uniform),
            cols: whole(cols),
            grad_in: whole(b.grad_input),
        };
        gpu.kernel(&CONV_COL2IM, 0)
            .run(gpu.device(), rec, &bindings, self.grid);
        Ok(())
    }
}
