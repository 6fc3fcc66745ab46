//! Honest GPU timing for the report and the benches (native only).
//!
//! With `TIMESTAMP_QUERY`, the work is bracketed by two empty compute passes whose
//! pass-boundary timestamps give the GPU time (portable: no in-encoder timestamps needed).
//! Without it, the wall time from submit to a completed `poll(wait)` is used. [`Timing`] says
//! which one a figure came from.

use std::time::Instant;

use crate::dispatch;
use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// How a time was measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimingMethod {
    /// GPU timestamp queries around the work.
    Timestamps,
    /// Host wall clock from submit to completion (includes submit overhead).
    WallClock,
}

impl TimingMethod {
    /// `"timestamps"` or `"wall"`.
    pub fn name(self) -> &'static str {
        match self {
            TimingMethod::Timestamps => "timestamps",
            TimingMethod::WallClock => "wall",
        }
    }
}

/// A measured time per repetition.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Milliseconds per repetition (the minimum over rounds).
    pub ms: f64,
    /// How it was measured.
    pub method: TimingMethod,
}

fn wait(gpu: &Gpu) -> Result<()> {
    gpu.device()
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| Error::Readback(format!("waiting for the GPU failed: {e}")))?;
    gpu.check_lost()
}

/// Times `record` (which records one repetition of the work into the encoder): one warm-up
/// submission, then `rounds` submissions of `reps` repetitions each; returns the fastest
/// round's time per repetition.
///
/// # Errors
/// Errors captured while recording or submitting, device loss.
pub fn time_gpu(
    gpu: &Gpu,
    reps: u32,
    rounds: u32,
    mut record: impl FnMut(&mut wgpu::CommandEncoder) -> Result<()>,
) -> Result<Timing> {
    let device = gpu.device();
    let reps = reps.max(1);
    let mut warm = device.create_command_encoder(&Default::default());
    record(&mut warm)?;
    pollster::block_on(dispatch::submit(gpu, warm))?;
    wait(gpu)?;

    let stamps = gpu.has_timestamps().then(|| {
        let set = device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("tied timer"),
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        });
        let resolve = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("tied timer resolve"),
            size: 16,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let read = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("tied timer read"),
            size: 16,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        (set, resolve, read)
    });
    let mut best_ts = f64::INFINITY;
    let mut best_wall = f64::INFINITY;
    for _ in 0..rounds.max(1) {
        let mut encoder = device.create_command_encoder(&Default::default());
        if let Some((set, _, _)) = &stamps {
            encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("timer begin"),
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set: set,
                    beginning_of_pass_write_index: Some(0),
                    end_of_pass_write_index: None,
                }),
            });
        }
        for _ in 0..reps {
            record(&mut encoder)?;
        }
        if let Some((set, resolve, read)) = &stamps {
            encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("timer end"),
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set: set,
                    beginning_of_pass_write_index: None,
                    end_of_pass_write_index: Some(1),
                }),
            });
            encoder.resolve_query_set(set, 0..2, resolve, 0);
            encoder.copy_buffer_to_buffer(resolve, 0, read, 0, 16);
        }
        let start = Instant::now();
        pollster::block_on(dispatch::submit(gpu, encoder))?;
        wait(gpu)?;
        best_wall = best_wall.min(start.elapsed().as_secs_f64() * 1e3 / f64::from(reps));
        if let Some((_, _, read)) = &stamps {
            let (tx, rx) = std::sync::mpsc::channel();
            read.map_async(wgpu::MapMode::Read, .., move |r| {
                let _ = tx.send(r);
            });
            wait(gpu)?;
            rx.recv()
                .map_err(|_| Error::Readback("timestamp map callback dropped".into()))?
                .map_err(|e| Error::Readback(e.to_string()))?;
            let view = read
                .get_mapped_range(..)
                .map_err(|e| Error::Readback(e.to_string()))?;
            let t: [u64; 2] = bytemuck::pod_read_unaligned(&view[..16]);
            drop(view);
            read.unmap();
            let ns = t[1].wrapping_sub(t[0]) as f64 * f64::from(gpu.queue().get_timestamp_period());
            if t[1] > t[0] {
                best_ts = best_ts.min(ns * 1e-6 / f64::from(reps));
            }
        }
    }
    // Timestamps that are missing or implausible (zero) fall back to the wall clock.
    if best_ts.is_finite() && best_ts > 0.0 && best_ts <= best_wall * 1.05 {
        Ok(Timing {
            ms: best_ts,
            method: TimingMethod::Timestamps,
        })
    } else {
        Ok(Timing {
            ms: best_wall,
            method: TimingMethod::WallClock,
        })
    }
}
