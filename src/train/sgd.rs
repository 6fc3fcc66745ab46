//! Momentum SGD with weight decay and a group mask (`shaders/train_sgd.wgsl`; CPU twin
//! [`cpu::sgd_step`](super::cpu::sgd_step)), and the step-decay learning rate.

use crate::buffer::{BufferRange, MaybeRange};
use crate::dispatch::{self, check_buffer, check_distinct, check_op, whole, Grid, Recording};
use crate::error::{check_len, Error, Result};
use crate::growl::GroupLayout;

use super::elementwise::{as_words, elementwise_kernel, EltParams};
use super::Train;

crate::bindings! {
    /// One SGD step: `weight` and `velocity` updated in place from `grad`; `mask` one u32 per
    /// group.
    struct SgdBindings {
        p @ 0: uniform(EltParams),
        grad @ 1: read,
        mask @ 2: read,
        weight @ 3: read_write,
        velocity @ 4: read_write,
    }
}

elementwise_kernel!(
    /// Momentum SGD with weight decay and an optional group mask.
    SGD,
    SGD_MODULE,
    "train_sgd",
    SgdBindings
);

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

    /// Writes the hyper-parameters into `params`.
    fn set(&self, params: &mut EltParams) {
        params.lr = self.lr;
        params.momentum = self.momentum;
        params.weight_decay = self.weight_decay;
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
        hyper.set(&mut params);
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

crate::on_gpu!(SgdPlan => train.gpu);

impl SgdPlan {
    /// Changes the hyper-parameters (a queue write: it takes effect for work submitted after
    /// this call, including work recorded before it but submitted later).
    ///
    /// # Errors
    /// [`Error::Shape`] for invalid values.
    pub fn set_hyper(&mut self, hyper: Sgd) -> Result<()> {
        hyper.validate()?;
        hyper.set(&mut self.params);
        self.train
            .gpu
            .queue()
            .write_buffer(&self.uniform, 0, bytemuck::bytes_of(&self.params));
        Ok(())
    }

    crate::record_calls! {
        /// Records one step: `velocity` and `weight` (read and written, `STORAGE`) from
        /// `grad`; with a mask layout, `mask` (one u32 per group) re-zeroes masked groups of
        /// both.
        ///
        /// # Errors
        /// Buffer errors; [`Error::Shape`] when `mask` is given without a mask layout or
        /// missing with one. Nothing is recorded on error.
        pub fn record_step(&self, grad, mask: impl Into<MaybeRange<'a>>, weight, velocity)
            => |rec| self.build_step(rec, grad, mask.into(), weight, velocity);
    }

    fn build_step(
        &self,
        rec: &mut Recording,
        grad: BufferRange<'_>,
        mask: MaybeRange<'_>,
        weight: BufferRange<'_>,
        velocity: BufferRange<'_>,
    ) -> Result<()> {
        let gpu = &self.train.gpu;
        let (st, n) = (wgpu::BufferUsages::STORAGE, self.len as u64);
        check_op(
            gpu,
            &[
                ("grad", grad, n),
                ("weight", weight, n),
                ("velocity", velocity, n),
            ],
            1,
        )?;
        let mask = match (mask.0, self.groups) {
            (Some(m), Some(groups)) => {
                check_buffer(gpu, "mask", m, groups as u64, st)?;
                check_distinct("weight", weight, &[("mask", m)])?;
                check_distinct("velocity", velocity, &[("mask", m)])?;
                m
            }
            // The kernel reads `mask` only when the plan has a mask layout (`has_mask`, a
            // run-time uniform), so without one `grad` fills the slot.
            (None, None) => grad,
            (Some(_), None) => {
                return Err(Error::shape("a mask was given to an SGD plan without one"))
            }
            (None, Some(_)) => {
                return Err(Error::shape("this SGD plan was made with a mask layout"))
            }
        };
        let b = SgdBindings {
            p: whole(&self.uniform),
            grad: whole(grad),
            mask: whole(mask),
            weight: whole(weight),
            velocity: whole(velocity),
        };
        self.train.kernels.sgd.run(gpu.device(), rec, &b, self.grid);
        Ok(())
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
