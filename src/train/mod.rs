//! Training building blocks: what a training loop around the crate's kernels needs on the GPU.
//!
//! - [`Linear`]: a dense layer `y = x W^T + b` (forward, input, weight and bias gradients) on
//!   the conv GEMM core.
//! - [`Train`]: the small kernels of a step, each a plan made once per shape that records into
//!   the caller's encoder: ReLU ([`ReluPlan`]), BatchNorm1d ([`BatchNormPlan`]), fused softmax
//!   cross-entropy with a count of correct predictions ([`XentPlan`]), momentum SGD with weight
//!   decay and a group mask ([`SgdPlan`]), group masks ([`MaskPlan`]), and a batch gather
//!   from a u8 data set uploaded once ([`DataSet`], [`GatherPlan`]).
//! - Host helpers: the step-decay learning rate ([`step_decay`]) and a deterministic
//!   per-epoch shuffle ([`shuffle`]).
//! - [`cpu`]: the CPU twins (f64 accumulation) of every kernel here.
//!
//! Files by kernel: `relu.rs`, `sgd.rs`, `mask.rs` (the elementwise kernels, sharing
//! `elementwise.rs` and `shaders/train_common.wgsl`), `batchnorm.rs`, `xent.rs` (loss and
//! its totals), `data.rs` (data set, gather, shuffle), `linear.rs` (on the conv plans); each
//! declares its kernels (`shaders/train_<kernel>.wgsl`) for the crate's kernel table, and
//! `tests/train.rs` checks each against its twin in `cpu.rs`.
//!
//! Layouts: activations are row-major `[batch, features]` f32; labels u32; masks one u32 per
//! group (0 = masked for good, else kept) under a [`GroupLayout`](crate::growl::GroupLayout).
//! Every sum over the batch runs in a fixed order, so results are bitwise reproducible.

/// One kernel pass of a train op whose bindings are its uniform `p` and the caller's ranges,
/// each listed once as `field[elements]` (a local [`BufferRange`] of that name, checked
/// under that name, bound to that field), in check order; the ranges from index `first_output`
/// on are the outputs. Expands to [`Train::run_op`] with the kernel `kernels.$kernel`:
///
/// ```ignore
/// train_op!(self.train, rec, relu_forward, self.grid,
///     ReluForwardBindings { p: whole(&self.uniform); x[n], y[n] }, outputs from 1)
/// ```
macro_rules! train_op {
    ($train:expr, $rec:ident, $kernel:ident, $grid:expr,
        $Bindings:ident { p: $p:expr; $($field:ident[$elements:expr]),+ $(,)? },
        outputs from $first:expr) => {{
        let ranges = [$((stringify!($field), $field, $elements)),+];
        let bindings = $Bindings {
            p: $p,
            $($field: $crate::dispatch::whole($field)),+
        };
        let train = &$train;
        train.run_op($rec, &ranges, $first, &train.kernels.$kernel, &bindings, $grid)
    }};
}

mod batchnorm;
pub mod cpu;
mod data;
mod elementwise;
mod linear;
mod mask;
mod relu;
mod sgd;
mod xent;

pub use batchnorm::{BatchNormBuffers, BatchNormGradBuffers, BatchNormPlan};
pub use data::{shuffle, DataSet, GatherPlan};
pub use linear::{Linear, LinearPlan, LinearShape};
pub use mask::MaskPlan;
pub use relu::ReluPlan;
pub use sgd::{step_decay, Sgd, SgdPlan};
pub use xent::{XentPlan, XentStats};

use std::sync::Arc;

use crate::buffer::BufferRange;
use crate::dispatch::{Bindings, Grid, Kernel, KernelDecl, Recording};
use crate::error::Result;
use crate::gpu::Gpu;

/// The training kernels, for the kernel table.
pub(crate) static KERNELS: &[&KernelDecl] = &[
    &relu::RELU_FORWARD,
    &relu::RELU_BACKWARD,
    &sgd::SGD,
    &mask::MASK_APPLY,
    &mask::MASK_UPDATE,
    &batchnorm::BN_FORWARD,
    &batchnorm::BN_EVAL,
    &batchnorm::BN_BACKWARD,
    &xent::XENT,
    &xent::STATS,
    &data::GATHER,
];

#[derive(Debug)]
struct TrainKernels {
    relu_forward: Kernel,
    relu_backward: Kernel,
    sgd: Kernel,
    mask_apply: Kernel,
    mask_update: Kernel,
    bn_forward: Kernel,
    bn_eval: Kernel,
    bn_backward: Kernel,
    xent: Kernel,
    stats: Kernel,
    gather: Kernel,
}

/// The training kernels' pipelines on one device. Build once per device; cheap to clone.
#[derive(Debug, Clone)]
pub struct Train {
    gpu: Gpu,
    kernels: Arc<TrainKernels>,
}

impl Train {
    /// One kernel pass of an op over caller ranges: checks `ranges` as
    /// [`check_op`](crate::dispatch::check_op) (the outputs from `first_output` on), then runs
    /// `kernel` on `bindings` over `grid`. Nothing is recorded on error.
    fn run_op<'a, B: Bindings<'a>>(
        &self,
        rec: &mut Recording,
        ranges: &[(&'static str, BufferRange<'_>, u64)],
        first_output: usize,
        kernel: &Kernel,
        bindings: &B,
        grid: Grid,
    ) -> Result<()> {
        crate::dispatch::check_op(&self.gpu, ranges, first_output)?;
        kernel.run(self.gpu.device(), rec, bindings, grid);
        Ok(())
    }

    /// Compiles the pipelines.
    ///
    /// # Errors
    /// Errors captured while creating the pipelines.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        gpu.scoped(|| {
            let kernels = TrainKernels {
                relu_forward: gpu.kernel(&relu::RELU_FORWARD, 0),
                relu_backward: gpu.kernel(&relu::RELU_BACKWARD, 0),
                sgd: gpu.kernel(&sgd::SGD, 0),
                mask_apply: gpu.kernel(&mask::MASK_APPLY, 0),
                mask_update: gpu.kernel(&mask::MASK_UPDATE, 0),
                bn_forward: gpu.kernel(&batchnorm::BN_FORWARD, 0),
                bn_eval: gpu.kernel(&batchnorm::BN_EVAL, 0),
                bn_backward: gpu.kernel(&batchnorm::BN_BACKWARD, 0),
                xent: gpu.kernel(&xent::XENT, 0),
                stats: gpu.kernel(&xent::STATS, 0),
                gather: gpu.kernel(&data::GATHER, 0),
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
}
