//! Conv2d benches: forward, input gradient and weight gradient on the report's cases, GPU time
//! from timestamp queries (or wall time after a full sync when the device has none), with the
//! CPU twin beside them. Throughput is FLOPs (2 per multiply-add) as elements.
//!
//! Plans are tuned on the device (`Conv2d::plan_tuned`): each case's name ends with the
//! variant the tuner chose (tiles and K splits of the forward, input and weight gradient), and
//! the default heuristic's plan is timed beside it as `*_default` when it differs.
//!
//! `cargo bench --bench conv` (full cases); `TIED_BENCH_QUICK=1 cargo bench --bench conv`
//! (small cases for software GPUs). Choose the adapter with `WGPU_BACKEND`.

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tied::buffer::{upload, zeros};
use tied::conv::{cases, cpu, BackwardDataBuffers, BackwardWeightBuffers, Conv2d, ForwardBuffers};
use tied::verify::Rng;

fn conv_benches(c: &mut Criterion) {
    let gpu = common::gpu();
    let conv = Conv2d::new(&gpu).expect("pipelines");
    let shapes = common::cases(cases::quick, cases::full);
    let mut group = common::case_group(c, "conv2d");
    for (i, s) in shapes.iter().enumerate() {
        let mut rng = Rng::new(i as u64);
        let (x, w, b, dy) = (
            rng.vec(s.input_len()),
            rng.vec(s.weight_len()),
            rng.vec(s.bias_len()),
            rng.vec(s.output_len()),
        );
        let tuned = conv.plan_tuned(s).expect("tuned plan");
        let default = conv.plan(s).expect("plan");
        let (xb, wb, bb, dyb) = (
            upload(&gpu, "x", &x),
            upload(&gpu, "w", &w),
            upload(&gpu, "b", &b),
            upload(&gpu, "dy", &dy),
        );
        let (yb, gib, gwb, gbb) = (
            zeros(&gpu, "y", s.output_len()),
            zeros(&gpu, "gi", s.input_len()),
            zeros(&gpu, "gw", s.weight_len()),
            zeros(&gpu, "gb", s.bias_len()),
        );
        group.throughput(Throughput::Elements(s.flops() as u64));
        let differs = tuned.variant() != default.variant();
        let plans = [
            Some((&tuned, "")),
            differs.then_some((&default, "_default")),
        ];
        for (plan, suffix) in plans.into_iter().flatten() {
            let case = format!("{} [{}]", s.describe(), plan.variant());
            let fwd = ForwardBuffers {
                input: &xb,
                weight: &wb,
                bias: s.bias.then_some(&bb),
                output: &yb,
            };
            let bwd_data = BackwardDataBuffers {
                grad_output: &dyb,
                weight: &wb,
                grad_input: &gib,
            };
            let bwd_weight = BackwardWeightBuffers {
                grad_output: &dyb,
                input: &xb,
                grad_weight: &gwb,
                grad_bias: s.bias.then_some(&gbb),
            };
            type Record<'r> = &'r dyn Fn(&mut wgpu::CommandEncoder) -> tied::Result<()>;
            let ops: [(&str, Record); 3] = [
                ("forward", &|e| plan.record_forward(e, &fwd)),
                ("backward_data", &|e| {
                    plan.record_backward_data(e, &bwd_data)
                }),
                ("backward_weight", &|e| {
                    plan.record_backward_weight(e, &bwd_weight)
                }),
            ];
            for (op, record) in ops {
                group.bench_function(
                    BenchmarkId::new(format!("{op}_gpu{suffix}"), &case),
                    |bench| bench.iter_custom(|iters| common::gpu_time(&gpu, iters, record)),
                );
            }
        }
        let case = s.describe();
        let bias = s.bias.then_some(&b[..]);
        group.bench_function(BenchmarkId::new("forward_cpu_twin", &case), |bench| {
            bench.iter(|| cpu::forward(s, &x, &w, bias))
        });
        group.bench_function(
            BenchmarkId::new("backward_weight_cpu_twin", &case),
            |bench| bench.iter(|| cpu::backward_weight(s, &dy, &x)),
        );
    }
    group.finish();
}

criterion_group!(benches, conv_benches);
criterion_main!(benches);
