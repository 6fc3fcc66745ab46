//! The crate's report: every kernel on the default adapter, checked against its CPU twin,
//! timed, and stated as a fraction of what this device does (copy and FMA probes).
//!
//! ```text
//! cargo run --release --example report [-- --quick] [--json]
//! ```
//! `--quick` uses small cases (well under a minute on a software GPU); `--json` prints one
//! JSON object per line; `--only conv|sort|owl|growl|tied` runs one kernel family (the probes
//! always run). Choose the adapter with `WGPU_BACKEND` / `WGPU_ADAPTER_NAME`.
//!
//! `roofline` is the time the work would take at the probes' rates divided by the measured
//! time: for the conv kernels `max(FLOPs / FMA rate, bytes / copy bandwidth) / time` (the
//! roofline model: whichever bound applies), for the probes 1 by definition.
//!
//! `--tuning default|cached|measure` chooses how the conv plans pick their kernels
//! (`tied::conv::Tuning`; default: `measure`, so each conv row shows the variant the tuner
//! chose, in the `variant` field); `--tuning-file FILE` loads the device's tuning cache from
//! FILE when it exists and saves it there at the end. `--peer-timing` times the conv cases A-F
//! as the burn peer does and prints its JSON lines; `--peer FILE` adds the ratios against the
//! peer's JSON lines (see `report/peer.rs`).
//!
//! Scalar tie maps whose members lie scattered get a second `tied_reduce` row with the other
//! staging choice, its case suffixed `(staged)` or `(unstaged)` (see `tied::tying::Staging`).

#[path = "report/peer.rs"]
mod peer;

use std::time::Instant;

use tied::buffer::{read_back, upload, zeros};
use tied::conv::{
    cases, cpu, BackwardDataBuffers, BackwardWeightBuffers, Conv2d, Conv2dShape, ForwardBuffers,
    Tuning,
};
use tied::growl::{GroupLayout, GrowlProx, Weights};
use tied::probe::Probes;
use tied::sort::{RadixSort, SortOrder};
use tied::timing::{time_gpu, Timing};
use tied::tying::{self, Reduction, Staging, Ties};
use tied::verify::{abs, max_rel_err, Rng};
use tied::Gpu;

struct Row {
    kernel: String,
    case: String,
    gpu_ms: f64,
    cpu_ms: Option<f64>,
    gflops: Option<f64>,
    gbps: Option<f64>,
    roofline: f64,
    max_rel_err: Option<f64>,
    method: &'static str,
    /// The kernels a conv row ran (tiles and K splits per GEMM).
    variant: Option<String>,
}

impl Row {
    /// A row for a memory-bound kernel: GB/s of the bytes it must move, as a fraction of the
    /// copy probe.
    fn memory_bound(
        kernel: &str,
        case: String,
        t: Timing,
        cpu_ms: f64,
        bytes: f64,
        copy_gbps: f64,
        err: f64,
    ) -> Self {
        Row {
            kernel: kernel.into(),
            case,
            gpu_ms: t.ms,
            cpu_ms: Some(cpu_ms),
            gflops: None,
            gbps: Some(bytes / (t.ms * 1e-3) / 1e9),
            roofline: bytes / (copy_gbps * 1e9) / (t.ms * 1e-3),
            max_rel_err: Some(err),
            method: t.method.name(),
            variant: None,
        }
    }
}

struct Report {
    json: bool,
    backend: String,
    adapter: String,
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_num(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.6e}"),
        _ => "null".into(),
    }
}

impl Report {
    fn header(&self) {
        if !self.json {
            println!("adapter: {}  backend: {}", self.adapter, self.backend);
            println!(
                "{:<24} {:<34} {:>10} {:>10} {:>9} {:>9} {:>8} {:>8} {:>10} {:>6} variant",
                "kernel",
                "case",
                "gpu_ms",
                "cpu_ms",
                "GFLOP/s",
                "GB/s",
                "roofline",
                "speedup",
                "max_rel",
                "timer",
            );
        }
    }

    fn print(&self, r: &Row) {
        if self.json {
            println!(
                "{{\"kernel\":{},\"case\":{},\"backend\":{},\"adapter\":{},\"gpu_ms\":{},\"cpu_ms\":{},\"gflops\":{},\"gbps\":{},\"roofline\":{},\"max_rel_err\":{},\"timer\":{},\"variant\":{}}}",
                json_str(&r.kernel),
                json_str(&r.case),
                json_str(&self.backend),
                json_str(&self.adapter),
                json_num(Some(r.gpu_ms)),
                json_num(r.cpu_ms),
                json_num(r.gflops),
                json_num(r.gbps),
                json_num(Some(r.roofline)),
                json_num(r.max_rel_err),
                json_str(r.method),
                r.variant.as_deref().map_or("null".into(), json_str),
            );
        } else {
            let opt = |v: Option<f64>, prec: usize| match v {
                Some(v) => format!("{v:.prec$}"),
                None => "-".into(),
            };
            println!(
                "{:<24} {:<34} {:>10.4} {:>10} {:>9} {:>9} {:>8.3} {:>8} {:>10} {:>6} {}",
                r.kernel,
                r.case,
                r.gpu_ms,
                opt(r.cpu_ms, 3),
                opt(r.gflops, 1),
                opt(r.gbps, 1),
                r.roofline,
                opt(r.cpu_ms.map(|c| c / r.gpu_ms), 1),
                r.max_rel_err
                    .map(|e| format!("{e:.2e}"))
                    .unwrap_or("-".into()),
                r.method,
                r.variant.as_deref().unwrap_or(""),
            );
        }
    }
}

/// Times `record` with enough repetitions per submission to dwarf submit overhead.
fn measure(
    gpu: &Gpu,
    mut record: impl FnMut(&mut wgpu::CommandEncoder) -> tied::Result<()>,
) -> tied::Result<Timing> {
    let probe = time_gpu(gpu, 1, 1, &mut record)?;
    let reps = (30.0 / probe.ms.max(1e-3)).clamp(1.0, 200.0) as u32;
    time_gpu(gpu, reps, 3, record)
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed().as_secs_f64() * 1e3)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let json = args.iter().any(|a| a == "--json");
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_default();
    let wanted = |family: &str| only.is_empty() || family.starts_with(only.as_str());
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let tuning_name = value("--tuning").unwrap_or_else(|| "measure".into());
    let tuning = match tuning_name.as_str() {
        "default" => Tuning::Default,
        "cached" => Tuning::Cached,
        "measure" => Tuning::Measure,
        other => return Err(format!("--tuning {other}: use default, cached or measure").into()),
    };
    if let (Some(peer_files), Some(tied_files)) = (value("--peer"), value("--tied")) {
        peer::compare(
            &peer::read_lines(&peer_files)?,
            &peer::read_lines(&tied_files)?,
        );
        return Ok(());
    }
    let gpu = Gpu::new_blocking()?;
    let tuning_file = value("--tuning-file");
    if let Some(text) = tuning_file
        .as_ref()
        .and_then(|f| std::fs::read_to_string(f).ok())
    {
        let n = Conv2d::new(&gpu)?.load_tuning(&text)?;
        eprintln!("# loaded {n} tuned conv classes");
    }
    if args.iter().any(|a| a == "--peer-timing") || value("--peer").is_some() {
        let conv = Conv2d::new(&gpu)?;
        let lines = peer::run(&gpu, &conv, tuning, &tuning_name);
        if let Some(files) = value("--peer") {
            peer::compare(&peer::read_lines(&files)?, &peer::as_map(&lines));
        }
        if let Some(f) = &tuning_file {
            std::fs::write(f, conv.save_tuning())?;
        }
        return Ok(());
    }
    let info = gpu.adapter_info();
    let report = Report {
        json,
        backend: format!("{:?}", info.backend),
        adapter: info.name.clone(),
    };
    report.header();

    // Device probes.
    let probes = Probes::new(&gpu)?;
    let copy_bytes: u64 = if quick { 16 << 20 } else { 256 << 20 };
    let copy_reps = if quick { 2 } else { 10 };
    let copy = probes.copy(copy_bytes, copy_reps)?;
    // Software drivers on a shared machine drift by 2x within minutes: every memory-bound
    // row is stated against a copy probe measured just before it (the row above is the
    // first such measurement).
    let copy_now = || probes.copy(copy_bytes, copy_reps).map(|r| r.rate);
    report.print(&Row {
        kernel: "copy".into(),
        case: format!("{} MiB read+write", copy.work / 2.0 / (1 << 20) as f64),
        gpu_ms: copy.timing.ms,
        cpu_ms: None,
        gflops: None,
        gbps: Some(copy.rate),
        roofline: 1.0,
        max_rel_err: None,
        method: copy.timing.method.name(),
        variant: None,
    });
    // FMA probe: grow the grid until one run takes a few milliseconds.
    let mut wgs = 64;
    let iters = if quick { 256 } else { 4096 };
    let fma = loop {
        let r = probes.fma(wgs, iters, 2)?;
        if r.timing.ms >= 5.0 || wgs >= 1 << 16 || (quick && r.timing.ms >= 1.0) {
            break r;
        }
        wgs *= 2;
    };
    report.print(&Row {
        kernel: "fma".into(),
        case: format!("{wgs} wg x 256 x {iters} x 8 vec4"),
        gpu_ms: fma.timing.ms,
        cpu_ms: None,
        gflops: Some(fma.rate),
        gbps: None,
        roofline: 1.0,
        max_rel_err: None,
        method: fma.timing.method.name(),
        variant: None,
    });

    if wanted("conv") {
        let conv = Conv2d::new(&gpu)?;
        let shapes = if quick { cases::quick() } else { cases::full() };
        for (i, shape) in shapes.iter().enumerate() {
            let fma_now = probes.fma(wgs, iters, 2)?.rate;
            let case = ConvCase {
                shape,
                seed: i as u64,
                tuning,
            };
            run_conv_case(&gpu, &conv, &report, &case, fma_now, copy_now()?)?;
        }
        if let Some(f) = &tuning_file {
            std::fs::write(f, conv.save_tuning())?;
        }
    }
    if wanted("sort") {
        let sorter = RadixSort::new(&gpu)?;
        let sizes: &[usize] = if quick {
            &[100_000]
        } else {
            // 1e8 keys (400 MB): past one binding on devices of 128 MiB bindings (lavapipe),
            // so the windowed path there; one binding where the adapter allows more.
            &[1_000_000, 10_000_000, 100_000_000]
        };
        for &n in sizes {
            run_sort_case(&gpu, &sorter, &report, n, copy_now()?)?;
        }
    }
    if wanted("owl") || wanted("growl") {
        let growl = GrowlProx::new(&gpu)?;
        let sizes: &[usize] = if quick {
            &[100_000]
        } else {
            &[1_000_000, 10_000_000]
        };
        if wanted("owl") {
            for &n in sizes {
                run_owl_case(&gpu, &growl, &report, n, copy_now()?)?;
            }
        }
        let layouts: &[(usize, usize)] = if quick {
            &[(784, 300), (1024, 256)]
        } else {
            &[(784, 300), (4096, 4096), (25088, 4096)]
        };
        if wanted("growl") {
            for &(rows, cols) in layouts {
                run_growl_case(
                    &gpu,
                    &growl,
                    &report,
                    GroupLayout::Rows { rows, cols },
                    copy_now()?,
                )?;
            }
        }
    }
    if wanted("tied") {
        let ties = Ties::new(&gpu)?;
        let tie_cases = if quick {
            tying::cases::quick()
        } else {
            tying::cases::full()
        };
        for (i, case) in tie_cases.iter().enumerate() {
            run_tie_case(&gpu, &ties, &report, case, i as u64, copy_now()?)?;
        }
    }
    Ok(())
}

fn run_owl_case(
    gpu: &Gpu,
    growl: &GrowlProx,
    report: &Report,
    n: usize,
    copy_gbps: f64,
) -> tied::Result<()> {
    let v: Vec<f32> = Rng::new(n as u64).vec(n);
    let w = Weights::Oscar { l1: 0.1, l2: 1e-7 }.sequence(n, 1.0)?;
    let owl = growl.owl();
    let plan = owl.plan(n)?;
    let vb = upload(gpu, "v", &v);
    let wb = upload(gpu, "w", &w);
    // Each timed repetition restores v first (a copy, counted in the time: honest, and small
    // next to the prox), so every repetition computes the prox of the same input.
    let v0 = upload(gpu, "v0", &v);
    let t = measure(gpu, |e| {
        e.copy_buffer_to_buffer(&v0, 0, &vb, 0, (n * 4) as u64);
        plan.record(e, &vb, &wb, None)
    })?;
    let got = pollster::block_on(read_back(gpu, &vb, n))?;
    let (want, cpu_ms) = timed(|| tied::growl::cpu::owl_prox(&v, &w));
    let want = want?;
    // Error relative to the largest input magnitude (the prox is 1-Lipschitz).
    let vmax = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let err = got
        .iter()
        .zip(&want)
        .map(|(g, e)| f64::from((g - e).abs()) / f64::from(vmax))
        .fold(0.0, f64::max);
    let bytes = 12.0 * n as f64;
    report.print(&Row::memory_bound(
        "owl_prox",
        format!("n={n} OSCAR, skglm 1e6: 112 ms, 1e7: 1980 ms"),
        t,
        cpu_ms,
        bytes,
        copy_gbps,
        err,
    ));
    Ok(())
}

fn run_growl_case(
    gpu: &Gpu,
    growl: &GrowlProx,
    report: &Report,
    layout: GroupLayout,
    copy_gbps: f64,
) -> tied::Result<()> {
    let m = Rng::new(layout.len() as u64).vec(layout.len());
    let w = Weights::Stairwise {
        l1: 0.5,
        l2: 0.01,
        top: 0.5,
    }
    .sequence(layout.groups(), 1.0)?;
    let plan = match growl.plan(layout) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("growl_prox {layout:?}: skipped: {e}");
            return Ok(());
        }
    };
    let mb = upload(gpu, "matrix", &m);
    let wb = upload(gpu, "w", &w);
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    plan.record(&mut encoder, &mb, &wb, None)?;
    gpu.queue().submit([encoder.finish()]);
    let got = pollster::block_on(read_back(gpu, &mb, layout.len()))?;
    // Timed in place, applied again and again to the evolving matrix: the norms and rescale
    // passes do the same work whatever the values, and the OWL prox of the norms nearly so.
    let t = measure(gpu, |e| plan.record(e, &mb, &wb, None))?;
    let (want, cpu_ms) = timed(|| tied::growl::cpu::growl_prox(&m, layout, &w));
    let want = want?;
    let err = got
        .iter()
        .zip(&want.weights)
        .map(|(g, e)| f64::from((g - e).abs()))
        .fold(0.0, f64::max);
    // Bytes the prox must move: read for the norms, read and write for the rescale.
    let bytes = 3.0 * (layout.len() * 4) as f64;
    let (rows, cols) = match layout {
        GroupLayout::Rows { rows, cols } => (rows, cols),
        _ => (0, 0),
    };
    report.print(&Row::memory_bound(
        "growl_prox",
        format!("{rows}x{cols} rows, stairwise, in place"),
        t,
        cpu_ms,
        bytes,
        copy_gbps,
        err,
    ));
    Ok(())
}

fn run_sort_case(
    gpu: &Gpu,
    sorter: &RadixSort,
    report: &Report,
    n: usize,
    copy_gbps: f64,
) -> tied::Result<()> {
    let keys = Rng::new(n as u64).vec(n);
    let plan = sorter.plan(n)?;
    let kb = upload(gpu, "keys", &keys);
    let vals: Vec<u32> = (0..n as u32).collect();
    let vb = tied::buffer::upload(gpu, "values", bytemuck::cast_slice(&vals));
    // Sorting sorted keys costs the same passes as sorting random ones (LSD radix), so the
    // repetitions time the real work; the first one leaves the buffers sorted for the check.
    let t = measure(gpu, |e| {
        plan.record(e, &kb, Some(&vb), SortOrder::Descending)
    })?;
    let got = pollster::block_on(read_back(gpu, &kb, n))?;
    let got_vals = pollster::block_on(read_back(gpu, &vb, n))?;
    let ((want, want_vals), cpu_ms) =
        timed(|| tied::sort::cpu::sort(&keys, &vals, SortOrder::Descending));
    let same = got
        .iter()
        .map(|k| k.to_bits())
        .eq(want.iter().map(|k| k.to_bits()))
        && got_vals
            .iter()
            .map(|v| v.to_bits())
            .eq(want_vals.iter().copied());
    // Bytes that must move: keys and payloads read and written once (what a copy would move).
    let bytes = 16.0 * n as f64;
    report.print(&Row::memory_bound(
        "radix_sort",
        format!(
            "n={n} f32 keys + u32 payload, descending, {:.0} Mkeys/s",
            n as f64 / (t.ms * 1e-3) / 1e6
        ),
        t,
        cpu_ms,
        bytes,
        copy_gbps,
        if same { 0.0 } else { f64::INFINITY },
    ));
    Ok(())
}

fn run_tie_case(
    gpu: &Gpu,
    ties: &Ties,
    report: &Report,
    case: &tying::cases::TieCase,
    seed: u64,
    copy_gbps: f64,
) -> tied::Result<()> {
    let map = &case.map;
    let x = Rng::new(seed).vec(map.layout().params_len());
    let plan = ties.plan(map)?;
    let src = upload(gpu, "src", &x);
    let values = zeros(gpu, "values", map.values_len());
    let work = upload(gpu, "work", &x);
    let (np, nv, nid) = (
        map.layout().params_len() as f64,
        map.values_len() as f64,
        map.layout().units() as f64,
    );
    // Bytes that must move: read the tensor and the ids, write the group values; a broadcast
    // reads the ids (and the small group values) and writes the tensor. A plan read in place
    // (groups in stretches of neighbouring parameters, as the contiguous case) reads runs (16
    // bytes per up to 32 parameters) instead of ids, so its figure counts bytes it does not
    // move and can pass the copy probe.
    let reduce_bytes = 4.0 * (np + nid + nv);
    let broadcast_bytes = 4.0 * (nid + nv + np);
    let row = |kernel: &str, t: Timing, cpu_ms: f64, bytes: f64, err: f64| {
        Row::memory_bound(kernel, case.name.clone(), t, cpu_ms, bytes, copy_gbps, err)
    };

    let t = measure(gpu, |e| {
        plan.record_reduce(e, &src, &values, Reduction::Sum)
    })?;
    let got = pollster::block_on(read_back(gpu, &values, map.values_len()))?;
    let (want, cpu_ms) = timed(|| tying::cpu::reduce(map, &x, Reduction::Sum));
    let scale = tying::cpu::reduce(map, &abs(&x), Reduction::Sum);
    let reduce_err = max_rel_err(&got, &want, &scale);
    report.print(&row("tied_reduce", t, cpu_ms, reduce_bytes, reduce_err));

    // The other staging choice, where it changes the plan (scattered scalar members): the
    // same bits (else the error shows as inf), another time.
    let other = if plan.staged() {
        (Staging::Never, "unstaged")
    } else {
        (Staging::Always, "staged")
    };
    let alt = match map.layout() {
        tying::TieLayout::Scalar { .. } => Some(ties.plan_with(map, other.0)?),
        tying::TieLayout::Blocks { .. } => None,
    };
    if let Some(alt) = alt.filter(|alt| alt.staged() != plan.staged()) {
        let t = measure(gpu, |e| alt.record_reduce(e, &src, &values, Reduction::Sum))?;
        let alt_got = pollster::block_on(read_back(gpu, &values, map.values_len()))?;
        let same_bits = alt_got
            .iter()
            .map(|v| v.to_bits())
            .eq(got.iter().map(|v| v.to_bits()));
        let err = if same_bits { reduce_err } else { f64::INFINITY };
        let mut r = row("tied_reduce", t, cpu_ms, reduce_bytes, err);
        r.case = format!("{} ({})", case.name, other.1);
        report.print(&r);
    }

    // `values` now holds the GPU's group sums; `work` holds x. Broadcasting is a copy: exact.
    let sums = pollster::block_on(read_back(gpu, &values, map.values_len()))?;
    let t = measure(gpu, |e| plan.record_broadcast(e, &work, &values))?;
    let got = pollster::block_on(read_back(gpu, &work, x.len()))?;
    let (want, cpu_ms) = timed(|| tying::cpu::broadcast(map, &x, &sums));
    let err = if got == want { 0.0 } else { f64::INFINITY };
    report.print(&row("tied_broadcast", t, cpu_ms, broadcast_bytes, err));

    // Projection is idempotent (up to rounding of n equal values / n): after the timed
    // repetitions, starting from x, `work` holds project(x).
    gpu.queue().write_buffer(&work, 0, bytemuck::cast_slice(&x));
    let t = measure(gpu, |e| plan.record_project(e, &work, &values))?;
    let got = pollster::block_on(read_back(gpu, &work, x.len()))?;
    let (want, cpu_ms) = timed(|| tying::cpu::project(map, &x));
    let scale = tying::cpu::broadcast(
        map,
        &abs(&x),
        &tying::cpu::reduce(map, &abs(&x), Reduction::Mean),
    );
    report.print(&row(
        "tied_project",
        t,
        cpu_ms,
        reduce_bytes + broadcast_bytes,
        max_rel_err(&got, &want, &scale),
    ));
    Ok(())
}

/// One conv case of the report: its shape, data seed and how its plan is tuned.
struct ConvCase<'a> {
    shape: &'a Conv2dShape,
    seed: u64,
    tuning: Tuning,
}

fn run_conv_case(
    gpu: &Gpu,
    conv: &Conv2d,
    report: &Report,
    c: &ConvCase<'_>,
    fma_gflops: f64,
    copy_gbps: f64,
) -> tied::Result<()> {
    let s = c.shape;
    let mut rng = Rng::new(c.seed);
    let (x, w, b, dy) = (
        rng.vec(s.input_len()),
        rng.vec(s.weight_len()),
        rng.vec(s.bias_len()),
        rng.vec(s.output_len()),
    );
    let plan = conv.plan_with(s, c.tuning)?;
    let variant = plan.variant();
    let (xb, wb, bb, dyb) = (
        upload(gpu, "x", &x),
        upload(gpu, "w", &w),
        upload(gpu, "b", &b),
        upload(gpu, "dy", &dy),
    );
    let (yb, gib, gwb, gbb) = (
        zeros(gpu, "y", s.output_len()),
        zeros(gpu, "gi", s.input_len()),
        zeros(gpu, "gw", s.weight_len()),
        zeros(gpu, "gb", s.bias_len()),
    );
    let bias = s.bias.then_some(&bb);
    let gbias = s.bias.then_some(&gbb);
    let flops = s.flops();
    let (nx, nw, ny) = (
        s.input_len() as f64,
        s.weight_len() as f64,
        s.output_len() as f64,
    );
    let case = s.describe();
    let row = |kernel: &str, t: Timing, cpu_ms: f64, bytes: f64, err: f64| Row {
        kernel: kernel.into(),
        case: case.clone(),
        gpu_ms: t.ms,
        cpu_ms: Some(cpu_ms),
        gflops: Some(flops / (t.ms * 1e-3) / 1e9),
        gbps: Some(bytes / (t.ms * 1e-3) / 1e9),
        roofline: (flops / (fma_gflops * 1e9)).max(bytes / (copy_gbps * 1e9)) / (t.ms * 1e-3),
        max_rel_err: Some(err),
        method: t.method.name(),
        variant: Some(variant.clone()),
    };

    // Forward.
    let fb = ForwardBuffers {
        input: &xb,
        weight: &wb,
        bias,
        output: &yb,
    };
    let t = measure(gpu, |e| plan.record_forward(e, &fb))?;
    let y = pollster::block_on(read_back(gpu, &yb, s.output_len()))?;
    let bias_ref = s.bias.then_some(&b[..]);
    let (y_ref, cpu_ms) = timed(|| cpu::forward(s, &x, &w, bias_ref));
    let y_scale = cpu::forward(s, &abs(&x), &abs(&w), s.bias.then_some(&abs(&b)[..]));
    let bytes = 4.0 * (nx + nw + ny + s.bias_len() as f64);
    report.print(&row(
        "conv2d_forward",
        t,
        cpu_ms,
        bytes,
        max_rel_err(&y, &y_ref, &y_scale),
    ));

    // Input gradient.
    let db = BackwardDataBuffers {
        grad_output: &dyb,
        weight: &wb,
        grad_input: &gib,
    };
    let t = measure(gpu, |e| plan.record_backward_data(e, &db))?;
    let gi = pollster::block_on(read_back(gpu, &gib, s.input_len()))?;
    let (gi_ref, cpu_ms) = timed(|| cpu::backward_data(s, &dy, &w));
    let gi_scale = cpu::backward_data(s, &abs(&dy), &abs(&w));
    let bytes = 4.0 * (ny + nw + nx);
    report.print(&row(
        "conv2d_backward_data",
        t,
        cpu_ms,
        bytes,
        max_rel_err(&gi, &gi_ref, &gi_scale),
    ));

    // Weight (and bias) gradient.
    let wbufs = BackwardWeightBuffers {
        grad_output: &dyb,
        input: &xb,
        grad_weight: &gwb,
        grad_bias: gbias,
    };
    let t = measure(gpu, |e| plan.record_backward_weight(e, &wbufs))?;
    let gw = pollster::block_on(read_back(gpu, &gwb, s.weight_len()))?;
    let gb = pollster::block_on(read_back(gpu, &gbb, s.bias_len()))?;
    let ((gw_ref, gb_ref), cpu_ms) = timed(|| {
        (
            cpu::backward_weight(s, &dy, &x),
            if s.bias {
                cpu::backward_bias(s, &dy)
            } else {
                vec![]
            },
        )
    });
    let gw_scale = cpu::backward_weight(s, &abs(&dy), &abs(&x));
    let gb_scale = if s.bias {
        cpu::backward_bias(s, &abs(&dy))
    } else {
        vec![]
    };
    let err = max_rel_err(&gw, &gw_ref, &gw_scale).max(max_rel_err(&gb, &gb_ref, &gb_scale));
    let bytes = 4.0 * (ny + nx + nw + s.bias_len() as f64);
    report.print(&row("conv2d_backward_weight", t, cpu_ms, bytes, err));
    Ok(())
}
