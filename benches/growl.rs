//! The CPU OWL prox (the fallback without a GPU) at 1e6 and 1e7 elements, v ~ uniform, OSCAR
//! weights; compare with skglm's `prox_vec`: 112 ms at 1e6 and 1.98 s at 1e7 on one core of
//! this kind of machine (see `shared/docs/growl-prox.md`).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tied::growl::{cpu, Weights};
use tied::verify::Rng;

fn growl_benches(c: &mut Criterion) {
    let quick = std::env::var_os("TIED_BENCH_QUICK").is_some();
    let sizes: &[usize] = if quick {
        &[100_000]
    } else {
        &[1_000_000, 10_000_000]
    };
    let mut group = c.benchmark_group("owl_prox_cpu");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for &n in sizes {
        let v = Rng::new(n as u64).vec(n);
        let w = Weights::Oscar { l1: 0.1, l2: 1e-7 }
            .sequence(n, 1.0)
            .unwrap();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| cpu::owl_prox(&v, &w).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, growl_benches);
criterion_main!(benches);
