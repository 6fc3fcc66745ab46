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

/// A whole buffer as a binding.
pub(crate) fn whole(b: &wgpu::Buffer) -> wgpu::BufferBinding<'_> {
    b.as_entire_buffer_binding()
}

/// `bytes` of `b` from `offset` as a binding (at least 4 bytes).
pub(crate) fn range(b: &wgpu::Buffer, offset: u64, bytes: u64) -> wgpu::BufferBinding<'_> {
    wgpu::BufferBinding {
        buffer: b,
        offset,
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
