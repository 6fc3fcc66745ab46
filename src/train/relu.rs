//! ReLU forward and backward (`shaders/train_relu_forward.wgsl`,
//! `shaders/train_relu_backward.wgsl`; CPU twins [`cpu::relu_forward`](super::cpu::relu_forward),
//! [`cpu::relu_backward`](super::cpu::relu_backward)).

use crate::dispatch::{self, whole, Grid};
use crate::error::{check_len, Result};

use super::elementwise::{elementwise_kernel, EltParams};
use super::Train;

crate::bindings! {
    /// `y = relu(x)`.
    struct ReluForwardBindings {
        p @ 0: uniform(EltParams),
        x @ 1: read,
        y @ 2: read_write,
    }
}

crate::bindings! {
    /// `dx = dy` where `y > 0`.
    struct ReluBackwardBindings {
        p @ 0: uniform(EltParams),
        y @ 1: read,
        dy @ 2: read,
        dx @ 3: read_write,
    }
}

elementwise_kernel!(
    /// ReLU forward.
    RELU_FORWARD,
    RELU_FORWARD_MODULE,
    "train_relu_forward",
    ReluForwardBindings
);
elementwise_kernel!(
    /// ReLU backward from the forward's output.
    RELU_BACKWARD,
    RELU_BACKWARD_MODULE,
    "train_relu_backward",
    ReluBackwardBindings
);

impl Train {
    /// A ReLU over `len` elements.
    ///
    /// # Errors
    /// [`Error::Shape`](crate::Error::Shape) past 2^32 - 1 elements;
    /// [`Error::LimitExceeded`](crate::Error::LimitExceeded) past one dispatch.
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
}

/// ReLU of one length ([`Train::relu`]).
#[derive(Debug)]
pub struct ReluPlan {
    train: Train,
    len: usize,
    uniform: wgpu::Buffer,
    grid: Grid,
}

crate::on_gpu!(ReluPlan => train.gpu);

impl ReluPlan {
    crate::record_calls! {
        /// Records `y = relu(x)`: `x` where `x > 0`, NaN stays NaN, negatives and both zeros
        /// give `+0`. `x` and `y` need `STORAGE`.
        ///
        /// # Errors
        /// Buffer size, usage and aliasing errors; nothing is recorded on error.
        pub fn record_forward(&self, x, y) => |rec| {
            let n = self.len as u64;
            train_op!(self.train, rec, relu_forward, self.grid, ReluForwardBindings {
                p: whole(&self.uniform);
                x[n], y[n]
            }, outputs from 1)
        };

        /// Records `dx = dy` where the forward's output `y > 0`, else 0.
        ///
        /// # Errors
        /// As [`ReluPlan::record_forward`].
        pub fn record_backward(&self, y, dy, dx) => |rec| {
            let n = self.len as u64;
            train_op!(self.train, rec, relu_backward, self.grid, ReluBackwardBindings {
                p: whole(&self.uniform);
                y[n], dy[n], dx[n]
            }, outputs from 2)
        };
    }

    /// Host-slice forward.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`](crate::Error::LengthMismatch), recording and readback errors.
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
}

impl ReluPlan {
    crate::blocking_calls! {
        /// Blocking [`ReluPlan::forward`] (native only).
        pub fn forward_blocking(&self, x: &[f32]) -> Result<Vec<f32>> => forward;

        /// Blocking [`ReluPlan::backward`] (native only).
        pub fn backward_blocking(&self, y: &[f32], dy: &[f32]) -> Result<Vec<f32>> => backward;
    }
}
