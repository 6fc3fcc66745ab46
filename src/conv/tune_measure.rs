//! The measuring side of [`Tuning::Measure`](super::Tuning::Measure) (native only: it waits
//! for the GPU): per GEMM op, the default plan and each candidate tile at a few K split
//! counts, timed on scratch tensors, the fastest kept.
//!
//! Candidates: every [`Tile`] whose padded area is at most twice the least padded area of
//! any tile for that GEMM (the others waste more than half their work), tiles that split K
//! across threads only when K fills one staged round, on a pointwise shape also every
//! pointwise tile ([`Tile::POINTWISE`], the plain-GEMM kernel), and for the input gradient of
//! a shape the columns path runs (see [`GemmChoice::col2im`]) that path on every pointwise
//! tile (skipped when its columns do not fit one binding), each at the heuristic's split
//! count for it, one split, half and twice that count (clamped and deduplicated by what the plan then
//! runs). Times are GPU timestamps when the device has them, else the wall clock from submit
//! to completion ([`crate::timing::time_gpu`]): the fastest of 3 rounds after a warm-up. A
//! candidate replaces the default only when it is at least 3% faster, so noise does not move
//! a plan off the heuristic for nothing.

use super::tiles::{Tile, SKINNY_K};
use super::tune::{Conv2dChoice, GemmChoice, Tuning};
use super::{
    BackwardDataBuffers, BackwardWeightBuffers, Conv2d, Conv2dPlan, Conv2dShape, ForwardBuffers,
};
use crate::dispatch;
use crate::error::{Error, Result};
use crate::timing::time_gpu;

/// How much faster than the default a candidate must be to replace it.
const MARGIN: f64 = 0.97;

/// The three GEMM ops of a plan, in [`Conv2dPlan::splits`] order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GemmOp {
    Forward,
    InputGradient,
    WeightGradient,
}

impl GemmOp {
    const ALL: [GemmOp; 3] = [
        GemmOp::Forward,
        GemmOp::InputGradient,
        GemmOp::WeightGradient,
    ];

    fn slot(self, c: &mut Conv2dChoice) -> &mut Option<GemmChoice> {
        match self {
            GemmOp::Forward => &mut c.forward,
            GemmOp::InputGradient => &mut c.input_gradient,
            GemmOp::WeightGradient => &mut c.weight_gradient,
        }
    }
}

/// Scratch tensors of a shape (zeros: the kernels' time does not depend on the values).
struct Scratch {
    x: wgpu::Buffer,
    w: wgpu::Buffer,
    b: wgpu::Buffer,
    y: wgpu::Buffer,
    gi: wgpu::Buffer,
    gw: wgpu::Buffer,
    gb: wgpu::Buffer,
}

impl Scratch {
    fn new(conv: &Conv2d, s: &Conv2dShape) -> Self {
        let z = |label, len: usize| dispatch::zeros(&conv.gpu, label, len.max(1));
        Self {
            x: z("tune x", s.input_len()),
            w: z("tune w", s.weight_len()),
            b: z("tune b", s.bias_len()),
            y: z("tune y", s.output_len()),
            gi: z("tune gi", s.input_len()),
            gw: z("tune gw", s.weight_len()),
            gb: z("tune gb", s.bias_len()),
        }
    }

    /// Records `op` of `plan` (the output buffer `y` doubles as the output gradient).
    fn record(&self, plan: &Conv2dPlan, op: GemmOp, enc: &mut wgpu::CommandEncoder) -> Result<()> {
        let bias = plan.shape().bias;
        match op {
            GemmOp::Forward => plan.record_forward(
                enc,
                &ForwardBuffers {
                    input: &self.x,
                    weight: &self.w,
                    bias: bias.then_some(&self.b),
                    output: &self.y,
                },
            ),
            GemmOp::InputGradient => plan.record_backward_data(
                enc,
                &BackwardDataBuffers {
                    grad_output: &self.y,
                    weight: &self.w,
                    grad_input: &self.gi,
                },
            ),
            GemmOp::WeightGradient => plan.record_backward_weight(
                enc,
                &BackwardWeightBuffers {
                    grad_output: &self.y,
                    input: &self.x,
                    grad_weight: &self.gw,
                    grad_bias: bias.then_some(&self.gb),
                },
            ),
        }
    }
}

/// The GEMM sizes of `op` in `plan`: per launch (m, n, k).
fn gemms(plan: &Conv2dPlan, op: GemmOp) -> Vec<(u32, u32, u32)> {
    let mnk = |p: &super::kernels::ConvParams| (p.gemm_m, p.gemm_n, p.gemm_k);
    match op {
        GemmOp::Forward => vec![mnk(&plan.forward.params)],
        GemmOp::InputGradient => plan
            .backward_data
            .iter()
            .map(|(l, _)| mnk(&l.params))
            .collect(),
        GemmOp::WeightGradient => vec![mnk(&plan.backward_weight.params)],
    }
}

/// The tiles worth timing for GEMMs `g` (see the module docs), and on a pointwise shape
/// (`pointwise`) every pointwise tile.
fn candidate_tiles(g: &[(u32, u32, u32)], pointwise: bool) -> Vec<Tile> {
    let padded = |t: Tile| -> u64 { g.iter().map(|&(m, n, _)| t.padded_area(m, n)).sum() };
    let least = Tile::ALL.into_iter().map(padded).min().unwrap_or(0);
    let k = g.iter().map(|&(_, _, k)| k).max().unwrap_or(0);
    Tile::ALL
        .into_iter()
        .filter(|&t| padded(t) <= 2 * least)
        .filter(|&t| !t.splits_k_across_threads() || k >= SKINNY_K)
        .chain(Tile::POINTWISE.into_iter().filter(|_| pointwise))
        .collect()
}

/// What a plan runs for `op`: its tiles, split count and whether on the columns path.
fn signature(plan: &Conv2dPlan, op: GemmOp) -> (Vec<&'static str>, u32, bool) {
    let t = plan.tiles();
    let tiles = match op {
        GemmOp::Forward => vec![t.forward],
        GemmOp::InputGradient => t.input_gradient,
        GemmOp::WeightGradient => vec![t.weight_gradient],
    };
    let col2im = op == GemmOp::InputGradient && plan.runs_col2im();
    (tiles, plan.splits()[op as usize], col2im)
}

impl Conv2d {
    /// The fastest choice for `s`, op by op (see the module docs).
    pub(super) fn measure(&self, s: &Conv2dShape) -> Result<Conv2dChoice> {
        let mut choice = Conv2dChoice::default();
        if s.input_len() == 0 || s.output_len() == 0 || s.weight_len() == 0 {
            return Ok(choice);
        }
        let scratch = Scratch::new(self, s);
        for op in GemmOp::ALL {
            *op.slot(&mut choice) = self.measure_op(s, op, &scratch)?;
        }
        Ok(choice)
    }

    fn time(&self, plan: &Conv2dPlan, op: GemmOp, scratch: &Scratch) -> Result<f64> {
        Ok(time_gpu(&self.gpu, 1, 3, |enc| scratch.record(plan, op, enc))?.ms)
    }

    /// The fastest choice for `op` (`None`: the default).
    fn measure_op(
        &self,
        s: &Conv2dShape,
        op: GemmOp,
        scratch: &Scratch,
    ) -> Result<Option<GemmChoice>> {
        let fixed = |c: GemmChoice| {
            let mut choice = Conv2dChoice::default();
            *op.slot(&mut choice) = Some(c);
            self.plan_with(s, Tuning::Fixed(choice))
        };
        let default = self.plan(s)?;
        let base = self.time(&default, op, scratch)?;
        let mut seen = vec![signature(&default, op)];
        let mut best: (Option<GemmChoice>, f64) = (None, base);
        let pointwise = super::pointwise::eligible(s);
        let mut candidates: Vec<GemmChoice> = candidate_tiles(&gemms(&default, op), pointwise)
            .into_iter()
            .map(|t| GemmChoice::new(t, 0))
            .collect();
        if op == GemmOp::InputGradient && super::col2im::ineligible(s).is_none() {
            candidates.extend(Tile::POINTWISE.map(|t| GemmChoice::col2im(t, 0)));
        }
        for auto_choice in candidates {
            let auto = match fixed(auto_choice) {
                Err(Error::LimitExceeded { .. }) if auto_choice.col2im => continue,
                plan => plan?,
            };
            let d = auto.splits()[op as usize];
            for splits in [d, 1, d / 2, 2 * d] {
                if splits == 0 {
                    continue;
                }
                let c = GemmChoice {
                    splits,
                    ..auto_choice
                };
                let plan = fixed(c)?;
                let sig = signature(&plan, op);
                if seen.contains(&sig) {
                    continue;
                }
                seen.push(sig);
                let ms = self.time(&plan, op, scratch)?;
                if ms < best.1 && ms < MARGIN * base {
                    best = (Some(c), ms);
                }
            }
        }
        Ok(best.0)
    }
}
