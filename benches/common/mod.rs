//! Shared bench setup: the device, the quick switch, GPU timing for `iter_custom`.

#![allow(dead_code)]

use std::time::Duration;

use tied::timing::time_gpu;
use tied::Gpu;

/// The default adapter (`WGPU_BACKEND` / `WGPU_ADAPTER_NAME` choose it).
pub fn gpu() -> Gpu {
    Gpu::new_blocking().expect("a GPU adapter (install lavapipe or set WGPU_BACKEND)")
}

/// `TIED_BENCH_QUICK=1`: small cases for software GPUs.
pub fn quick() -> bool {
    std::env::var_os("TIED_BENCH_QUICK").is_some()
}

/// The GPU time of `iters` repetitions of the recorded work, all in one submission between two
/// timestamps (or wall time after a full sync where the device has no timestamps).
pub fn gpu_time(
    gpu: &Gpu,
    iters: u64,
    record: impl FnMut(&mut wgpu::CommandEncoder) -> tied::Result<()>,
) -> Duration {
    let t = time_gpu(gpu, iters.min(u64::from(u32::MAX)) as u32, 1, record).expect("gpu run");
    Duration::from_secs_f64(t.ms * 1e-3 * iters as f64)
}
