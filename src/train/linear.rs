//! A dense layer `y = x W^T + b` on the conv GEMM core (a convolution whose kernel covers a
//! 1 x 1 input, which the conv plans run as a plain GEMM, its input gradient included: by
//! default on the plain-GEMM tiles of pointwise shapes, [`crate::conv::Tile::POINTWISE`],
//! where their estimated cost is lower, and on whichever tile the tuner measures fastest with
//! [`Tuning::Measure`]).

use crate::buffer::MaybeRange;
use crate::conv::{
    BackwardDataBuffers, BackwardWeightBuffers, Conv2d, Conv2dGrads, Conv2dPlan, Conv2dShape,
    ForwardBuffers, Tuning,
};
use crate::error::Result;

/// A dense layer's sizes. Layouts (row-major f32): input `x` `[batch, inputs]`, weight `W`
/// `[outputs, inputs]` (PyTorch's), bias `[outputs]`, output `y` `[batch, outputs]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinearShape {
    /// Rows of `x` and `y`.
    pub batch: u32,
    /// Input features.
    pub inputs: u32,
    /// Output features.
    pub outputs: u32,
    /// Whether a bias is added.
    pub bias: bool,
}

impl LinearShape {
    /// A layer with a bias.
    pub fn new(batch: u32, inputs: u32, outputs: u32) -> Self {
        Self {
            batch,
            inputs,
            outputs,
            bias: true,
        }
    }

    /// The same layer without (or with) a bias.
    pub fn with_bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// The convolution this layer is: `[batch, inputs, 1, 1]` by a 1 x 1 kernel.
    pub fn conv(&self) -> Conv2dShape {
        Conv2dShape::new(self.batch, self.inputs, self.outputs, [1, 1], [1, 1]).with_bias(self.bias)
    }
}

/// Dense layers on one device: the conv pipelines ([`Conv2d`]), shared.
#[derive(Debug, Clone)]
pub struct Linear {
    conv: Conv2d,
}

/// A dense layer's plan: one per [`LinearShape`], reused every step.
#[derive(Debug)]
pub struct LinearPlan {
    shape: LinearShape,
    conv: Conv2dPlan,
}

impl Linear {
    /// Dense layers on the pipelines of `conv`.
    pub fn new(conv: &Conv2d) -> Self {
        Self { conv: conv.clone() }
    }

    /// Plans `shape`.
    ///
    /// # Errors
    /// As [`Conv2d::plan`].
    pub fn plan(&self, shape: LinearShape) -> Result<LinearPlan> {
        self.plan_with(shape, Tuning::Default)
    }

    /// Plans `shape` with its GEMMs chosen as `tuning` says (see [`Tuning`]: by measurement
    /// on this device, from the device's tuning cache, or fixed).
    ///
    /// # Errors
    /// As [`Conv2d::plan_with`].
    pub fn plan_with(&self, shape: LinearShape, tuning: Tuning) -> Result<LinearPlan> {
        Ok(LinearPlan {
            shape,
            conv: self.conv.plan_with(&shape.conv(), tuning)?,
        })
    }

    /// Host-slice forward `y = x W^T + b`.
    ///
    /// # Errors
    /// As [`Conv2d::forward`].
    pub async fn forward(
        &self,
        shape: LinearShape,
        x: &[f32],
        w: &[f32],
        b: Option<&[f32]>,
    ) -> Result<Vec<f32>> {
        self.conv.forward(&shape.conv(), x, w, b).await
    }

    /// Host-slice gradients `(dx, dW, db)` from `dy`.
    ///
    /// # Errors
    /// As [`Conv2d::backward`].
    pub async fn backward(
        &self,
        shape: LinearShape,
        x: &[f32],
        w: &[f32],
        dy: &[f32],
    ) -> Result<Conv2dGrads> {
        self.conv.backward(&shape.conv(), x, w, dy).await
    }

    crate::blocking_calls! {
        /// Blocking [`Linear::forward`] (native only).
        pub fn forward_blocking(
            &self,
            shape: LinearShape,
            x: &[f32],
            w: &[f32],
            b: Option<&[f32]>,
        ) -> Result<Vec<f32>> => forward;

        /// Blocking [`Linear::backward`] (native only).
        pub fn backward_blocking(
            &self,
            shape: LinearShape,
            x: &[f32],
            w: &[f32],
            dy: &[f32],
        ) -> Result<Conv2dGrads> => backward;
    }
}

impl crate::dispatch::OnGpu for LinearPlan {
    fn gpu(&self) -> &crate::gpu::Gpu {
        self.conv.gpu()
    }
}

impl LinearPlan {
    /// The layer's sizes.
    pub fn shape(&self) -> LinearShape {
        self.shape
    }

    /// The underlying conv plan (tile kinds, splits).
    pub fn conv_plan(&self) -> &Conv2dPlan {
        &self.conv
    }

    crate::record_calls! {
        /// Records `y = x W^T + b` (`b` exactly when the shape has a bias). All `STORAGE`.
        ///
        /// # Errors
        /// As [`Conv2dPlan::record_forward`].
        pub fn record_forward(&self, x, w, b: impl Into<MaybeRange<'a>>, y) => |rec| {
            let (input, weight, bias, output) = (x, w, b.into().0, y);
            let buffers = ForwardBuffers { input, weight, bias, output };
            self.conv.build_forward(rec, buffers)
        };

        /// Records the input gradient `dx = dy W` (overwritten).
        ///
        /// # Errors
        /// As [`Conv2dPlan::record_backward_data`].
        pub fn record_backward_input(&self, dy, w, dx) => |rec| {
            let (grad_output, weight, grad_input) = (dy, w, dx);
            let buffers = BackwardDataBuffers { grad_output, weight, grad_input };
            self.conv.build_backward_data(rec, buffers)
        };

        /// Records the weight gradient `dW = dy^T x` and, with a bias, `db = sum_batch dy`
        /// (overwritten, summed in a fixed order).
        ///
        /// # Errors
        /// As [`Conv2dPlan::record_backward_weight`].
        pub fn record_backward_weight(&self, dy, x, dw, db: impl Into<MaybeRange<'a>>) => |rec| {
            let (grad_output, input, grad_weight, grad_bias) = (dy, x, dw, db.into().0);
            let buffers = BackwardWeightBuffers { grad_output, input, grad_weight, grad_bias };
            self.conv.build_backward_weight(rec, buffers)
        };
    }
}
