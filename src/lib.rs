//! # tied: GPU kernels for parameter sharing and tying
//!
//! WGSL compute kernels driven by wgpu, for neural networks whose parameters are shared:
//! conv2d with shared weights (forward, input gradient, the shared kernel's gradient and the
//! bias gradient), with device probes and CPU twins (f64 references) for every kernel.
//!
//! ## Devices
//! Adopt your own device with [`Gpu::adopt`] (checked against [`required_features`] and
//! [`required_limits`]; no handlers are installed), or let the crate create one with
//! [`Gpu::new`] (honours `WGPU_BACKEND` and `WGPU_ADAPTER_NAME`).
//!
//! ## Recording into your encoder
//! Every op records into a caller's `&mut wgpu::CommandEncoder` on caller-owned buffers and
//! never submits or polls. Each buffer argument is a [`buffer::BufferRange`]: a whole buffer
//! (`&buffer`), a `wgpu::BufferSlice`, or a range of a pooled allocation at an offset aligned
//! to `min_storage_buffer_offset_alignment`; tensors of one op may share a buffer as long as
//! their ranges do not overlap. Host-slice convenience calls (async, plus `_blocking` on native)
//! upload, run and read back.
//!
//! ```no_run
//! # fn main() -> tied::Result<()> {
//! use tied::conv::{Conv2d, Conv2dShape};
//! let gpu = tied::Gpu::new_blocking()?;
//! let conv = Conv2d::new(&gpu)?; // pipelines: once per device
//! let shape = Conv2dShape::new(1, 3, 8, [32, 32], [3, 3]).padding(1).with_bias(true);
//! let x = vec![0.5f32; shape.input_len()];
//! let w = vec![0.1f32; shape.weight_len()];
//! let b = vec![0.0f32; shape.bias_len()];
//! let y = conv.forward_blocking(&shape, &x, &w, Some(&b))?;
//! assert_eq!(y.len(), shape.output_len());
//! # Ok(()) }
//! ```
//!
//! ## Guarantees
//! - Deterministic: fixed-order reductions, no float atomics; the same inputs on the same
//!   device give bitwise identical results.
//! - Portable: every kernel fits the WebGPU default limits, folds grids past 65,535
//!   workgroups, bounds every per-invocation loop, and assumes no subgroup size.
//! - No panics on bad input: every kernel, plan and host-slice call returns [`Error`]
//!   (`tests/fuzz_api.rs` drives every constructor and plan builder with edge integers in the
//!   test profile, overflow checks on). Caller buffers are checked before anything is
//!   recorded: size, usage, alignment and bounds of ranges, overlap, a mapped buffer, and
//!   (inside an error scope) whatever wgpu refuses when binding or copying them, such as a
//!   buffer of another device. A lost or destroyed device gives [`Error::DeviceLost`],
//!   adopted or not ([`Gpu::check_lost`]).
//! - What cannot be detected: a buffer from another `wgpu::Instance`. wgpu-core names
//!   resources by ids local to an instance, so such a buffer can alias one of yours (wgpu then
//!   uses yours in its place, silently) or make wgpu-core itself panic when it looks the id
//!   up. Keep every buffer a `Gpu` sees on that `Gpu`'s instance. A buffer whose `map_async`
//!   is still pending is not detected either (wgpu 30 has no `map_state`); wgpu refuses it at
//!   submit, through your device's error handler.
//! - The testing aids (`tied::verify`, the CPU twins' reference loops, the benchmark cases in
//!   `tying::cases` and `conv::cases`; hidden from these docs, they serve the crate's tests,
//!   benches and report) assume well-formed input and panic on a length mismatch or a zero
//!   group count.

#![warn(missing_docs)]

pub mod buffer;
pub mod conv;
mod dispatch;
mod error;
mod gpu;
pub mod growl;
#[doc(hidden)]
pub mod kernels;
#[cfg(not(target_arch = "wasm32"))]
pub mod probe;
mod scan;
pub mod share;
pub mod sort;
#[cfg(not(target_arch = "wasm32"))]
pub mod timing;
pub mod train;
pub mod tying;
#[doc(hidden)]
pub mod verify;

pub use dispatch::WORKGROUP_SIZE;
pub use error::{Error, Result};
pub use gpu::{
    check_features, check_limits, optional_features, required_features, required_limits, Gpu,
};

/// The README's Rust snippets, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
