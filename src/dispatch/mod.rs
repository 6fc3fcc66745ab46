//! The one way the crate builds pipelines, binds buffers and records dispatches.
//!
//! - [`KernelDecl`] (in `kernel.rs`): every pipeline declared once; [`Gpu::kernel`] builds and
//!   caches it per device; bindings structs ([`bindings!`](crate::bindings)) name each buffer.
//! - [`Recording`] and [`record_checked`]: a public `record_*` call builds its commands inside
//!   the crate's error scope, then replays them into the caller's encoder (nothing on error).
//! - [`Grid`]: large 1D grids folded into 2D; WGSL recovers the linear workgroup index with
//!   the prelude's `linear_workgroup(wg, fold_x)` (`linear_thread` for one thread, and
//!   `grid_element` for a one-element-a-thread kernel's element, or `len` past the end).
//! - `checks.rs`: the checks of caller buffers; `crate::buffer`: buffer creation and readback.

mod checks;
mod grid;
mod kernel;

pub(crate) use checks::*;
pub(crate) use grid::Grid;
pub use kernel::WORKGROUP_SIZE;
pub(crate) use kernel::*;

use crate::buffer::BufferRange;
pub(crate) use crate::buffer::{
    range, read_back, read_back_u32, scratch, storage_init, uniform, upload, whole, zeros,
    TENSOR_USAGE,
};
use crate::error::Result;
use crate::gpu::Gpu;

/// What [`Recording::dispatch`] needs of a pipeline.
pub(crate) trait Pipeline {
    fn name(&self) -> &'static str;
    fn pipeline(&self) -> &wgpu::ComputePipeline;
}

impl Pipeline for Kernel {
    fn name(&self) -> &'static str {
        self.name
    }
    fn pipeline(&self) -> &wgpu::ComputePipeline {
        &self.pipeline
    }
}

/// The commands of one public `record_*` call, built before anything reaches the caller's
/// encoder: every bind group is created first, inside the crate's error scope (see
/// [`record_checked`]), so a buffer wgpu refuses (destroyed, from another device, sized
/// wrongly) is an `Err` and nothing is recorded.
pub(crate) struct Recording {
    commands: Vec<Command>,
    /// The device recorded for: its empty binding ([`Gpu::empty_binding`]), bound in place of
    /// empty buffers, and its kernel cache, where [`Kernel::run`] finds shared-buffer twins.
    pub(crate) gpu: Gpu,
}

enum Command {
    Dispatch {
        name: &'static str,
        pipeline: wgpu::ComputePipeline,
        bind_group: wgpu::BindGroup,
        grid: Grid,
    },
    /// `bytes` from `src` at `src_offset` into `dst` at `dst_offset`.
    Copy {
        src: wgpu::Buffer,
        src_offset: u64,
        dst: wgpu::Buffer,
        dst_offset: u64,
        bytes: u64,
    },
    /// Zeroes `bytes` of `buffer` from `offset`.
    Clear {
        buffer: wgpu::Buffer,
        offset: u64,
        bytes: u64,
    },
}

impl Recording {
    /// One pass of `kernel` over `grid` with a bind group made earlier (nothing for an empty
    /// grid).
    pub(crate) fn dispatch(
        &mut self,
        kernel: &impl Pipeline,
        bind_group: wgpu::BindGroup,
        grid: Grid,
    ) {
        if grid.total == 0 {
            return;
        }
        self.commands.push(Command::Dispatch {
            name: kernel.name(),
            pipeline: kernel.pipeline().clone(),
            bind_group,
            grid,
        });
    }

    /// Copies the first `bytes` of range `src` into range `dst`. wgpu refuses a copy within
    /// one buffer, so disjoint ranges of one buffer are copied through a scratch buffer.
    pub(crate) fn copy(&mut self, src: BufferRange<'_>, dst: BufferRange<'_>, bytes: u64) {
        if bytes == 0 {
            return;
        }
        if src.buffer() == dst.buffer() {
            let via = crate::buffer::scratch(
                &self.gpu,
                "tied copy within one buffer",
                bytes,
                wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            );
            self.copy(src, BufferRange::whole(&via), bytes);
            self.copy(BufferRange::whole(&via), dst, bytes);
            return;
        }
        self.commands.push(Command::Copy {
            src: src.buffer().clone(),
            src_offset: src.offset(),
            dst: dst.buffer().clone(),
            dst_offset: dst.offset(),
            bytes,
        });
    }

    /// Zeroes the first `bytes` of range `range`.
    pub(crate) fn clear(&mut self, range: BufferRange<'_>, bytes: u64) {
        self.commands.push(Command::Clear {
            buffer: range.buffer().clone(),
            offset: range.offset(),
            bytes,
        });
    }

    /// Records the copies and clears (the only commands whose caller buffers no bind group
    /// has checked) into a throwaway encoder and finishes it, so that wgpu validates their
    /// buffers (another device, a missing usage) inside the caller's error scope. Nothing is
    /// submitted.
    fn check_transfers(&self, device: &wgpu::Device) {
        let transfers = || {
            self.commands
                .iter()
                .filter(|c| matches!(c, Command::Copy { .. } | Command::Clear { .. }))
        };
        if transfers().next().is_none() {
            return;
        }
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("tied transfer check (never submitted)"),
        });
        for command in transfers() {
            command.record(&mut encoder);
        }
        drop(encoder.finish());
    }

    fn replay(&self, encoder: &mut wgpu::CommandEncoder) {
        for command in &self.commands {
            command.record(encoder);
        }
    }
}

impl Command {
    fn record(&self, encoder: &mut wgpu::CommandEncoder) {
        match self {
            Command::Dispatch {
                name,
                pipeline,
                bind_group,
                grid,
            } => {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(*name),
                    timestamp_writes: None,
                });
                pass.set_pipeline(pipeline);
                pass.set_bind_group(0, bind_group, &[]);
                pass.dispatch_workgroups(grid.x, grid.y, 1);
            }
            Command::Copy {
                src,
                src_offset,
                dst,
                dst_offset,
                bytes,
            } => {
                encoder.copy_buffer_to_buffer(src, *src_offset, dst, *dst_offset, *bytes);
            }
            Command::Clear {
                buffer,
                offset,
                bytes,
            } => encoder.clear_buffer(buffer, *offset, Some(*bytes)),
        }
    }
}

/// Builds the commands of one public `record_*` call inside `gpu`'s error scope (so every
/// bind group is checked there), then records them into `encoder`; on error nothing is
/// recorded.
pub(crate) fn record_checked(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    build: impl FnOnce(&mut Recording) -> Result<()>,
) -> Result<()> {
    let recording = gpu.scoped(|| {
        let mut recording = Recording {
            commands: Vec::new(),
            gpu: gpu.clone(),
        };
        build(&mut recording)?;
        recording.check_transfers(gpu.device());
        Ok(recording)
    })?;
    recording.replay(encoder);
    Ok(())
}
/// The convenience paths' one way to run: inside error scopes, `record` creates what it needs
/// and records into a fresh encoder; the commands are then submitted. Returns what `record`
/// returned (the buffers to read back).
pub(crate) async fn record_and_submit<T>(
    gpu: &Gpu,
    record: impl FnOnce(&mut wgpu::CommandEncoder) -> Result<T>,
) -> Result<T> {
    let (encoder, out) = gpu
        .scoped_async(|| {
            let mut encoder = gpu.device().create_command_encoder(&Default::default());
            let out = record(&mut encoder)?;
            Ok((encoder, out))
        })
        .await?;
    submit(gpu, encoder).await?;
    Ok(out)
}

/// Submits `encoder`'s commands, with errors captured.
pub(crate) async fn submit(gpu: &Gpu, encoder: wgpu::CommandEncoder) -> Result<()> {
    gpu.scoped_async(|| {
        gpu.queue().submit([encoder.finish()]);
        Ok(())
    })
    .await
}

/// A plan or op that records on one [`Gpu`].
pub(crate) trait OnGpu {
    fn gpu(&self) -> &Gpu;
}

/// Implements [`OnGpu`] for `Type`, whose [`Gpu`] is at `self.path`:
/// `crate::on_gpu!(ReluPlan => train.gpu);`.
#[macro_export]
#[doc(hidden)]
macro_rules! on_gpu {
    ($ty:ty => $($field:ident).+) => {
        impl $crate::dispatch::OnGpu for $ty {
            fn gpu(&self) -> &$crate::gpu::Gpu {
                &self.$($field).+
            }
        }
    };
}

/// Declares public `record_*` calls, each recording what its body adds to a [`Recording`]
/// through [`record_checked`] (so nothing reaches the encoder on error). Every call takes
/// `encoder: &mut wgpu::CommandEncoder` after `&self`, returns `Result<()>`, and has the
/// lifetime `'a` for its ranges. An argument written as a bare name is a buffer range: the
/// call takes it as `impl Into<BufferRange<'a>>` and the body sees a plain [`BufferRange`].
/// An argument written `name: Type` is taken and passed as it is (`Type` may use `'a`, e.g.
/// `impl Into<MaybeRange<'a>>` or `&ForwardBuffers<impl Copy + Into<BufferRange<'a>>>`).
/// The body is a closure over the recording; `self` and the recording's name come from the
/// invocation (macro hygiene), so the body can use both:
///
/// The type implements [`OnGpu`].
///
/// ```ignore
/// crate::record_calls! {
///     /// Records the forward pass. ...
///     pub fn record_forward(&self, x, y, how: Reduction)
///         => |rec| self.build_forward(rec, x, y, how);
/// }
/// ```
#[macro_export]
#[doc(hidden)]
macro_rules! record_calls {
    ($($(#[$meta:meta])* $vis:vis fn $name:ident(&$self:ident $(, $arg:ident $(: $ty:ty)?)* $(,)?)
        => |$rec:ident| $body:expr;)*) => {
        $(
            $(#[$meta])*
            $vis fn $name<'a>(
                &$self,
                encoder: &mut wgpu::CommandEncoder
                $(, $arg: $crate::record_calls!(@type $($ty)?))*
            ) -> $crate::Result<()> {
                let gpu = $crate::dispatch::OnGpu::gpu($self);
                $(let $arg = $crate::record_calls!(@value $arg $($ty)?);)*
                $crate::dispatch::record_checked(gpu, encoder, |$rec| $body)
            }
        )*
    };
    (@type) => { impl ::core::convert::Into<$crate::buffer::BufferRange<'a>> };
    (@type $ty:ty) => { $ty };
    (@value $arg:ident) => { ::core::convert::Into::<$crate::buffer::BufferRange<'_>>::into($arg) };
    (@value $arg:ident $ty:ty) => { $arg };
}

/// Declares native-only `_blocking` twins of async host-slice calls:
///
/// ```ignore
/// crate::blocking_calls! {
///     /// Blocking [`Conv2d::forward`] (native only).
///     pub fn forward_blocking(&self, shape: &Conv2dShape, x: &[f32]) -> Result<Vec<f32>> => forward;
/// }
/// ```
#[macro_export]
#[doc(hidden)]
macro_rules! blocking_calls {
    ($($(#[$meta:meta])* $vis:vis fn $name:ident(&self $(, $arg:ident : $ty:ty)* $(,)?) -> $ret:ty => $async_fn:ident;)*) => {
        $(
            $(#[$meta])*
            #[cfg(not(target_arch = "wasm32"))]
            $vis fn $name(&self $(, $arg: $ty)*) -> $ret {
                pollster::block_on(self.$async_fn($($arg),*))
            }
        )*
    };
}
