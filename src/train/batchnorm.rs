//! BatchNorm1d on `[batch, features]` activations (`shaders/train_batchnorm*.wgsl`).

use crate::dispatch::{self, check_buffer, check_distinct, Grid};
use crate::error::{check_len, Error, Result};

use super::Train;

/// Longest batch: each thread walks at most 3 * batch / 16 rows, far below the 65,535 loop
/// iterations software drivers allow.
const MAX_BATCH: u32 = 300_000;

/// Uniform of the BatchNorm1d kernels (mirrors `BnParams` in `train_batchnorm.wgsl`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct BnParams {
    batch: u32,
    features: u32,
    fold_x: u32,
    total_wg: u32,
    eps: f32,
    momentum: f32,
    _pad: [u32; 2],
}

/// Buffers of the training forward ([`BatchNormPlan::record_forward`]); all `STORAGE`.
#[derive(Clone, Copy, Debug)]
pub struct BatchNormBuffers<'a> {
    /// `[batch, features]`.
    pub x: &'a wgpu::Buffer,
    /// `[gamma; beta]`, `2 * features`.
    pub affine: &'a wgpu::Buffer,
    /// `[batch, features]`, written.
    pub y: &'a wgpu::Buffer,
    /// `[mean; inv_std]` of the batch, `2 * features`, written (the backward reads it).
    pub saved: &'a wgpu::Buffer,
    /// `[mean; var]` running statistics, `2 * features`, updated in place.
    pub running: &'a wgpu::Buffer,
}

/// Buffers of the backward ([`BatchNormPlan::record_backward`]); all `STORAGE`.
#[derive(Clone, Copy, Debug)]
pub struct BatchNormGradBuffers<'a> {
    /// The forward's input `[batch, features]`.
    pub x: &'a wgpu::Buffer,
    /// Gradient of the output, `[batch, features]`.
    pub dy: &'a wgpu::Buffer,
    /// `[gamma; beta]`.
    pub affine: &'a wgpu::Buffer,
    /// The forward's `[mean; inv_std]`.
    pub saved: &'a wgpu::Buffer,
    /// Gradient of the input, `[batch, features]`, written.
    pub dx: &'a wgpu::Buffer,
    /// `[dgamma; dbeta]`, written.
    pub daffine: &'a wgpu::Buffer,
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
        let grid = Grid::fold(
            u64::from(features_u).div_ceil(16),
            self.gpu
                .device()
                .limits()
                .max_compute_workgroups_per_dimension,
        )?;
        let params = BnParams {
            batch: batch_u,
            features: features_u,
            fold_x: grid.x.max(1),
            total_wg: grid.total,
            eps,
            momentum,
            _pad: [0; 2],
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

    /// Records the training forward: batch statistics, `y`, `saved` and the running update.
    ///
    /// # Errors
    /// Buffer size, usage and aliasing errors; nothing is recorded on error.
    pub fn record_forward(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        b: &BatchNormBuffers<'_>,
    ) -> Result<()> {
        let gpu = &self.train.gpu;
        dispatch::record_checked(gpu, encoder, |rec| {
            let (dev, st) = (gpu.device(), wgpu::BufferUsages::STORAGE);
            let (act, stat) = self.sizes();
            check_buffer(gpu, "x", b.x, act, st)?;
            check_buffer(gpu, "affine", b.affine, stat, st)?;
            check_buffer(gpu, "y", b.y, act, st)?;
            check_buffer(gpu, "saved", b.saved, stat, st)?;
            check_buffer(gpu, "running", b.running, stat, st)?;
            check_distinct("y", b.y, &[("x", b.x), ("affine", b.affine)])?;
            check_distinct(
                "saved",
                b.saved,
                &[("x", b.x), ("affine", b.affine), ("y", b.y)],
            )?;
            check_distinct(
                "running",
                b.running,
                &[
                    ("x", b.x),
                    ("affine", b.affine),
                    ("y", b.y),
                    ("saved", b.saved),
                ],
            )?;
            let k = &self.train.kernels.bn_forward;
            k.run(
                dev,
                rec,
                &[&self.uniform, b.x, b.affine, b.y, b.saved, b.running],
                self.grid,
            );
            Ok(())
        })
    }

    /// Records the inference forward with the running statistics (`running`: `[mean; var]`).
    ///
    /// # Errors
    /// As [`BatchNormPlan::record_forward`].
    pub fn record_eval(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        x: &wgpu::Buffer,
        affine: &wgpu::Buffer,
        running: &wgpu::Buffer,
        y: &wgpu::Buffer,
    ) -> Result<()> {
        let gpu = &self.train.gpu;
        dispatch::record_checked(gpu, encoder, |rec| {
            let (dev, st) = (gpu.device(), wgpu::BufferUsages::STORAGE);
            let (act, stat) = self.sizes();
            check_buffer(gpu, "x", x, act, st)?;
            check_buffer(gpu, "affine", affine, stat, st)?;
            check_buffer(gpu, "running", running, stat, st)?;
            check_buffer(gpu, "y", y, act, st)?;
            check_distinct(
                "y",
                y,
                &[("x", x), ("affine", affine), ("running", running)],
            )?;
            let k = &self.train.kernels.bn_eval;
            k.run(dev, rec, &[&self.uniform, x, affine, running, y], self.grid);
            Ok(())
        })
    }

    /// Records the backward of the training forward.
    ///
    /// # Errors
    /// As [`BatchNormPlan::record_forward`].
    pub fn record_backward(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        b: &BatchNormGradBuffers<'_>,
    ) -> Result<()> {
        let gpu = &self.train.gpu;
        dispatch::record_checked(gpu, encoder, |rec| {
            let (dev, st) = (gpu.device(), wgpu::BufferUsages::STORAGE);
            let (act, stat) = self.sizes();
            check_buffer(gpu, "x", b.x, act, st)?;
            check_buffer(gpu, "dy", b.dy, act, st)?;
            check_buffer(gpu, "affine", b.affine, stat, st)?;
            check_buffer(gpu, "saved", b.saved, stat, st)?;
            check_buffer(gpu, "dx", b.dx, act, st)?;
            check_buffer(gpu, "daffine", b.daffine, stat, st)?;
            let inputs = [
                ("x", b.x),
                ("dy", b.dy),
                ("affine", b.affine),
                ("saved", b.saved),
            ];
            check_distinct("dx", b.dx, &inputs)?;
            check_distinct("daffine", b.daffine, &inputs)?;
            check_distinct("daffine", b.daffine, &[("dx", b.dx)])?;
            let k = &self.train.kernels.bn_backward;
            k.run(
                dev,
                rec,
                &[&self.uniform, b.x, b.dy, b.affine, b.saved, b.dx, b.daffine],
                self.grid,
            );
            Ok(())
        })
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
