//! Tied groups: reduce, broadcast and the fused reduce-broadcast on the report's maps, GPU time
//! from timestamps (or wall time after a full sync), with the CPU twin side by side, and the
//! reduction with the other staging choice beside, where it differs (see `tied::tying::Staging`).
//! Throughput is the bytes that must move (tensor, ids, group values); plans read in place
//! (groups in stretches of neighbouring parameters) read runs instead of ids, so theirs counts
//! bytes not moved.
//!
//! `cargo bench --bench tying`; `TIED_BENCH_QUICK=1` for small maps on software GPUs.

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tied::buffer::{upload, zeros};
use tied::tying::{cases, cpu, Reduction, Staging, TieLayout, Ties};
use tied::verify::Rng;

fn tie_benches(c: &mut Criterion) {
    let gpu = common::gpu();
    let ties = Ties::new(&gpu).expect("pipelines");
    let maps = common::cases(cases::quick, cases::full);
    let mut group = common::case_group(c, "tied");
    for (i, case) in maps.iter().enumerate() {
        let map = &case.map;
        let x = Rng::new(i as u64).vec(map.layout().params_len());
        let plan = ties.plan(map).expect("plan");
        let src = upload(&gpu, "src", &x);
        let values = zeros(&gpu, "values", map.values_len());
        let bytes =
            4 * (map.layout().params_len() + map.layout().units() + map.values_len()) as u64;
        group.throughput(Throughput::Bytes(bytes));
        group.bench_function(BenchmarkId::new("reduce_gpu", &case.name), |b| {
            b.iter_custom(|iters| {
                common::gpu_time(&gpu, iters, |e| {
                    plan.record_reduce(e, &src, &values, Reduction::Sum)
                })
            })
        });
        // The same reduction with the other staging choice, where that changes the plan.
        let (other, label) = if plan.staged() {
            (Staging::Never, "reduce_gpu_unstaged")
        } else {
            (Staging::Always, "reduce_gpu_staged")
        };
        if let TieLayout::Scalar { .. } = map.layout() {
            let alt = ties.plan_with(map, other).expect("plan");
            if alt.staged() != plan.staged() {
                group.bench_function(BenchmarkId::new(label, &case.name), |b| {
                    b.iter_custom(|iters| {
                        common::gpu_time(&gpu, iters, |e| {
                            alt.record_reduce(e, &src, &values, Reduction::Sum)
                        })
                    })
                });
            }
        }
        group.bench_function(BenchmarkId::new("reduce_cpu_twin", &case.name), |b| {
            b.iter(|| cpu::reduce(map, &x, Reduction::Sum))
        });
        group.bench_function(BenchmarkId::new("broadcast_gpu", &case.name), |b| {
            b.iter_custom(|iters| {
                common::gpu_time(&gpu, iters, |e| plan.record_broadcast(e, &src, &values))
            })
        });
        group.bench_function(BenchmarkId::new("reduce_broadcast_gpu", &case.name), |b| {
            b.iter_custom(|iters| {
                common::gpu_time(&gpu, iters, |e| {
                    plan.record_reduce_broadcast(e, &src, &values, Reduction::Mean)
                })
            })
        });
        group.bench_function(
            BenchmarkId::new("reduce_broadcast_cpu_twin", &case.name),
            |b| b.iter(|| cpu::reduce_broadcast(map, &x, Reduction::Mean)),
        );
    }
    group.finish();
}

criterion_group!(benches, tie_benches);
criterion_main!(benches);
