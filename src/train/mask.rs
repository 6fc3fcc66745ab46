//! Group masks: re-zeroing masked groups of a tensor and masking groups whose norm fell to a
//! threshold (`shaders/train_mask_apply.wgsl`, `shaders/train_mask_update.wgsl`; CPU twins
//! [`cpu::mask_apply`](super::cpu::mask_apply), [`cpu::mask_update`](super::cpu::mask_update)).

use crate::dispatch::{self, whole, Grid};
use crate::error::{check_len, Error, Result};
use crate::growl::GroupLayout;

use super::elementwise::{as_words, elementwise_kernel, EltParams};
use super::Train;

crate::bindings! {
    /// `tensor = 0` where `mask[group] == 0`.
    struct MaskApplyBindings {
        p @ 0: uniform(EltParams),
        mask @ 1: read,
        tensor @ 2: read_write,
    }
}

crate::bindings! {
    /// `mask[g] = 0` where `norms[g] <= threshold`.
    struct MaskUpdateBindings {
        p @ 0: uniform(EltParams),
        norms @ 1: read,
        mask @ 2: read_write,
    }
}

elementwise_kernel!(
    /// Re-zeroes the masked groups of a tensor.
    MASK_APPLY,
    MASK_APPLY_MODULE,
    "train_mask_apply",
    MaskApplyBindings
);
elementwise_kernel!(
    /// Masks for good the groups whose norm is at most the threshold.
    MASK_UPDATE,
    MASK_UPDATE_MODULE,
    "train_mask_update",
    MaskUpdateBindings
);

impl Train {
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

crate::on_gpu!(MaskPlan => train.gpu);

impl MaskPlan {
    /// The layout.
    pub fn layout(&self) -> GroupLayout {
        self.layout
    }

    crate::record_calls! {
        /// Records `tensor = 0` in every group whose `mask` entry is 0 (`mask`: one u32 per
        /// group; `tensor`: the layout's elements, written in place).
        ///
        /// # Errors
        /// Buffer size, usage and aliasing errors; nothing is recorded on error.
        pub fn record_apply(&self, mask, tensor) => |rec| {
            let (g, n) = (self.layout.groups() as u64, self.layout.len() as u64);
            train_op!(self.train, rec, mask_apply, self.grids[0], MaskApplyBindings {
                p: whole(&self.uniforms[0]);
                mask[g], tensor[n]
            }, outputs from 1)
        };

        /// Records the mask's update from group norms: `mask[g] = 0` for good when
        /// `norms[g] <= threshold` (or is NaN). The threshold is absolute (the paper's is
        /// `f32::EPSILON`); set with [`MaskPlan::set_threshold`], 0 until then.
        ///
        /// # Errors
        /// As [`MaskPlan::record_apply`].
        pub fn record_update(&self, norms, mask) => |rec| {
            let g = self.layout.groups() as u64;
            train_op!(self.train, rec, mask_update, self.grids[1], MaskUpdateBindings {
                p: whole(&self.uniforms[1]);
                norms[g], mask[g]
            }, outputs from 1)
        };
    }

    /// Sets the absolute norm threshold of [`MaskPlan::record_update`] (a queue write, as
    /// [`SgdPlan::set_hyper`](super::SgdPlan::set_hyper)).
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
