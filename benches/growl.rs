//! The OWL prox at 1e6 and 1e7 elements (v uniform, OSCAR weights), on the GPU (timestamps, or
//! wall time after a full sync) and on the CPU (the fallback twin). skglm's `prox_vec` takes
//! 112 ms at 1e6 and 1.98 s at 1e7 on one core of this kind of machine
//! (`shared/docs/growl-prox.md`).

mod common;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tied::buffer::upload;
use tied::growl::{cpu, OwlProx, Weights};
use tied::verify::Rng;

fn growl_benches(c: &mut Criterion) {
    let sizes: &[usize] = if common::quick() {
        &[100_000]
    } else {
        &[1_000_000, 10_000_000]
    };
    let gpu = common::gpu();
    let owl = OwlProx::new(&gpu).expect("pipelines");
    let mut group = c.benchmark_group("owl_prox");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for &n in sizes {
        let v = Rng::new(n as u64).vec(n);
        let w = Weights::Oscar { l1: 0.1, l2: 1e-7 }
            .sequence(n, 1.0)
            .unwrap();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("cpu_twin", n), |b| {
            b.iter(|| cpu::owl_prox(&v, &w).unwrap())
        });
        let plan = owl.plan(n).expect("plan");
        let (vb, v0, wb) = (
            upload(&gpu, "v", &v),
            upload(&gpu, "v0", &v),
            upload(&gpu, "w", &w),
        );
        group.bench_function(BenchmarkId::new("gpu", n), |b| {
            b.iter_custom(|iters| {
                common::gpu_time(&gpu, iters, |e| {
                    e.copy_buffer_to_buffer(&v0, 0, &vb, 0, (n * 4) as u64);
                    plan.record(e, &vb, &wb, None)
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, growl_benches);
criterion_main!(benches);
