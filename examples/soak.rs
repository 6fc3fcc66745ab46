//! Soak: host memory (RSS) over many record/submit cycles and plan builds.
//!
//! `cargo run --release --example soak [cycles] [plans]` (defaults 10,000 and 2,000). Each
//! cycle records a conv forward, input and weight gradient, a tied reduce-broadcast and an
//! OWL prox into one encoder and submits it (waiting every 50 cycles); each plan build makes a
//! conv, tie, GrOWL and sort plan and drops them. RSS is read from `/proc/self/statm` after a
//! warm-up (the first 10% of each phase) and at the end; the growth between is printed.
//! Linux only (it reads procfs).

use tied::conv::{BackwardDataBuffers, BackwardWeightBuffers, Conv2d, Conv2dShape, ForwardBuffers};
use tied::growl::{GroupLayout, GrowlProx, OwlProx};
use tied::sort::RadixSort;
use tied::tying::{Reduction, TieLayout, TieMap, Ties};
use tied::{buffer, Gpu};

fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("procfs");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("statm");
    pages * 4
}

fn wait(gpu: &Gpu) {
    gpu.device()
        .poll(wgpu::PollType::wait_indefinitely())
        .expect("poll");
}

/// Runs `step(0..n)`, submitting and waiting every 50 steps, and prints the RSS after the
/// first tenth (the warm-up) and at the end.
fn soak(
    gpu: &Gpu,
    n: usize,
    what: &str,
    mut step: impl FnMut(usize) -> tied::Result<()>,
) -> tied::Result<()> {
    let warm = (n / 10).max(1);
    let t = std::time::Instant::now();
    let mut before = 0;
    for i in 0..n {
        step(i)?;
        if i % 50 == 49 {
            gpu.queue().submit([]);
            wait(gpu);
        }
        if i + 1 == warm {
            wait(gpu);
            before = rss_kib();
        }
    }
    wait(gpu);
    let after = rss_kib();
    println!(
        "{n} {what} in {:.1} s: RSS {before} KiB after {warm}, {after} KiB at the end: growth {} KiB",
        t.elapsed().as_secs_f64(),
        after as i64 - before as i64
    );
    Ok(())
}

fn main() -> tied::Result<()> {
    let mut args = std::env::args().skip(1);
    let cycles: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let plans: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let gpu = Gpu::new_blocking()?;
    println!(
        "device: {} ({:?})",
        gpu.adapter_info().name,
        gpu.adapter_info().backend
    );
    let conv = Conv2d::new(&gpu)?;
    let ties = Ties::new(&gpu)?;
    let owl = OwlProx::new(&gpu)?;
    let growl = GrowlProx::new(&gpu)?;
    let sort = RadixSort::new(&gpu)?;

    let s = Conv2dShape::new(1, 2, 3, [6, 6], [3, 3])
        .padding(1)
        .with_bias(true);
    let plan = conv.plan(&s)?;
    let buf = |n: usize| buffer::upload(&gpu, "soak", &vec![0.25; n]);
    let (x, w, b, y) = (
        buf(s.input_len()),
        buf(s.weight_len()),
        buf(s.bias_len()),
        buf(s.output_len()),
    );
    let (gx, gw, gb) = (buf(s.input_len()), buf(s.weight_len()), buf(s.bias_len()));
    let map = TieMap::new(
        TieLayout::Scalar { len: 64 },
        4,
        (0..64).map(|i| i % 4).collect(),
    )?;
    let tie_plan = ties.plan(&map)?;
    let (grads, values) = (buf(64), buf(4));
    let owl_plan = owl.plan(32)?;
    let (v, ow, out) = (
        buf(32),
        buffer::upload(
            &gpu,
            "w",
            &(0..32).rev().map(|k| k as f32 * 0.01).collect::<Vec<_>>(),
        ),
        buf(32),
    );

    let cycle = |_: usize| -> tied::Result<()> {
        let mut e = gpu.device().create_command_encoder(&Default::default());
        plan.record_forward(
            &mut e,
            &ForwardBuffers {
                input: &x,
                weight: &w,
                bias: Some(&b),
                output: &y,
            },
        )?;
        plan.record_backward_data(
            &mut e,
            &BackwardDataBuffers {
                grad_output: &y,
                weight: &w,
                grad_input: &gx,
            },
        )?;
        plan.record_backward_weight(
            &mut e,
            &BackwardWeightBuffers {
                grad_output: &y,
                input: &x,
                grad_weight: &gw,
                grad_bias: Some(&gb),
            },
        )?;
        tie_plan.record_reduce_broadcast(&mut e, &grads, &values, Reduction::Mean)?;
        owl_plan.record_into(&mut e, &v, &ow, &out, None)?;
        gpu.queue().submit([e.finish()]);
        Ok(())
    };
    soak(&gpu, cycles, "record/submit cycles", cycle)?;

    let shapes = [
        Conv2dShape::new(2, 3, 4, [8, 8], [3, 3]).padding(1),
        Conv2dShape::new(1, 4, 4, [9, 9], [3, 3])
            .stride(2)
            .with_bias(true),
    ];
    let build = |i: usize| -> tied::Result<()> {
        let _ = conv.plan(&shapes[i % 2])?;
        let _ = ties.plan(&map)?;
        let _ = growl.plan(GroupLayout::Rows { rows: 16, cols: 8 })?;
        let _ = sort.plan(1000 + i % 7)?;
        Ok(())
    };
    // (wgpu frees a plan's uploads, its queue writes, at the next submission: soak submits.)
    soak(
        &gpu,
        plans,
        "plan builds (conv, tie, GrOWL, sort each)",
        build,
    )?;
    Ok(())
}
