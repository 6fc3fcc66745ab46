//! Device probes: copy bandwidth (bytes read + written as throughput) and FMA throughput
//! (FLOPs as elements), GPU time from timestamps where available.

mod common;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tied::probe::Probes;

fn probe_benches(c: &mut Criterion) {
    let gpu = common::gpu();
    let probes = Probes::new(&gpu).expect("pipelines");
    let quick = common::quick();
    let mut group = c.benchmark_group("probes");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(2));
    let bytes: u64 = if quick { 16 << 20 } else { 256 << 20 };
    let one = probes.copy(bytes, 1).expect("copy");
    group.throughput(Throughput::Bytes(one.work as u64));
    group.bench_function("copy", |b| {
        b.iter_custom(|iters| {
            let r = probes.copy(bytes, iters as u32).expect("copy");
            Duration::from_secs_f64(r.timing.ms * 1e-3 * iters as f64)
        })
    });
    let (wgs, steps) = if quick { (64, 256) } else { (4096, 4096) };
    let one = probes.fma(wgs, steps, 1).expect("fma");
    group.throughput(Throughput::Elements(one.work as u64));
    group.bench_function("fma", |b| {
        b.iter_custom(|iters| {
            let r = probes.fma(wgs, steps, iters as u32).expect("fma");
            Duration::from_secs_f64(r.timing.ms * 1e-3 * iters as f64)
        })
    });
    group.finish();
}

criterion_group!(benches, probe_benches);
criterion_main!(benches);
