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
//! Layouts: activations are row-major `[batch, features]` f32; labels u32; masks one u32 per
//! group (0 = masked for good, else kept) under a [`GroupLayout`]. Every sum over the batch
//! runs in a fixed order, so results are bitwise reproducible.

mod batchnorm;
pub mod cpu;
mod data;
mod linear;
mod xent;

pub use batchnorm::{BatchNormBuffers, BatchNormGradBuffers, BatchNormPlan};
pub use data::{shuffle, DataSet, GatherPlan};
pub use linear::{Linear, LinearPlan, LinearShape};
pub use xent::{XentPlan, XentStats};

use std::sync::Arc;

use crate::dispatch::legacy::{Binding, Kernel};
use crate::dispatch::{self, check_buffer, check_distinct, Grid};
use crate::error::{check_len, Error, Result};
use crate::gpu::Gpu;
use crate::growl::GroupLayout;
use crate::shaders;

/// Uniform of the elementwise kernels (mirrors `EltParams` in `shaders/train_common.wgsl`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct EltParams {
    len: u32,
    fold_x: u32,
    total_wg: u32,
    group_kind: u32,
    inner: u32,
    groups: u32,
    has_mask: u32,
    _pad: u32,
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    threshold: f32,
}

impl EltParams {
    fn new(gpu: &Gpu, len: usize, layout: Option<GroupLayout>) -> Result<(Self, Grid)> {
        let len = u32::try_from(len)
            .map_err(|_| Error::shape(format!("{len} elements: at most 2^32 - 1")))?;
        let grid = elementwise_grid(gpu, u64::from(len))?;
        let (kind, inner, groups) = match layout {
            None => (0, 1, 1),
            Some(GroupLayout::Rows { cols, .. }) => (0, cols, 1),
            Some(GroupLayout::Columns { cols, .. }) => (1, 1, cols),
            Some(GroupLayout::ConvInChannels { c_in, khw, .. }) => (2, khw, c_in),
        };
        let to_u32 = |v: usize| {
            u32::try_from(v).map_err(|_| Error::shape(format!("layout extent {v} past u32")))
        };
        Ok((
            Self {
                len,
                fold_x: grid.x.max(1),
                total_wg: grid.total,
                group_kind: kind,
                inner: to_u32(inner.max(1))?,
                groups: to_u32(groups.max(1))?,
                ..Self::default()
            },
            grid,
        ))
    }
}

/// A folded grid of one thread per element, 256 a workgroup.
fn elementwise_grid(gpu: &Gpu, len: u64) -> Result<Grid> {
    Grid::fold(
        len.div_ceil(256),
        gpu.device().limits().max_compute_workgroups_per_dimension,
    )
}

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

/// Momentum SGD hyper-parameters (TensorFlow's `MomentumOptimizer` plus L2 weight decay):
/// `v = momentum * v + (g + weight_decay * w)`, `w -= lr * v`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    /// Learning rate.
    pub lr: f32,
    /// Momentum (0 for plain SGD).
    pub momentum: f32,
    /// Weight decay: the gradient of `0.5 * weight_decay * |w|^2` is added.
    pub weight_decay: f32,
}

impl Sgd {
    fn validate(&self) -> Result<()> {
        let ok = |v: f32| v.is_finite() && v >= 0.0;
        if !(ok(self.lr) && ok(self.momentum) && ok(self.weight_decay)) {
            return Err(Error::shape(format!(
                "SGD hyper-parameters must be finite and >= 0: {self:?}"
            )));
        }
        Ok(())
    }
}

/// The step-decay ("staircase") learning rate: `lr0 * factor^(epoch / every)` (integer
/// division), e.g. the paper's `1e-3 * 0.96^(epoch / 10)`. `every = 0` means constant.
pub fn step_decay(lr0: f32, factor: f32, every: u32, epoch: u32) -> f32 {
    match epoch.checked_div(every) {
        Some(steps) => (f64::from(lr0) * f64::from(factor).powi(steps as i32)) as f32,
        None => lr0,
    }
}

impl Train {
    /// Compiles the pipelines.
    ///
    /// # Errors
    /// Errors captured while creating the pipelines.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        gpu.scoped(|| {
            let device = gpu.device();
            use Binding::{Read, ReadWrite, Uniform};
            let elt = |name: &'static str, part: &str, bindings: &[Binding]| {
                let module = dispatch::shader(device, name, &shaders::train_elementwise(part));
                Kernel::new(device, name, &module, "main", bindings, &[])
            };
            let bn = |name: &'static str, part: &str, bindings: &[Binding]| {
                let module = dispatch::shader(device, name, &shaders::train_batchnorm(part));
                Kernel::new(device, name, &module, "main", bindings, &[])
            };
            let plain = |name: &'static str, src: &str, bindings: &[Binding]| {
                let module = dispatch::shader(device, name, src);
                Kernel::new(device, name, &module, "main", bindings, &[])
            };
            let kernels = TrainKernels {
                relu_forward: elt(
                    "train_relu_forward",
                    shaders::TRAIN_RELU_FORWARD,
                    &[Uniform, Read, ReadWrite],
                ),
                relu_backward: elt(
                    "train_relu_backward",
                    shaders::TRAIN_RELU_BACKWARD,
                    &[Uniform, Read, Read, ReadWrite],
                ),
                sgd: elt(
                    "train_sgd",
                    shaders::TRAIN_SGD,
                    &[Uniform, Read, Read, ReadWrite, ReadWrite],
                ),
                mask_apply: elt(
                    "train_mask_apply",
                    shaders::TRAIN_MASK_APPLY,
                    &[Uniform, Read, ReadWrite],
                ),
                mask_update: elt(
                    "train_mask_update",
                    shaders::TRAIN_MASK_UPDATE,
                    &[Uniform, Read, ReadWrite],
                ),
                bn_forward: bn(
                    "train_batchnorm_forward",
                    shaders::TRAIN_BATCHNORM_FORWARD,
                    &[Uniform, Read, Read, ReadWrite, ReadWrite, ReadWrite],
                ),
                bn_eval: bn(
                    "train_batchnorm_eval",
                    shaders::TRAIN_BATCHNORM_EVAL,
                    &[Uniform, Read, Read, Read, ReadWrite],
                ),
                bn_backward: bn(
                    "train_batchnorm_backward",
                    shaders::TRAIN_BATCHNORM_BACKWARD,
                    &[Uniform, Read, Read, Read, Read, ReadWrite, ReadWrite],
                ),
                xent: plain(
                    "train_softmax_xent",
                    shaders::TRAIN_SOFTMAX_XENT,
                    &[Uniform, Read, Read, ReadWrite, ReadWrite],
                ),
                stats: plain(
                    "train_stats",
                    shaders::TRAIN_STATS,
                    &[Uniform, Read, ReadWrite],
                ),
                gather: plain(
                    "train_gather",
                    shaders::TRAIN_GATHER,
                    &[Uniform, Read, Read, Read, ReadWrite, ReadWrite],
                ),
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

    /// A ReLU over `len` elements.
    ///
    /// # Errors
    /// [`Error::Shape`] past 2^32 - 1 elements; [`Error::LimitExceeded`] past one dispatch.
    pub fn relu(&self, len: usize) -> Result<ReluPlan> {
        let (params, grid) = EltParams::new(&self.gpu, len, None)?;
        Ok(ReluPlan {
            train: self.clone(),
            len,
            uniform: self
                .gpu
                .scoped(|| Ok(dispatch::uniform(&self.gpu, "relu", &params)))?,
            grid,
        })
    }

    /// Momentum SGD over a tensor of `len` elements; with `mask_layout`, the group mask of
    /// that layout is applied after every step (the layout's length must be `len`).
    ///
    /// # Errors
    /// [`Error::Shape`] for invalid hyper-parameters or a layout of another length.
    pub fn sgd(&self, len: usize, mask_layout: Option<GroupLayout>, hyper: Sgd) -> Result<SgdPlan> {
        hyper.validate()?;
        if let Some(layout) = mask_layout {
            if layout.len() != len {
                return Err(Error::shape(format!(
                    "the mask layout {layout:?} has {} elements, the tensor {len}",
                    layout.len()
                )));
            }
        }
        let (mut params, grid) = EltParams::new(&self.gpu, len, mask_layout)?;
        params.has_mask = u32::from(mask_layout.is_some());
        params.lr = hyper.lr;
        params.momentum = hyper.momentum;
        params.weight_decay = hyper.weight_decay;
        let uniform = self
            .gpu
            .scoped(|| Ok(dispatch::uniform(&self.gpu, "sgd params", &params)))?;
        Ok(SgdPlan {
            train: self.clone(),
            len,
            groups: mask_layout.map(|l| l.groups()),
            params,
            uniform,
            grid,
        })
    }

    /// Group masks of tensors laid out as `layout`.
    ///
    /// # Errors
    /// [`Error::Shape`] when the layout does not fit u32 indexing.
    pub fn mask(&self, layout: GroupLayout) -> Result<MaskPlan> {
        let (apply, apply_grid) = EltParams::new(&self.gpu, layout.len(), Some(layout))?;
        let (update, update_grid) = EltParams::new(&self.gpu, layout.groups(), None)?;
        let gpu = &self.gpu;
        let uniforms = gpu.scoped(|| {
            Ok([
                dispatch::uniform(gpu, "mask apply", &apply),
                dispatch::uniform(gpu, "mask update", &update),
            ])
        })?;
        Ok(MaskPlan {
            train: self.clone(),
            layout,
            uniforms,
            update_params: update,
            grids: [apply_grid, update_grid],
        })
    }
}

/// ReLU of one length ([`Train::relu`]).
#[derive(Debug)]
pub struct ReluPlan {
    train: Train,
    len: usize,
    uniform: wgpu::Buffer,
    grid: Grid,
}

impl ReluPlan {
    /// Records `y = relu(x)`: `x` where `x > 0`, NaN stays NaN, negatives and both zeros give
    /// `+0`. `x` and `y` need `STORAGE`.
    ///
    /// # Errors
    /// Buffer size, usage and aliasing errors; nothing is recorded on error.
    pub fn record_forward(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
    ) -> Result<()> {
        let gpu = &self.train.gpu;
        dispatch::record_checked(gpu, encoder, |rec| {
            let (dev, st, n) = (gpu.device(), wgpu::BufferUsages::STORAGE, self.len as u64);
            check_buffer(gpu, "x", x, n, st)?;
            check_buffer(gpu, "y", y, n, st)?;
            check_distinct("y", y, &[("x", x)])?;
            let k = &self.train.kernels.relu_forward;
            k.run(dev, rec, &[&self.uniform, x, y], self.grid);
            Ok(())
        })
    }

    /// Records `dx = dy` where the forward's output `y > 0`, else 0.
    ///
    /// # Errors
    /// As [`ReluPlan::record_forward`].
    pub fn record_backward(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        y: &wgpu::Buffer,
        dy: &wgpu::Buffer,
        dx: &wgpu::Buffer,
    ) -> Result<()> {
        let gpu = &self.train.gpu;
        dispatch::record_checked(gpu, encoder, |rec| {
            let (dev, st, n) = (gpu.device(), wgpu::BufferUsages::STORAGE, self.len as u64);
            check_buffer(gpu, "y", y, n, st)?;
            check_buffer(gpu, "dy", dy, n, st)?;
            check_buffer(gpu, "dx", dx, n, st)?;
            check_distinct("dx", dx, &[("y", y), ("dy", dy)])?;
            let k = &self.train.kernels.relu_backward;
            k.run(dev, rec, &[&self.uniform, y, dy, dx], self.grid);
            Ok(())
        })
    }

    /// Host-slice forward.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`], recording and readback errors.
    pub async fn forward(&self, x: &[f32]) -> Result<Vec<f32>> {
        check_len("x", self.len, x)?;
        let gpu = &self.train.gpu;
        let y = dispatch::record_and_submit(gpu, |enc| {
            let xb = dispatch::upload(gpu, "relu x", x);
            let y = dispatch::zeros(gpu, "relu y", self.len);
            self.record_forward(enc, &xb, &y)?;
            Ok(y)
        })
        .await?;
        dispatch::read_back(gpu, &y, self.len).await
    }

    /// Host-slice backward.
    ///
    /// # Errors
    /// As [`ReluPlan::forward`].
    pub async fn backward(&self, y: &[f32], dy: &[f32]) -> Result<Vec<f32>> {
        check_len("y", self.len, y)?;
        check_len("dy", self.len, dy)?;
        let gpu = &self.train.gpu;
        let dx = dispatch::record_and_submit(gpu, |enc| {
            let yb = dispatch::upload(gpu, "relu y", y);
            let dyb = dispatch::upload(gpu, "relu dy", dy);
            let dx = dispatch::zeros(gpu, "relu dx", self.len);
            self.record_backward(enc, &yb, &dyb, &dx)?;
            Ok(dx)
        })
        .await?;
        dispatch::read_back(gpu, &dx, self.len).await
    }

    crate::blocking_calls! {
        /// Blocking [`ReluPlan::forward`] (native only).
        pub fn forward_blocking(&self, x: &[f32]) -> Result<Vec<f32>> => forward;

        /// Blocking [`ReluPlan::backward`] (native only).
        pub fn backward_blocking(&self, y: &[f32], dy: &[f32]) -> Result<Vec<f32>> => backward;
    }
}

/// A u32 slice as the f32 words the crate's upload takes (bit for bit).
fn as_words(v: &[u32]) -> Vec<f32> {
    v.iter().map(|&m| f32::from_bits(m)).collect()
}

/// Momentum SGD on one tensor ([`Train::sgd`]).
#[derive(Debug)]
pub struct SgdPlan {
    train: Train,
    len: usize,
    groups: Option<usize>,
    params: EltParams,
    uniform: wgpu::Buffer,
    grid: Grid,
}

impl SgdPlan {
    /// Changes the hyper-parameters (a queue write: it takes effect for work submitted after
    /// this call, including work recorded before it but submitted later).
    ///
    /// # Errors
    /// [`Error::Shape`] for invalid values.
    pub fn set_hyper(&mut self, hyper: Sgd) -> Result<()> {
        hyper.validate()?;
        self.params.lr = hyper.lr;
        self.params.momentum = hyper.momentum;
        self.params.weight_decay = hyper.weight_decay;
        self.train
            .gpu
            .queue()
            .write_buffer(&self.uniform, 0, bytemuck::bytes_of(&self.params));
        Ok(())
    }

    /// Records one step: `velocity` and `weight` (read and written, `STORAGE`) from `grad`;
    /// with a mask layout, `mask` (one u32 per group) re-zeroes masked groups of both.
    ///
    /// # Errors
    /// Buffer errors; [`Error::Shape`] when `mask` is given without a mask layout or missing
    /// with one. Nothing is recorded on error.
    pub fn record_step(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        grad: &wgpu::Buffer,
        mask: Option<&wgpu::Buffer>,
        weight: &wgpu::Buffer,
        velocity: &wgpu::Buffer,
    ) -> Result<()> {
        let gpu = &self.train.gpu;
        dispatch::record_checked(gpu, encoder, |rec| {
            let (dev, st, n) = (gpu.device(), wgpu::BufferUsages::STORAGE, self.len as u64);
            check_buffer(gpu, "grad", grad, n, st)?;
            check_buffer(gpu, "weight", weight, n, st)?;
            check_buffer(gpu, "velocity", velocity, n, st)?;
            check_distinct("weight", weight, &[("grad", grad)])?;
            check_distinct("velocity", velocity, &[("grad", grad), ("weight", weight)])?;
            let mask = match (mask, self.groups) {
                (Some(m), Some(groups)) => {
                    check_buffer(gpu, "mask", m, groups as u64, st)?;
                    check_distinct("weight", weight, &[("mask", m)])?;
                    check_distinct("velocity", velocity, &[("mask", m)])?;
                    m
                }
                (None, None) => grad,
                (Some(_), None) => {
                    return Err(Error::shape("a mask was given to an SGD plan without one"))
                }
                (None, Some(_)) => {
                    return Err(Error::shape("this SGD plan was made with a mask layout"))
                }
            };
            let k = &self.train.kernels.sgd;
            k.run(
                dev,
                rec,
                &[&self.uniform, grad, mask, weight, velocity],
                self.grid,
            );
            Ok(())
        })
    }
}

impl SgdPlan {
    /// Host-slice step: uploads `grad`, `weight` and `velocity` (and `mask`, one u32 per group,
    /// 0 = masked), runs [`SgdPlan::record_step`], returns the new `(weight, velocity)`.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] when a slice does not have the plan's length (`mask`: one
    /// entry per group); [`Error::Shape`] when `mask` is given to a plan without a mask layout
    /// or missing with one; recording and readback errors.
    pub async fn step(
        &self,
        grad: &[f32],
        mask: Option<&[u32]>,
        weight: &[f32],
        velocity: &[f32],
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        check_len("grad", self.len, grad)?;
        check_len("weight", self.len, weight)?;
        check_len("velocity", self.len, velocity)?;
        match (mask, self.groups) {
            (Some(m), Some(groups)) => check_len("mask", groups, m)?,
            (None, None) => {}
            (Some(_), None) => {
                return Err(Error::shape("a mask was given to an SGD plan without one"))
            }
            (None, Some(_)) => {
                return Err(Error::shape("this SGD plan was made with a mask layout"))
            }
        }
        let gpu = &self.train.gpu;
        let (wb, vb) = dispatch::record_and_submit(gpu, |enc| {
            let gb = dispatch::upload(gpu, "sgd grad", grad);
            let mb = mask.map(|m| dispatch::upload(gpu, "sgd mask", &as_words(m)));
            let wb = dispatch::upload(gpu, "sgd weight", weight);
            let vb = dispatch::upload(gpu, "sgd velocity", velocity);
            self.record_step(enc, &gb, mb.as_ref(), &wb, &vb)?;
            Ok((wb, vb))
        })
        .await?;
        Ok((
            dispatch::read_back(gpu, &wb, self.len).await?,
            dispatch::read_back(gpu, &vb, self.len).await?,
        ))
    }

    crate::blocking_calls! {
        /// Blocking [`SgdPlan::step`] (native only).
        pub fn step_blocking(
            &self,
            grad: &[f32],
            mask: Option<&[u32]>,
            weight: &[f32],
            velocity: &[f32],
        ) -> Result<(Vec<f32>, Vec<f32>)> => step;
    }
}

/// Group masks under one layout ([`Train::mask`]).
#[derive(Debug)]
pub struct MaskPlan {
    train: Train,
    layout: GroupLayout,
    /// Apply, update.
    uniforms: [wgpu::Buffer; 2],
    update_params: EltParams,
    grids: [Grid; 2],
}

impl MaskPlan {
    /// The layout.
    pub fn layout(&self) -> GroupLayout {
        self.layout
    }

    /// Records `tensor = 0` in every group whose `mask` entry is 0 (`mask`: one u32 per
    /// group; `tensor`: the layout's elements, written in place).
    ///
    /// # Errors
    /// Buffer size, usage and aliasing errors; nothing is recorded on error.
    pub fn record_apply(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        mask: &wgpu::Buffer,
        tensor: &wgpu::Buffer,
    ) -> Result<()> {
        let gpu = &self.train.gpu;
        dispatch::record_checked(gpu, encoder, |rec| {
            let (dev, st) = (gpu.device(), wgpu::BufferUsages::STORAGE);
            check_buffer(gpu, "mask", mask, self.layout.groups() as u64, st)?;
            check_buffer(gpu, "tensor", tensor, self.layout.len() as u64, st)?;
            check_distinct("tensor", tensor, &[("mask", mask)])?;
            let k = &self.train.kernels.mask_apply;
            k.run(dev, rec, &[&self.uniforms[0], mask, tensor], self.grids[0]);
            Ok(())
        })
    }

    /// Records the mask's update from group norms: `mask[g] = 0` for good when
    /// `norms[g] <= threshold` (or is NaN). The threshold is absolute (the paper's is
    /// `f32::EPSILON`); set with [`MaskPlan::set_threshold`], 0 until then.
    ///
    /// # Errors
    /// As [`MaskPlan::record_apply`].
    pub fn record_update(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        norms: &wgpu::Buffer,
        mask: &wgpu::Buffer,
    ) -> Result<()> {
        let gpu = &self.train.gpu;
        dispatch::record_checked(gpu, encoder, |rec| {
            let (dev, st, g) = (
                gpu.device(),
                wgpu::BufferUsages::STORAGE,
                self.layout.groups() as u64,
            );
            check_buffer(gpu, "norms", norms, g, st)?;
            check_buffer(gpu, "mask", mask, g, st)?;
            check_distinct("mask", mask, &[("norms", norms)])?;
            let k = &self.train.kernels.mask_update;
            k.run(dev, rec, &[&self.uniforms[1], norms, mask], self.grids[1]);
            Ok(())
        })
    }

    /// Sets the absolute norm threshold of [`MaskPlan::record_update`] (a queue write, as
    /// [`SgdPlan::set_hyper`]).
    ///
    /// # Errors
    /// [`Error::Shape`] when it is negative or not finite.
    pub fn set_threshold(&mut self, threshold: f32) -> Result<()> {
        if !(threshold.is_finite() && threshold >= 0.0) {
            return Err(Error::shape(format!(
                "mask threshold {threshold} must be finite and >= 0"
            )));
        }
        self.update_params.threshold = threshold;
        self.train.gpu.queue().write_buffer(
            &self.uniforms[1],
            0,
            bytemuck::bytes_of(&self.update_params),
        );
        Ok(())
    }
}

impl MaskPlan {
    /// Host-slice [`MaskPlan::record_apply`]: returns `tensor` with the groups that `mask`
    /// (one u32 per group, 0 = masked) masks set to 0.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] for slices that do not match the layout; recording and
    /// readback errors.
    pub async fn apply(&self, mask: &[u32], tensor: &[f32]) -> Result<Vec<f32>> {
        check_len("mask", self.layout.groups(), mask)?;
        check_len("tensor", self.layout.len(), tensor)?;
        let gpu = &self.train.gpu;
        let tb = dispatch::record_and_submit(gpu, |enc| {
            let mb = dispatch::upload(gpu, "mask", &as_words(mask));
            let tb = dispatch::upload(gpu, "mask tensor", tensor);
            self.record_apply(enc, &mb, &tb)?;
            Ok(tb)
        })
        .await?;
        dispatch::read_back(gpu, &tb, self.layout.len()).await
    }

    /// Host-slice [`MaskPlan::record_update`]: returns the new mask (one u32 per group) from
    /// `norms` (one per group) and the old `mask`, with the threshold set on this plan.
    ///
    /// # Errors
    /// As [`MaskPlan::apply`].
    pub async fn update(&self, norms: &[f32], mask: &[u32]) -> Result<Vec<u32>> {
        let groups = self.layout.groups();
        check_len("norms", groups, norms)?;
        check_len("mask", groups, mask)?;
        let gpu = &self.train.gpu;
        let mb = dispatch::record_and_submit(gpu, |enc| {
            let nb = dispatch::upload(gpu, "mask norms", norms);
            let mb = dispatch::upload(gpu, "mask", &as_words(mask));
            self.record_update(enc, &nb, &mb)?;
            Ok(mb)
        })
        .await?;
        dispatch::read_back_u32(gpu, &mb, groups).await
    }

    crate::blocking_calls! {
        /// Blocking [`MaskPlan::apply`] (native only).
        pub fn apply_blocking(&self, mask: &[u32], tensor: &[f32]) -> Result<Vec<f32>> => apply;

        /// Blocking [`MaskPlan::update`] (native only).
        pub fn update_blocking(&self, norms: &[f32], mask: &[u32]) -> Result<Vec<u32>> => update;
    }
}
