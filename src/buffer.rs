//! Buffers for host data: upload, zeros, read back, and the usages the crate's ops need.
//!
//! Every op records on caller-owned `wgpu::Buffer`s; these helpers make such buffers from host
//! slices and read results back (async, so it works on the web).

use crate::dispatch::check_buffer_unbound;
use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// Creates a buffer holding `bytes` (padded to at least 4 bytes and a multiple of 4).
///
/// Written through the queue rather than `mapped_at_creation`, so that a lost device yields
/// a captured error instead of a panic.
fn buffer_with(gpu: &Gpu, label: &str, bytes: &[u8], usage: wgpu::BufferUsages) -> wgpu::Buffer {
    let size = (bytes.len() as u64).div_ceil(4).max(1) * 4;
    let buffer = gpu.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size,
        usage: usage | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    if bytes.len().is_multiple_of(4) {
        gpu.queue().write_buffer(&buffer, 0, bytes);
    } else {
        let mut padded = bytes.to_vec();
        padded.resize(size as usize, 0);
        gpu.queue().write_buffer(&buffer, 0, &padded);
    }
    buffer
}

/// Creates a uniform buffer holding `value`.
pub(crate) fn uniform<T: bytemuck::Pod>(gpu: &Gpu, label: &str, value: &T) -> wgpu::Buffer {
    buffer_with(
        gpu,
        label,
        bytemuck::bytes_of(value),
        wgpu::BufferUsages::UNIFORM,
    )
}

/// Creates a storage buffer holding `data` (at least 4 bytes, so empty tables bind).
pub(crate) fn storage_init<T: bytemuck::Pod>(
    gpu: &Gpu,
    label: &str,
    data: &[T],
    extra: wgpu::BufferUsages,
) -> wgpu::Buffer {
    buffer_with(
        gpu,
        label,
        bytemuck::cast_slice(data),
        wgpu::BufferUsages::STORAGE | extra,
    )
}

/// A byte range of a buffer that an op binds as one tensor: `size` bytes of `buffer` from
/// `offset`. Every public `record_*` call takes one (as `impl Into<BufferRange>`), so a whole
/// buffer (`&buffer`), a `wgpu::BufferSlice` (`buffer.slice(a..b)`) or a range of a pooled
/// allocation ([`BufferRange::new`]) all work.
///
/// Checked when recorded (each an [`Error`] naming the range, nothing recorded): the offset
/// must be a multiple of the device's `min_storage_buffer_offset_alignment` (256 on most
/// devices) and the size a multiple of 4 ([`Error::MisalignedRange`]); the range must lie in
/// its buffer ([`Error::RangeOutOfBounds`]); it must hold what the op needs
/// ([`Error::BufferTooSmall`]) and, unless the op binds it in windows, fit one storage binding
/// ([`Error::LimitExceeded`]). An op's output may share a buffer with its inputs as long as
/// the byte ranges do not overlap ([`Error::Aliasing`] otherwise). An op reads and writes only
/// inside its ranges: the rest of the buffer is untouched. (Every caller range is bound as
/// storage, never as a uniform: the crate's uniforms are its own whole buffers, so
/// `min_uniform_buffer_offset_alignment` never applies to a caller's range.)
///
/// Performance: a pass that binds one buffer both read-only and writable (an input and an
/// output in disjoint ranges of one pool) runs the kernel's shared-buffer twin, whose storage
/// bindings are all `read_write` (wgpu tracks usage per buffer, not per range); the twin is
/// built the first time such a pass is recorded on a device. Copies between two ranges of one
/// buffer (the `record_into` calls) go through a scratch buffer, which wgpu requires.
#[derive(Clone, Copy, Debug)]
pub struct BufferRange<'a> {
    buffer: &'a wgpu::Buffer,
    offset: u64,
    size: u64,
}

impl<'a> BufferRange<'a> {
    /// `size` bytes of `buffer` from `offset` (in bytes). Not checked here: the record call
    /// that binds it checks alignment and bounds.
    pub fn new(buffer: &'a wgpu::Buffer, offset: u64, size: u64) -> Self {
        Self {
            buffer,
            offset,
            size,
        }
    }

    /// The whole of `buffer`.
    pub fn whole(buffer: &'a wgpu::Buffer) -> Self {
        Self::new(buffer, 0, buffer.size())
    }

    /// The buffer.
    pub fn buffer(&self) -> &'a wgpu::Buffer {
        self.buffer
    }

    /// The first byte, from the buffer's start.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The length in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// One past the last byte (saturating).
    pub(crate) fn end(&self) -> u64 {
        self.offset.saturating_add(self.size)
    }

    /// Whether `self` and `other` share a byte of one buffer (empty ranges share none).
    pub fn overlaps(&self, other: &BufferRange<'_>) -> bool {
        self.buffer == other.buffer
            && self.size > 0
            && other.size > 0
            && self.offset < other.end()
            && other.offset < self.end()
    }

    /// The range as a binding. An empty range is bound as an empty binding at the buffer's end,
    /// which the kernels' `run` replaces with the device's stand-in (a binding cannot be empty).
    pub(crate) fn binding(&self) -> wgpu::BufferBinding<'a> {
        if self.offset == 0 && self.size == self.buffer.size() {
            return self.buffer.as_entire_buffer_binding();
        }
        wgpu::BufferBinding {
            buffer: self.buffer,
            offset: if self.size == 0 {
                self.buffer.size()
            } else {
                self.offset
            },
            size: std::num::NonZeroU64::new(self.size),
        }
    }
}

impl<'a> From<&'a wgpu::Buffer> for BufferRange<'a> {
    fn from(buffer: &'a wgpu::Buffer) -> Self {
        Self::whole(buffer)
    }
}

impl<'a> From<wgpu::BufferSlice<'a>> for BufferRange<'a> {
    fn from(slice: wgpu::BufferSlice<'a>) -> Self {
        Self::new(slice.buffer(), slice.offset(), slice.size())
    }
}

impl<'a> From<&BufferRange<'a>> for BufferRange<'a> {
    fn from(range: &BufferRange<'a>) -> Self {
        *range
    }
}

/// An optional [`BufferRange`] argument (a mask, a bias, a payload): `None`, `Some(&buffer)`,
/// `&buffer`, a `BufferRange` or a `wgpu::BufferSlice` all convert into one.
#[derive(Clone, Copy, Debug, Default)]
pub struct MaybeRange<'a>(pub Option<BufferRange<'a>>);

impl<'a> From<Option<&'a wgpu::Buffer>> for MaybeRange<'a> {
    fn from(buffer: Option<&'a wgpu::Buffer>) -> Self {
        Self(buffer.map(BufferRange::whole))
    }
}

impl<'a> From<&'a wgpu::Buffer> for MaybeRange<'a> {
    fn from(buffer: &'a wgpu::Buffer) -> Self {
        Self(Some(BufferRange::whole(buffer)))
    }
}

impl<'a> From<BufferRange<'a>> for MaybeRange<'a> {
    fn from(range: BufferRange<'a>) -> Self {
        Self(Some(range))
    }
}

impl<'a> From<wgpu::BufferSlice<'a>> for MaybeRange<'a> {
    fn from(slice: wgpu::BufferSlice<'a>) -> Self {
        Self(Some(slice.into()))
    }
}

/// Makes a `*Buffers` struct generic over its fields (`&wgpu::Buffer` or [`BufferRange`])
/// convertible into its [`BufferRange`] form, which the record calls bind: each listed struct
/// with its required fields, then (after `;`) its optional ones.
macro_rules! buffers_ranges {
    ($($name:ident { $($field:ident),* ; $($opt:ident),* })*) => {$(
        impl<'a, B: Copy + Into<$crate::buffer::BufferRange<'a>>> From<&$name<B>>
            for $name<$crate::buffer::BufferRange<'a>>
        {
            fn from(b: &$name<B>) -> Self {
                $name {
                    $($field: b.$field.into(),)*
                    $($opt: b.$opt.map(Into::into),)*
                }
            }
        }
    )*};
}
pub(crate) use buffers_ranges;

/// A tensor (a caller's range or a buffer of the crate's own) as a binding.
pub(crate) fn whole<'a>(b: impl Into<BufferRange<'a>>) -> wgpu::BufferBinding<'a> {
    b.into().binding()
}

/// `bytes` of `b` from `offset` (relative to the range's start) as a binding (at least 4
/// bytes): a window of a tensor.
pub(crate) fn range<'a>(
    b: impl Into<BufferRange<'a>>,
    offset: u64,
    bytes: u64,
) -> wgpu::BufferBinding<'a> {
    let b = b.into();
    wgpu::BufferBinding {
        buffer: b.buffer,
        offset: b.offset + offset,
        size: std::num::NonZeroU64::new(bytes.max(4)),
    }
}

/// Usage for buffers the crate creates for host data: bindable, uploadable, readable back.
pub const TENSOR_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_DST)
    .union(wgpu::BufferUsages::COPY_SRC);

/// Uploads `data` into a new storage buffer with [`TENSOR_USAGE`] (at least 4 bytes).
///
/// Infallible by signature: wgpu reports a failure (a slice past the device's
/// `max_buffer_size`, out of memory) to the device's error handler, which on a device you
/// adopted is yours (wgpu's default panics). Check sizes first, or use the host-slice calls,
/// which capture such errors.
pub fn upload(gpu: &Gpu, label: &str, data: &[f32]) -> wgpu::Buffer {
    storage_init(gpu, label, data, TENSOR_USAGE)
}

/// Creates an uninitialised storage buffer (plus `extra` usages) of `bytes` (at least 4): a
/// plan's scratch.
pub(crate) fn scratch(
    gpu: &Gpu,
    label: &str,
    bytes: u64,
    extra: wgpu::BufferUsages,
) -> wgpu::Buffer {
    gpu.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(4),
        usage: wgpu::BufferUsages::STORAGE | extra,
        mapped_at_creation: false,
    })
}

/// Creates a zeroed storage buffer of `elements` f32 with [`TENSOR_USAGE`] (at least 4 bytes).
/// Failures go to the device's error handler, as for [`upload`].
pub fn zeros(gpu: &Gpu, label: &str, elements: usize) -> wgpu::Buffer {
    gpu.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (elements as u64).saturating_mul(4).max(4),
        usage: TENSOR_USAGE,
        mapped_at_creation: false,
    })
}

/// Copies the first `elements` f32 of `buffer` (which needs `COPY_SRC`) back to the host.
///
/// Uses `map_async` and awaits the callback, so it works on the web; on native it also polls
/// the device until the copy is done. Submits one command buffer.
///
/// # Errors
/// [`Error::DeviceLost`], [`Error::Readback`], or errors captured while recording the copy.
pub async fn read_back(gpu: &Gpu, buffer: &wgpu::Buffer, elements: usize) -> Result<Vec<f32>> {
    if elements == 0 {
        return Ok(Vec::new());
    }
    let elements = u64::try_from(elements).unwrap_or(u64::MAX);
    check_buffer_unbound(
        "read_back source",
        buffer,
        elements,
        wgpu::BufferUsages::COPY_SRC,
    )?;
    // The buffer holds `elements` words, so this does not overflow.
    let bytes = elements * 4;
    let device = gpu.device();
    // Everything that can fail, the mapping included, runs inside the error scopes: on an
    // adopted device wgpu's default handler would panic.
    let (staging, rx) = gpu
        .scoped_async(|| {
            let staging = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("tied readback"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut encoder = device.create_command_encoder(&Default::default());
            encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, bytes);
            gpu.queue().submit([encoder.finish()]);
            let (tx, rx) = futures::channel::oneshot::channel();
            staging.map_async(wgpu::MapMode::Read, .., move |r| {
                let _ = tx.send(r);
            });
            Ok((staging, rx))
        })
        .await?;
    #[cfg(not(target_arch = "wasm32"))]
    if let Err(e) = device.poll(wgpu::PollType::wait_indefinitely()) {
        // A lost device is the better answer when it is what happened.
        gpu.check_lost_async().await?;
        return Err(Error::Readback(format!("waiting for the GPU failed: {e}")));
    }
    let mapped = match rx.await {
        Ok(mapped) => mapped,
        Err(_) => {
            gpu.scoped_async(|| Ok(())).await?;
            return Err(Error::Readback("the map callback was dropped".into()));
        }
    };
    if let Err(e) = mapped {
        gpu.scoped_async(|| Ok(())).await?;
        return Err(Error::Readback(format!("{e} (was the device lost?)")));
    }
    let view = staging
        .get_mapped_range(..)
        .map_err(|e| Error::Readback(e.to_string()))?;
    let out = bytemuck::pod_collect_to_vec::<u8, f32>(&view);
    drop(view);
    staging.unmap();
    Ok(out)
}

/// [`read_back`] of a buffer of `u32` (ids, block ids, payloads).
pub(crate) async fn read_back_u32(
    gpu: &Gpu,
    buffer: &wgpu::Buffer,
    elements: usize,
) -> Result<Vec<u32>> {
    let words = read_back(gpu, buffer, elements).await?;
    Ok(words.into_iter().map(f32::to_bits).collect())
}
