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

/// A group of `name` for the case-list benches: 10 samples after a 0.5 s warm-up, 2 s of
/// measurement each.
pub fn case_group<'a>(
    c: &'a mut criterion::Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group
}

/// The quick cases under [`quick`], else the full ones.
pub fn cases<T>(quick_cases: fn() -> Vec<T>, full_cases: fn() -> Vec<T>) -> Vec<T> {
    if quick() {
        quick_cases()
    } else {
        full_cases()
    }
}
