//! BatchNorm1d on `[batch, features]` activations (`shaders/train_batchnorm.wgsl`, then
//! `train_batchnorm_forward.wgsl`, `_eval.wgsl` or `_backward.wgsl`; CPU twins
//! [`cpu::batch_norm_forward`](super::cpu::batch_norm_forward) and the others).

use crate::buffer::BufferRange;
use crate::dispatch::{self, whole, Grid, WORKGROUP_SIZE};
use crate::error::{check_len, Error, Result};

use super::Train;

/// Features one workgroup owns, and slices of the batch its threads walk (`SLICES` in WGSL):
/// thread `t` takes feature `t % SLICES` and rows `t / SLICES`, `+ SLICES`, ...
const SLICES: u32 = 16;
const _: () = assert!(SLICES * SLICES == WORKGROUP_SIZE);

/// Longest batch: each thread walks at most 3 * batch / SLICES rows, far below the 65,535
/// loop iterations software drivers allow.
const MAX_BATCH: u32 = 300_000;

crate::uniform_struct! {
    /// The uniform of the BatchNorm1d kernels (`p` in `shaders/train_batchnorm.wgsl`).
    struct BnParams {
        batch: u32,
        features: u32,
        fold_x: u32,
        total_wg: u32,
        /// Added to the variance inside the square root.
        eps: f32,
        /// Running statistics: `running = momentum * running + (1 - momentum) * batch
        /// statistic`.
        momentum: f32,
        pad: [u32; 2],
    }
}

/// A BatchNorm1d module: the common part (`train_batchnorm.wgsl`), then one entry point.
macro_rules! batchnorm_kernel {
    ($(#[$meta:meta])* $kernel:ident, $module:ident, $name:literal, $bindings:ident) => {
        crate::module!($module = $name, [BnParams], constants: &[("SLICES", SLICES)],
            parts: ["train_batchnorm", $name]);
        crate::kernel!($(#[$meta])* pub(super) $kernel = $name, $module, $bindings);
    };
}

crate::bindings! {
    /// The training forward.
    struct BnForwardBindings {
        p @ 0: uniform(BnParams),
        x @ 1: read,
        affine @ 2: read,
        y @ 3: read_write,
        saved @ 4: read_write,
        running @ 5: read_write,
    }
}

crate::bindings! {
    /// The inference forward.
    struct BnEvalBindings {
        p @ 0: uniform(BnParams),
        x @ 1: read,
        affine @ 2: read,
        running @ 3: read,
        y @ 4: read_write,
    }
}

crate::bindings! {
    /// The backward.
    struct BnBackwardBindings {
        p @ 0: uniform(BnParams),
        x @ 1: read,
        dy @ 2: read,
        affine @ 3: read,
        saved @ 4: read,
        dx @ 5: read_write,
        daffine @ 6: read_write,
    }
}

batchnorm_kernel!(
    /// Batch statistics, `y`, saved statistics and the running update.
    BN_FORWARD,
    BN_FORWARD_MODULE,
    "train_batchnorm_forward",
    BnForwardBindings
);
batchnorm_kernel!(
    /// The inference forward with the running statistics.
    BN_EVAL,
    BN_EVAL_MODULE,
    "train_batchnorm_eval",
    BnEvalBindings
);
batchnorm_kernel!(
    /// The backward from the saved statistics.
    BN_BACKWARD,
    BN_BACKWARD_MODULE,
    "train_batchnorm_backward",
    BnBackwardBindings
);

/// Buffers of the training forward ([`BatchNormPlan::record_forward`]); all `STORAGE`. Whole
/// buffers (`B = &wgpu::Buffer`) or ranges (`B = `[`BufferRange`]; see
/// [`ForwardBuffers`](crate::conv::ForwardBuffers)).
#[derive(Clone, Copy, Debug)]
pub struct BatchNormBuffers<B> {
    /// `[batch, features]`.
    pub x: B,
    /// `[gamma; beta]`, `2 * features`.
    pub affine: B,
    /// `[batch, features]`, written.
    pub y: B,
    /// `[mean; inv_std]` of the batch, `2 * features`, written (the backward reads it).
    pub saved: B,
    /// `[mean; var]` running statistics, `2 * features`, updated in place.
    pub running: B,
}

/// Buffers of the backward ([`BatchNormPlan::record_backward`]); all `STORAGE`. Whole buffers
/// or ranges, as for [`BatchNormBuffers`].
#[derive(Clone, Copy, Debug)]
pub struct BatchNormGradBuffers<B> {
    /// The forward's input `[batch, features]`.
    pub x: B,
    /// Gradient of the output, `[batch, features]`.
    pub dy: B,
    /// `[gamma; beta]`.
    pub affine: B,
    /// The forward's `[mean; inv_std]`.
    pub saved: B,
    /// Gradient of the input, `[batch, features]`, written.
    pub dx: B,
    /// `[dgamma; dbeta]`, written.
    pub daffine: B,
}

crate::buffer::buffers_ranges! {
    BatchNormBuffers { x, affine, y, saved, running; }
    BatchNormGradBuffers { x, dy, affine, saved, dx, daffine; }
}

/// BatchNorm1d for one `(batch, features)` ([`Train::batch_norm`]).
#[derive(Debug)]
pub struct BatchNormPlan {
    train: Train,
    batch: u32,
    features: u32,
    eps: f32,
    momentum: f32,
    uniform: wgpu::Buffer,
    grid: Grid,
}

impl Train {
    /// BatchNorm1d over `[batch, features]`: `eps` inside the square root, running statistics
    /// updated as `running = momentum * running + (1 - momentum) * batch_statistic` with the
    /// biased batch variance (TensorFlow's defaults: eps 1e-3, momentum 0.99).
    ///
    /// # Errors
    /// [`Error::Shape`] for a batch of 0 or past 300,000, sizes past u32, `eps <= 0` or a
    /// momentum outside [0, 1].
    pub fn batch_norm(
        &self,
        batch: usize,
        features: usize,
        eps: f32,
        momentum: f32,
    ) -> Result<BatchNormPlan> {
        let batch_u = u32::try_from(batch)
            .ok()
            .filter(|&b| (1..=MAX_BATCH).contains(&b))
            .ok_or_else(|| {
                Error::shape(format!(
                    "batch norm over {batch} rows: need 1..={MAX_BATCH}"
                ))
            })?;
        let features_u = u32::try_from(features)
            .ok()
            .filter(|&f| u64::from(f) * u64::from(batch_u) <= u64::from(u32::MAX))
            .ok_or_else(|| Error::shape(format!("{batch} x {features} values: past u32")))?;
        if !(eps.is_finite() && eps > 0.0 && (0.0..=1.0).contains(&momentum)) {
            return Err(Error::shape(format!(
                "batch norm eps {eps} must be > 0 and momentum {momentum} in [0, 1]"
            )));
        }
        let grid = Grid::for_items(&self.gpu, u64::from(features_u), u64::from(SLICES))?;
        let params = BnParams {
            batch: batch_u,
            features: features_u,
            fold_x: grid.fold_x(),
            total_wg: grid.total,
            eps,
            momentum,
            pad: [0; 2],
        };
        let uniform = self
            .gpu
            .scoped(|| Ok(dispatch::uniform(&self.gpu, "batch norm", &params)))?;
        Ok(BatchNormPlan {
            train: self.clone(),
            batch: batch_u,
            features: features_u,
            eps,
            momentum,
            uniform,
            grid,
        })
    }
}

crate::on_gpu!(BatchNormPlan => train.gpu);

impl BatchNormPlan {
    /// `(batch, features)`.
    pub fn dims(&self) -> (usize, usize) {
        (self.batch as usize, self.features as usize)
    }

    /// `(eps, momentum)`.
    pub fn hyper(&self) -> (f32, f32) {
        (self.eps, self.momentum)
    }

    fn sizes(&self) -> (u64, u64) {
        (
            u64::from(self.batch) * u64::from(self.features),
            2 * u64::from(self.features),
        )
    }

    crate::record_calls! {
        /// Records the training forward: batch statistics, `y`, `saved` and the running
        /// update.
        ///
        /// # Errors
        /// Buffer size, usage and aliasing errors; nothing is recorded on error.
        pub fn record_forward(&self, b: &BatchNormBuffers<impl Copy + Into<BufferRange<'a>>>)
            => |rec| {
            let BatchNormBuffers { x, affine, y, saved, running } = b.into();
            let (act, stat) = self.sizes();
            train_op!(self.train, rec, bn_forward, self.grid, BnForwardBindings {
                p: whole(&self.uniform);
                x[act], affine[stat], y[act], saved[stat], running[stat]
            }, outputs from 2)
        };

        /// Records the inference forward with the running statistics (`running`:
        /// `[mean; var]`).
        ///
        /// # Errors
        /// As [`BatchNormPlan::record_forward`].
        pub fn record_eval(&self, x, affine, running, y) => |rec| {
            let (act, stat) = self.sizes();
            train_op!(self.train, rec, bn_eval, self.grid, BnEvalBindings {
                p: whole(&self.uniform);
                x[act], affine[stat], running[stat], y[act]
            }, outputs from 3)
        };

        /// Records the backward of the training forward.
        ///
        /// # Errors
        /// As [`BatchNormPlan::record_forward`].
        pub fn record_backward(&self, b: &BatchNormGradBuffers<impl Copy + Into<BufferRange<'a>>>)
            => |rec| {
            let BatchNormGradBuffers { x, dy, affine, saved, dx, daffine } = b.into();
            let (act, stat) = self.sizes();
            train_op!(self.train, rec, bn_backward, self.grid, BnBackwardBindings {
                p: whole(&self.uniform);
                x[act], dy[act], affine[stat], saved[stat], dx[act], daffine[stat]
            }, outputs from 4)
        };
    }

    /// Host-slice training forward: returns `(y, saved, running')` from `x`, `affine` and the
    /// running statistics `running`.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`], recording and readback errors.
    pub async fn forward(
        &self,
        x: &[f32],
        affine: &[f32],
        running: &[f32],
    ) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
        let (act, stat) = self.sizes();
        let (act, stat) = (act as usize, stat as usize);
        check_len("x", act, x)?;
        check_len("affine", stat, affine)?;
        check_len("running", stat, running)?;
        let gpu = &self.train.gpu;
        let (y, saved, run) = dispatch::record_and_submit(gpu, |enc| {
            let xb = dispatch::upload(gpu, "bn x", x);
            let ab = dispatch::upload(gpu, "bn affine", affine);
            let rb = dispatch::upload(gpu, "bn running", running);
            let y = dispatch::zeros(gpu, "bn y", act);
            let saved = dispatch::zeros(gpu, "bn saved", stat);
            self.record_forward(
                enc,
                &BatchNormBuffers {
                    x: &xb,
                    affine: &ab,
                    y: &y,
                    saved: &saved,
                    running: &rb,
                },
            )?;
            Ok((y, saved, rb))
        })
        .await?;
        Ok((
            dispatch::read_back(gpu, &y, act).await?,
            dispatch::read_back(gpu, &saved, stat).await?,
            dispatch::read_back(gpu, &run, stat).await?,
        ))
    }

    /// Host-slice inference forward.
    ///
    /// # Errors
    /// As [`BatchNormPlan::forward`].
    pub async fn eval(&self, x: &[f32], affine: &[f32], running: &[f32]) -> Result<Vec<f32>> {
        let (act, stat) = self.sizes();
        let (act, stat) = (act as usize, stat as usize);
        check_len("x", act, x)?;
        check_len("affine", stat, affine)?;
        check_len("running", stat, running)?;
        let gpu = &self.train.gpu;
        let y = dispatch::record_and_submit(gpu, |enc| {
            let xb = dispatch::upload(gpu, "bn x", x);
            let ab = dispatch::upload(gpu, "bn affine", affine);
            let rb = dispatch::upload(gpu, "bn running", running);
            let y = dispatch::zeros(gpu, "bn y", act);
            self.record_eval(enc, &xb, &ab, &rb, &y)?;
            Ok(y)
        })
        .await?;
        dispatch::read_back(gpu, &y, act).await
    }

    /// Host-slice backward: returns `(dx, daffine)`.
    ///
    /// # Errors
    /// As [`BatchNormPlan::forward`].
    pub async fn backward(
        &self,
        x: &[f32],
        dy: &[f32],
        affine: &[f32],
        saved: &[f32],
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let (act, stat) = self.sizes();
        let (act, stat) = (act as usize, stat as usize);
        check_len("x", act, x)?;
        check_len("dy", act, dy)?;
        check_len("affine", stat, affine)?;
        check_len("saved", stat, saved)?;
        let gpu = &self.train.gpu;
        let (dx, da) = dispatch::record_and_submit(gpu, |enc| {
            let xb = dispatch::upload(gpu, "bn x", x);
            let dyb = dispatch::upload(gpu, "bn dy", dy);
            let ab = dispatch::upload(gpu, "bn affine", affine);
            let sb = dispatch::upload(gpu, "bn saved", saved);
            let dx = dispatch::zeros(gpu, "bn dx", act);
            let da = dispatch::zeros(gpu, "bn daffine", stat);
            self.record_backward(
                enc,
                &BatchNormGradBuffers {
                    x: &xb,
                    dy: &dyb,
                    affine: &ab,
                    saved: &sb,
                    dx: &dx,
                    daffine: &da,
                },
            )?;
            Ok((dx, da))
        })
        .await?;
        Ok((
            dispatch::read_back(gpu, &dx, act).await?,
            dispatch::read_back(gpu, &da, stat).await?,
        ))
    }

    crate::blocking_calls! {
        /// Blocking [`BatchNormPlan::forward`] (native only).
        pub fn forward_blocking(
            &self,
            x: &[f32],
            affine: &[f32],
            running: &[f32],
        ) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> => forward;

        /// Blocking [`BatchNormPlan::eval`] (native only).
        pub fn eval_blocking(&self, x: &[f32], affine: &[f32], running: &[f32]) -> Result<Vec<f32>> => eval;

        /// Blocking [`BatchNormPlan::backward`] (native only).
        pub fn backward_blocking(
            &self,
            x: &[f32],
            dy: &[f32],
            affine: &[f32],
            saved: &[f32],
        ) -> Result<(Vec<f32>, Vec<f32>)> => backward;
    }
}
