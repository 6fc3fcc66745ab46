//! Conv2d with shared weights: forward, input gradient, weight gradient and bias gradient.
//!
//! Layout: NCHW (see [`Conv2dShape`]); [`LayoutTranspose`] converts NHWC data.
//!
//! Design: all three ops are implicit GEMMs (`shaders/conv_gemm_common.wgsl`) over tiles
//! chosen per launch ([`Conv2dPlan::tiles`]): 4 x 4 register blocks per thread, or skinny and
//! narrow tiles (`shaders/conv_gemm_skinny.wgsl`) for GEMMs of few rows or few columns; the
//! im2col matrix is never materialised. Pointwise shapes (1 x 1 kernel, stride 1, no padding,
//! one group: 1 x 1 convs and dense layers) are plain GEMMs and run, where the heuristic or the
//! tuner finds it cheaper, on the plain-GEMM tiles of `shaders/conv_gemm_pointwise.wgsl`
//! (strided operands, no tap table, up to 8 x 8 outputs per thread; [`Tile::POINTWISE`]). The K dimension is split across
//! workgroups when it is long (always for the weight gradient, whose K is batch x positions):
//! each split writes partial sums, and `shaders/split_reduce.wgsl` adds them in a fixed order,
//! so results are bitwise reproducible with no atomics. The bias gradient is a multi-pass
//! fixed-tree reduction (`shaders/channel_sum.wgsl`).
//!
//! Use: build [`Conv2d`] once per device (cheap: it compiles nothing), make a [`Conv2dPlan`]
//! per shape (small uniform and table buffers), then record ops into your own encoder on your
//! own buffers. Pipelines are built on first use, per tile kind and op, and cached per device;
//! [`Conv2dPlan::prepare`] builds a plan's up front so that no frame stalls on a compile.
//! [`Conv2d::forward`] and friends are the host-slice path.
//!
//! Files: this one holds the public types and the host-slice calls; `record.rs` the record
//! calls; `plan.rs` the planning (tiles, K splits, stride phases, reductions); `tiles.rs` the
//! GEMM tiles; `pointwise.rs` the plain GEMMs of pointwise shapes; `taps.rs` the kernel-tap
//! tables; `warm.rs` [`Conv2dPlan::prepare`]; `kernels.rs` the uniform structs, bindings and
//! kernel declarations; `shape.rs` [`Conv2dShape`]; `layout.rs` [`LayoutTranspose`]; `cpu.rs`
//! the CPU twins; `cases.rs` the benchmark shapes. Tests: `tests/conv.rs`, `tests/layout.rs`;
//! bench: `benches/conv.rs`.

#[doc(hidden)]
pub mod cases;
mod col2im;
pub mod cpu;
mod kernels;
mod layout;
mod plan;
mod pointwise;
mod record;
mod shape;
mod taps;
mod tiles;
mod tune;
#[cfg(not(target_arch = "wasm32"))]
mod tune_measure;
mod warm;

pub(crate) use kernels::KERNELS;
pub use layout::{LayoutTranspose, TransposePlan};
pub use shape::Conv2dShape;
pub use tiles::Tile;
pub use tune::{shape_class, Conv2dChoice, GemmChoice, Tuning};
pub use warm::Passes;

use crate::dispatch;
use crate::error::{check_len, Error, Result};
use crate::gpu::Gpu;
use plan::{GemmLaunch, SumPass, ZeroPass};

/// The conv ops of one device: plans shapes; its pipelines are built on first use (or by
/// [`Conv2dPlan::prepare`]) and cached on the device. Build once, reuse for every shape.
#[derive(Debug, Clone)]
pub struct Conv2d {
    gpu: Gpu,
}

/// Everything a shape needs on the GPU besides the caller's tensors: uniforms, the kernel
/// offset tables and split-K scratch. Creating one compiles nothing; recording an op creates
/// bind groups and records passes, and builds the op's pipelines the first time any plan on the
/// device records them ([`Conv2dPlan::prepare`] does that up front).
#[derive(Debug)]
pub struct Conv2dPlan {
    conv: Conv2d,
    shape: Conv2dShape,
    /// The kernels chosen for it ([`Conv2dPlan::choice`]).
    choice: Conv2dChoice,
    out_size: [u32; 2],
    forward: GemmLaunch,
    /// One launch (and its kernel-tap table, none for the fully connected op) per stride
    /// phase that some tap reaches (at most kernel_h x kernel_w of them); one in all for
    /// stride 1.
    backward_data: Vec<(GemmLaunch, Option<wgpu::Buffer>)>,
    /// Zeroes the input positions no tap reaches, after `backward_data`, when there are any.
    zero_unreached: Option<ZeroPass>,
    /// The columns path of the input gradient, when the choice runs it (`backward_data` is
    /// then empty and `zero_unreached` `None`).
    col2im: Option<col2im::Col2im>,
    backward_weight: GemmLaunch,
    bias_passes: Vec<SumPass>,
    table_fwd: wgpu::Buffer,
    scratch: wgpu::Buffer,
    sum_scratch: [wgpu::Buffer; 2],
    /// Bound as the bias of shapes without one: the forward GEMM and the split reduction read
    /// their `bias` binding only when the uniform's `has_bias` is set (a run-time test).
    no_bias: wgpu::Buffer,
}

/// Buffers for [`Conv2dPlan::record_forward`]. All need `STORAGE` usage.
///
/// Each field is a whole buffer (`B = &wgpu::Buffer`, as in `ForwardBuffers { input: &x, .. }`)
/// or, with `B = `[`BufferRange`](crate::buffer::BufferRange), a range of one (several
/// tensors of one pooled buffer, each at an offset aligned to
/// `min_storage_buffer_offset_alignment`; see
/// [`BufferRange`](crate::buffer::BufferRange) for the checks). Mix the two by converting
/// whole buffers with `BufferRange::from(&buffer)`.
#[derive(Clone, Copy, Debug)]
pub struct ForwardBuffers<B> {
    /// `[batch, in_channels, in_h, in_w]`.
    pub input: B,
    /// `[out_channels, in_channels / groups, kernel_h, kernel_w]`.
    pub weight: B,
    /// `[out_channels]`, required exactly when the shape has a bias.
    pub bias: Option<B>,
    /// `[batch, out_channels, out_h, out_w]`, written.
    pub output: B,
}

/// Buffers for [`Conv2dPlan::record_backward_data`]. All need `STORAGE` usage. Whole buffers
/// or ranges, as for [`ForwardBuffers`].
#[derive(Clone, Copy, Debug)]
pub struct BackwardDataBuffers<B> {
    /// `[batch, out_channels, out_h, out_w]`.
    pub grad_output: B,
    /// `[out_channels, in_channels / groups, kernel_h, kernel_w]`.
    pub weight: B,
    /// `[batch, in_channels, in_h, in_w]`, overwritten (not accumulated).
    pub grad_input: B,
}

/// Buffers for [`Conv2dPlan::record_backward_weight`]. All need `STORAGE` usage, and
/// `COPY_DST` for the outputs when the batch is empty (they are then cleared). Whole buffers
/// or ranges, as for [`ForwardBuffers`].
#[derive(Clone, Copy, Debug)]
pub struct BackwardWeightBuffers<B> {
    /// `[batch, out_channels, out_h, out_w]`.
    pub grad_output: B,
    /// `[batch, in_channels, in_h, in_w]`.
    pub input: B,
    /// `[out_channels, in_channels / groups, kernel_h, kernel_w]`, overwritten.
    pub grad_weight: B,
    /// `[out_channels]`, overwritten; required exactly when the shape has a bias.
    pub grad_bias: Option<B>,
}

crate::buffer::buffers_ranges! {
    ForwardBuffers { input, weight, output; bias }
    BackwardDataBuffers { grad_output, weight, grad_input; }
    BackwardWeightBuffers { grad_output, input, grad_weight; grad_bias }
}

/// The tile kinds of a plan's GEMM launches ([`Conv2dPlan::tiles`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GemmTiles {
    /// The forward GEMM.
    pub forward: &'static str,
    /// One per stride phase of the input gradient (empty when it has no work).
    pub input_gradient: Vec<&'static str>,
    /// The weight gradient.
    pub weight_gradient: &'static str,
}

/// Gradients returned by [`Conv2d::backward`].
#[derive(Clone, Debug, PartialEq)]
pub struct Conv2dGrads {
    /// Gradient with respect to the input, NCHW.
    pub input: Vec<f32>,
    /// Gradient with respect to the shared weight.
    pub weight: Vec<f32>,
    /// Gradient with respect to the bias (empty without bias).
    pub bias: Vec<f32>,
}

impl Conv2d {
    /// The conv ops on `gpu`'s device. Compiles nothing: each op's pipelines are built when
    /// first recorded, or by [`Conv2dPlan::prepare`].
    ///
    /// # Errors
    /// [`Error::DeviceLost`] when the device is lost.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        gpu.scoped(|| Ok(Self { gpu: gpu.clone() }))
    }

    /// [`Conv2d::new`], awaiting the error scopes (web-friendly).
    ///
    /// # Errors
    /// As [`Conv2d::new`].
    pub async fn new_async(gpu: &Gpu) -> Result<Self> {
        gpu.scoped_async(|| Ok(Self { gpu: gpu.clone() })).await
    }

    /// The device these pipelines belong to.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Forward pass from host slices: uploads, runs, reads back `[batch, c_out, out_h, out_w]`.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] when a slice does not match `shape`, plus everything
    /// [`Conv2d::plan`] and the recording return.
    pub async fn forward(
        &self,
        shape: &Conv2dShape,
        input: &[f32],
        weight: &[f32],
        bias: Option<&[f32]>,
    ) -> Result<Vec<f32>> {
        // The shape first: an invalid one's saturated lengths are no length to report.
        shape.validate()?;
        check_len("input", shape.input_len(), input)?;
        check_len("weight", shape.weight_len(), weight)?;
        check_bias(shape, bias)?;
        let plan = self.plan(shape)?;
        let gpu = &self.gpu;
        let output = dispatch::record_and_submit(gpu, |encoder| {
            let input = dispatch::upload(gpu, "input", input);
            let weight = dispatch::upload(gpu, "weight", weight);
            let bias = bias.map(|b| dispatch::upload(gpu, "bias", b));
            let output = dispatch::zeros(gpu, "output", shape.output_len());
            plan.record_forward(
                encoder,
                &ForwardBuffers {
                    input: &input,
                    weight: &weight,
                    bias: bias.as_ref(),
                    output: &output,
                },
            )?;
            Ok(output)
        })
        .await?;
        dispatch::read_back(gpu, &output, shape.output_len()).await
    }

    /// Both gradients (and the bias gradient when the shape has a bias) from host slices.
    ///
    /// # Errors
    /// As [`Conv2d::forward`].
    pub async fn backward(
        &self,
        shape: &Conv2dShape,
        input: &[f32],
        weight: &[f32],
        grad_output: &[f32],
    ) -> Result<Conv2dGrads> {
        // The shape first: an invalid one's saturated lengths are no length to report.
        shape.validate()?;
        check_len("input", shape.input_len(), input)?;
        check_len("weight", shape.weight_len(), weight)?;
        check_len("grad_output", shape.output_len(), grad_output)?;
        let plan = self.plan(shape)?;
        let gpu = &self.gpu;
        let (gi, gw, gb) = dispatch::record_and_submit(gpu, |encoder| {
            let input = dispatch::upload(gpu, "input", input);
            let weight = dispatch::upload(gpu, "weight", weight);
            let grad_output = dispatch::upload(gpu, "grad_output", grad_output);
            let gi = dispatch::zeros(gpu, "grad_input", shape.input_len());
            let gw = dispatch::zeros(gpu, "grad_weight", shape.weight_len());
            let gb = dispatch::zeros(gpu, "grad_bias", shape.bias_len());
            plan.record_backward_data(
                encoder,
                &BackwardDataBuffers {
                    grad_output: &grad_output,
                    weight: &weight,
                    grad_input: &gi,
                },
            )?;
            plan.record_backward_weight(
                encoder,
                &BackwardWeightBuffers {
                    grad_output: &grad_output,
                    input: &input,
                    grad_weight: &gw,
                    grad_bias: shape.bias.then_some(&gb),
                },
            )?;
            Ok((gi, gw, gb))
        })
        .await?;
        Ok(Conv2dGrads {
            input: dispatch::read_back(gpu, &gi, shape.input_len()).await?,
            weight: dispatch::read_back(gpu, &gw, shape.weight_len()).await?,
            bias: dispatch::read_back(gpu, &gb, shape.bias_len()).await?,
        })
    }

    crate::blocking_calls! {
        /// Blocking [`Conv2d::forward`] (native only).
        pub fn forward_blocking(
            &self,
            shape: &Conv2dShape,
            input: &[f32],
            weight: &[f32],
            bias: Option<&[f32]>,
        ) -> Result<Vec<f32>> => forward;

        /// Blocking [`Conv2d::backward`] (native only).
        pub fn backward_blocking(
            &self,
            shape: &Conv2dShape,
            input: &[f32],
            weight: &[f32],
            grad_output: &[f32],
        ) -> Result<Conv2dGrads> => backward;
    }
}

fn check_bias(shape: &Conv2dShape, bias: Option<&[f32]>) -> Result<()> {
    match (shape.bias, bias) {
        (true, Some(b)) => check_len("bias", shape.bias_len(), b),
        (false, None) => Ok(()),
        (true, None) => Err(Error::shape("the shape has a bias but no bias was given")),
        (false, Some(_)) => Err(Error::shape(
            "a bias was given but the shape has none: use Conv2dShape::with_bias(true)",
        )),
    }
}
