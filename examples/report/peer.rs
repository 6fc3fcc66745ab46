//! `--peer-timing` and `--peer FILE`: the crate's conv timed exactly as the burn peer
//! (`shared/peers/burn-conv`) times burn, and the ratios against the peer's JSON lines.
//!
//! Timing, as the peer's: wall clock over record + submit + a blocking wait; `forward` is the
//! forward alone, `backward` the input, weight and bias gradients recorded into one encoder;
//! 3 rounds over every case (rounds go over all cases in turn, so a burst of host noise lands
//! on different cases), each 2 warm-ups + 7 timed iterations; `ms` is the median of the 21
//! timed samples. One JSON object per line with the peer's keys (`peer`, `version`, `case`,
//! `op`, `ms`, `gflops`) plus `variant` (the tiles and K splits the plan runs) and `tuning`.
//! Knobs as the peer's: `TIED_PEER_ROUNDS`, `TIED_PEER_ITERS`, `TIED_PEER_WARMUP`,
//! `TIED_PEER_CASES=A,C`, and `TIED_PEER_SPLIT=1`, which adds the ops `backward_data` and
//! `backward_weight` (the two halves of `backward`, timed alone; the peer has no such lines).
//!
//! `--peer FILE[,FILE..]` reads the peer's JSON lines and prints burn / tied per case and op
//! (above 1: the crate is faster) and the median ratio; with several files (or `--tied
//! FILE[,FILE..]` for the crate's side instead of timing now) each side takes the best (lowest)
//! median per case and op, as the peer's README does for runs made alternately.

use std::collections::BTreeMap;
use std::time::Instant;

use tied::buffer::{upload, zeros};
use tied::conv::{
    cases, BackwardDataBuffers, BackwardWeightBuffers, Conv2d, Conv2dPlan, Conv2dShape,
    ForwardBuffers, Tuning,
};
use tied::verify::Rng;
use tied::Gpu;

/// The peer's case ids for the first six full cases of the report.
const IDS: [&str; 6] = ["A", "B", "C", "D", "E", "F"];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn median(samples: &[f64]) -> f64 {
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// One case's buffers and plan, and its two timed ops.
struct Bench {
    gpu: Gpu,
    shape: Conv2dShape,
    plan: Conv2dPlan,
    bufs: [wgpu::Buffer; 8],
}

impl Bench {
    fn new(gpu: &Gpu, conv: &Conv2d, shape: Conv2dShape, tuning: Tuning, seed: u64) -> Self {
        let s = &shape;
        let mut rng = Rng::new(seed);
        let plan = conv.plan_with(s, tuning).expect("plan");
        let bufs = [
            upload(gpu, "x", &rng.vec(s.input_len())),
            upload(gpu, "w", &rng.vec(s.weight_len())),
            upload(gpu, "b", &rng.vec(s.bias_len())),
            zeros(gpu, "y", s.output_len()),
            upload(gpu, "dy", &rng.vec(s.output_len())),
            zeros(gpu, "gi", s.input_len()),
            zeros(gpu, "gw", s.weight_len()),
            zeros(gpu, "gb", s.bias_len()),
        ];
        Self {
            gpu: gpu.clone(),
            shape,
            plan,
            bufs,
        }
    }

    /// Wall clock over recording `op`, submitting and waiting, in ms.
    fn time(&self, op: &str) -> f64 {
        let [x, w, b, y, dy, gi, gw, gb] = &self.bufs;
        let bias = self.shape.bias;
        let t = Instant::now();
        let mut enc = self
            .gpu
            .device()
            .create_command_encoder(&Default::default());
        if op == "forward" {
            let fb = ForwardBuffers {
                input: x,
                weight: w,
                bias: bias.then_some(b),
                output: y,
            };
            self.plan.record_forward(&mut enc, &fb).expect("record");
        } else {
            let (data, weight) = match op {
                "backward_data" => (true, false),
                "backward_weight" => (false, true),
                _ => (true, true),
            };
            let db = BackwardDataBuffers {
                grad_output: dy,
                weight: w,
                grad_input: gi,
            };
            let wb = BackwardWeightBuffers {
                grad_output: dy,
                input: x,
                grad_weight: gw,
                grad_bias: bias.then_some(gb),
            };
            if data {
                self.plan
                    .record_backward_data(&mut enc, &db)
                    .expect("record");
            }
            if weight {
                self.plan
                    .record_backward_weight(&mut enc, &wb)
                    .expect("record");
            }
        }
        self.gpu.queue().submit([enc.finish()]);
        self.gpu
            .device()
            .poll(wgpu::PollType::wait_indefinitely())
            .expect("wait");
        t.elapsed().as_secs_f64() * 1e3
    }
}

/// One measured case and op.
pub struct Line {
    pub case: String,
    pub op: String,
    pub ms: f64,
}

/// Times the six cases as the peer does and prints one JSON line per case and op; returns
/// the medians.
pub fn run(gpu: &Gpu, conv: &Conv2d, tuning: Tuning, tuning_name: &str) -> Vec<Line> {
    let rounds = env_usize("TIED_PEER_ROUNDS", 3).max(1);
    let iters = env_usize("TIED_PEER_ITERS", 7).max(1);
    let warmup = env_usize("TIED_PEER_WARMUP", 2);
    let filter: Option<Vec<String>> = std::env::var("TIED_PEER_CASES").ok().map(|s| {
        s.split(',')
            .map(|c| c.trim().to_uppercase())
            .filter(|c| !c.is_empty())
            .collect()
    });
    let mut ops = vec!["forward", "backward"];
    if env_usize("TIED_PEER_SPLIT", 0) == 1 {
        ops.extend(["backward_data", "backward_weight"]);
    }
    let t_plan = Instant::now();
    let benches: Vec<(&str, Bench)> = IDS
        .iter()
        .zip(cases::full())
        .enumerate()
        .filter(|(_, (id, _))| filter.as_ref().is_none_or(|f| f.iter().any(|c| c == *id)))
        .map(|(i, (id, s))| (*id, Bench::new(gpu, conv, s, tuning, i as u64)))
        .collect();
    eprintln!(
        "# tied peer timing: tuning={tuning_name}; planning (and tuning) took {:.1} s; rounds={rounds} x (warmup={warmup} + iters={iters})",
        t_plan.elapsed().as_secs_f64()
    );
    let mut samples = vec![vec![Vec::new(); ops.len()]; benches.len()];
    for _ in 0..rounds {
        for (ci, (_, bench)) in benches.iter().enumerate() {
            for (oi, op) in ops.iter().enumerate() {
                for i in 0..warmup + iters {
                    let ms = bench.time(op);
                    if i >= warmup {
                        samples[ci][oi].push(ms);
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    for (ci, (id, bench)) in benches.iter().enumerate() {
        for (oi, op) in ops.iter().enumerate() {
            let med = median(&samples[ci][oi]);
            let flops = bench.shape.flops() * if oi == 1 { 2.0 } else { 1.0 };
            println!(
                "{{\"peer\":\"tied\",\"version\":\"{}\",\"case\":\"{id}\",\"op\":\"{op}\",\"ms\":{med:.3},\"gflops\":{:.3},\"variant\":\"{}\",\"tuning\":\"{tuning_name}\"}}",
                env!("CARGO_PKG_VERSION"),
                flops / (med * 1e6),
                bench.plan.variant(),
            );
            out.push(Line {
                case: id.to_string(),
                op: op.to_string(),
                ms: med,
            });
        }
    }
    out
}

/// The value of `"key":` in a flat JSON line (a string or a number), without a JSON library.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":");
    let rest = &line[line.find(&pat)? + pat.len()..];
    let rest = rest.trim_start();
    if let Some(s) = rest.strip_prefix('"') {
        return s.find('"').map(|e| &s[..e]);
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

/// The best (lowest) median per (case, op) over the JSON-lines files in `paths` (comma-separated).
pub fn read_lines(paths: &str) -> Result<BTreeMap<(String, String), f64>, String> {
    let mut best = BTreeMap::new();
    for path in paths.split(',').filter(|p| !p.is_empty()) {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        for line in text.lines().filter(|l| l.trim_start().starts_with('{')) {
            let (Some(case), Some(op), Some(ms)) =
                (field(line, "case"), field(line, "op"), field(line, "ms"))
            else {
                continue;
            };
            let Ok(ms) = ms.parse::<f64>() else { continue };
            let e = best.entry((case.to_string(), op.to_string())).or_insert(ms);
            *e = e.min(ms);
        }
    }
    Ok(best)
}

/// Prints burn / tied per case and op and the median ratio.
pub fn compare(peer: &BTreeMap<(String, String), f64>, tied: &BTreeMap<(String, String), f64>) {
    println!(
        "{:<5} {:<9} {:>10} {:>10} {:>12}",
        "case", "op", "tied_ms", "peer_ms", "peer/tied"
    );
    let mut ratios = Vec::new();
    for op in ["forward", "backward"] {
        for ((case, o), t) in tied.iter().filter(|((_, o), _)| o == op) {
            let Some(p) = peer.get(&(case.clone(), o.clone())) else {
                continue;
            };
            let r = p / t;
            ratios.push(r);
            println!("{case:<5} {o:<9} {t:>10.3} {p:>10.3} {r:>12.2}");
        }
    }
    let slower = ratios.iter().filter(|r| **r < 1.0).count();
    println!(
        "median ratio {:.2} over {} case/ops; the crate is slower in {slower}",
        median(&ratios),
        ratios.len()
    );
}

/// Medians of this run as the map [`compare`] takes.
pub fn as_map(lines: &[Line]) -> BTreeMap<(String, String), f64> {
    lines
        .iter()
        .map(|l| ((l.case.clone(), l.op.clone()), l.ms))
        .collect()
}
