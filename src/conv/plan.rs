//! Planning a shape: the tile and K splits of each GEMM launch, the stride phases of the
//! input gradient, the split-K reductions, the zero pass and the bias-gradient passes, and
//! the uniforms, tables and scratch they need.

use super::kernels::{ConvParams, Op, SplitParams, SumParams, ZeroParams, SUM_PER_THREAD};
use super::pointwise::{self, PointwiseGemm};
use super::taps::{data_phases, forward_table, reached_residues, table_buffer};
use super::tiles::{chunk_of, target_workgroups, Tile, MAX_K_CHUNK, MAX_SPLITS, MIN_K_CHUNK};
use super::tune::{Conv2dChoice, GemmChoice, Tuning};
use super::{Conv2d, Conv2dPlan, Conv2dShape};
use crate::dispatch::{self, Grid, WORKGROUP_SIZE};
use crate::error::{Error, Result};

/// Elements one `channel_sum` workgroup reduces.
const SUM_CHUNK: u32 = WORKGROUP_SIZE * SUM_PER_THREAD;

/// A GEMM as planned: its uniform's values, tile and grid.
type Gemm = (ConvParams, Tile, Grid);

/// One GEMM launch of a plan: its uniform, grid and (with split K) the reduction.
#[derive(Debug)]
pub(super) struct GemmLaunch {
    pub(super) op: Op,
    pub(super) tile: Tile,
    pub(super) params: ConvParams,
    pub(super) uniform: wgpu::Buffer,
    pub(super) grid: Grid,
    /// The operands' strides (`PointwiseParams`) of a launch on a pointwise tile.
    pub(super) strides: Option<wgpu::Buffer>,
    /// With split K the launch writes partials to the plan's scratch; the reduction that adds
    /// them into the output (uniform, grid) runs after the op's last launch (the stride phases
    /// of the input gradient share one).
    pub(super) reduce: Option<(wgpu::Buffer, Grid)>,
}

/// The input gradient's pass that zeroes the positions no kernel tap reaches: its uniform,
/// per-residue reached flags and grid.
#[derive(Debug)]
pub(super) struct ZeroPass {
    pub(super) uniform: wgpu::Buffer,
    pub(super) reached: wgpu::Buffer,
    pub(super) grid: Grid,
}

/// One pass of the bias-gradient reduction.
#[derive(Debug)]
pub(super) struct SumPass {
    pub(super) uniform: wgpu::Buffer,
    pub(super) grid: Grid,
}

/// The input gradient's GEMMs before their buffers exist: per launch its op, GEMM and tap
/// table (empty for the fully connected op, which reads none).
type DataGemms = Vec<(Op, Gemm, Vec<[i32; 4]>)>;

/// The shape's values shared by every GEMM launch.
fn base_params(s: &Conv2dShape, [oh, ow]: [u32; 2]) -> ConvParams {
    ConvParams {
        batch: s.batch,
        c_in: s.in_channels,
        c_out: s.out_channels,
        groups: s.groups,
        in_h: s.in_size[0],
        in_w: s.in_size[1],
        out_h: oh,
        out_w: ow,
        k_h: s.kernel[0],
        k_w: s.kernel[1],
        stride_h: s.stride[0],
        stride_w: s.stride[1],
        pad_h: s.padding[0],
        pad_w: s.padding[1],
        dil_h: s.dilation[0],
        dil_w: s.dilation[1],
        has_bias: u32::from(s.bias),
        c_in_g: s.in_per_group(),
        c_out_g: s.out_per_group(),
        ..Default::default()
    }
}

/// Whether the kernel covers the whole input: the input gradient is then a plain GEMM.
fn fully_connected(s: &Conv2dShape) -> bool {
    s.kernel == s.in_size && s.padding == [0, 0] && s.dilation == [1, 1]
}

impl Conv2d {
    /// Validates `shape` and prepares its uniforms, tables and scratch, with the kernels the
    /// default heuristic chooses ([`Tuning::Default`]: the tile that wastes the least padding
    /// among `square`, `wide`, `tall`, `skinny` and `narrow`, or on a pointwise shape the
    /// plain-GEMM tile of least estimated cost where it undercuts that, see
    /// [`Tile::POINTWISE`]; K splits that fill the device); [`Conv2d::plan_tuned`] chooses
    /// them by measurement.
    ///
    /// # Errors
    /// [`Error::Shape`] for an invalid shape; [`Error::LimitExceeded`] when a tensor or the
    /// grid does not fit this device; errors captured while creating the buffers.
    pub fn plan(&self, shape: &Conv2dShape) -> Result<Conv2dPlan> {
        self.plan_with(shape, Tuning::Default)
    }

    /// The plan of `shape` running `choice`.
    pub(super) fn plan_choice(
        &self,
        shape: &Conv2dShape,
        choice: Conv2dChoice,
    ) -> Result<Conv2dPlan> {
        let s = shape;
        let out_size = s.validate()?;
        self.check_binding_sizes(s)?;
        if [choice.forward, choice.weight_gradient]
            .iter()
            .flatten()
            .any(|c| c.col2im)
        {
            return Err(Error::shape(
                "the col2im path runs the input gradient only, not the forward or weight \
                 gradient",
            ));
        }
        let base = base_params(s, out_size);
        let [oh, ow] = out_size;
        let khw = s.kernel[0] * s.kernel[1];
        let pixels = s.batch * oh * ow;
        let plain = |op| pointwise::eligible(s).then(|| pointwise::gemm(s, op));
        let fwd = self.gemm_params(
            Op::Forward,
            base,
            [s.out_per_group(), pixels, s.in_per_group() * khw],
            s.output_len() as u32,
            choice.forward,
            plain(Op::Forward),
        )?;
        let columns = choice.input_gradient.filter(|c| c.col2im);
        let bwd_data = match columns {
            Some(_) => Vec::new(),
            None => self.data_gemms(s, base, out_size, choice.input_gradient)?,
        };
        let bwd_weight = self.gemm_params(
            Op::BackwardWeight,
            base,
            [s.out_per_group(), s.in_per_group() * khw, pixels],
            s.weight_len() as u32,
            choice.weight_gradient,
            plain(Op::BackwardWeight),
        )?;
        let scratch_len = [&fwd, &bwd_weight]
            .into_iter()
            .chain(bwd_data.iter().map(|(_, g, _)| g))
            .filter(|(p, _, _)| p.splits > 1)
            .map(|(p, _, _)| u64::from(p.splits) * u64::from(p.split_stride))
            .max()
            .unwrap_or(1);
        let forward_taps = forward_table(s)?;
        // The columns GEMM is the input gradient of the 1 x 1 conv of the columns, on `c`'s tile.
        let col2im = columns
            .map(|c| {
                let gemm = GemmChoice { col2im: false, ..c };
                let inner = Conv2dChoice {
                    input_gradient: Some(gemm),
                    ..Conv2dChoice::default()
                };
                self.col2im(s, inner, base)
            })
            .transpose()?;
        let gpu = &self.gpu;
        gpu.scoped(|| {
            let none = wgpu::BufferUsages::empty();
            let forward = self.launch(s, Op::Forward, fwd, true)?;
            let mut backward_data = Vec::new();
            let phases = bwd_data.len();
            for (i, (op, gemm, table)) in bwd_data.into_iter().enumerate() {
                let launch = self.launch(s, op, gemm, i + 1 == phases)?;
                // The fully connected op and the pointwise tiles read no table and bind none.
                let table = (op == Op::BackwardData && !launch.tile.is_pointwise())
                    .then(|| table_buffer(gpu, "conv table (co, kh, kw)", &table));
                backward_data.push((launch, table));
            }
            let (bias_passes, sum_len) = self.bias_passes(s, oh * ow)?;
            Ok(Conv2dPlan {
                conv: self.clone(),
                shape: *s,
                choice,
                out_size,
                forward,
                backward_data,
                zero_unreached: if fully_connected(s) || col2im.is_some() {
                    None
                } else {
                    self.zero_pass(s)?
                },
                col2im,
                backward_weight: self.launch(s, Op::BackwardWeight, bwd_weight, true)?,
                bias_passes,
                table_fwd: table_buffer(gpu, "conv table (ci, kh, kw)", &forward_taps),
                scratch: dispatch::scratch(gpu, "conv split-K partials", scratch_len * 4, none),
                sum_scratch: sum_len
                    .map(|len| dispatch::scratch(gpu, "conv bias partials", len * 4, none)),
                no_bias: dispatch::scratch(gpu, "conv no bias", 4, none),
            })
        })
    }

    /// Every tensor and tap table of `s` fits one binding.
    fn check_binding_sizes(&self, s: &Conv2dShape) -> Result<()> {
        for (name, len) in [
            ("input", s.input_len()),
            ("weight", s.weight_len()),
            ("output", s.output_len()),
        ] {
            dispatch::check_binding_size(&self.gpu, name, len as u64 * 4)?;
        }
        let khw = s.kernel[0] * s.kernel[1];
        for (name, entries) in [
            ("conv kernel table", s.in_per_group() * khw),
            (
                "conv kernel table (input gradient)",
                s.out_per_group() * khw,
            ),
        ] {
            dispatch::check_binding_size(&self.gpu, name, u64::from(entries) * 16)?;
        }
        Ok(())
    }

    /// The input gradient's GEMMs: one per stride phase that some tap reaches (no zero
    /// taps), or the fully connected one.
    fn data_gemms(
        &self,
        s: &Conv2dShape,
        base: ConvParams,
        out_size: [u32; 2],
        choice: Option<GemmChoice>,
    ) -> Result<DataGemms> {
        let khw = s.kernel[0] * s.kernel[1];
        if pointwise::eligible(s) {
            // Tiled the way the implicit GEMM would be: [batch, ci, co] fully connected, else
            // one stride phase [ci, batch x positions, co].
            let implicit = if fully_connected(s) {
                [s.batch, s.in_channels, s.out_channels]
            } else {
                [
                    s.in_channels,
                    s.input_len() as u32 / s.in_channels.max(1),
                    s.out_channels,
                ]
            };
            let plain = pointwise::gemm(s, Op::BackwardData);
            let len = s.input_len() as u32;
            let gemm =
                self.gemm_params(Op::BackwardData, base, implicit, len, choice, Some(plain))?;
            if gemm.1.is_pointwise() {
                return Ok(vec![(Op::BackwardData, gemm, Vec::new())]);
            }
        }
        if fully_connected(s) {
            let gemm = self.gemm_params(
                Op::BackwardDataFc,
                base,
                [s.batch, s.in_per_group() * khw, s.out_per_group()],
                s.input_len() as u32,
                choice,
                None,
            )?;
            return Ok(vec![(Op::BackwardDataFc, gemm, Vec::new())]);
        }
        let mut gemms = Vec::new();
        for phase in data_phases(s, out_size)? {
            let params = ConvParams {
                phase_h: phase.start[0],
                phase_w: phase.start[1],
                step_h: phase.step[0],
                step_w: phase.step[1],
                sub_h: phase.count[0],
                sub_w: phase.count[1],
                ..base
            };
            let n = s.batch * phase.count[0] * phase.count[1];
            let k = phase.table.len() as u32;
            if n == 0 {
                continue;
            }
            let gemm = self.gemm_params(
                Op::BackwardData,
                params,
                [s.in_per_group(), n, k],
                s.input_len() as u32,
                choice,
                None,
            )?;
            gemms.push((Op::BackwardData, gemm, phase.table));
        }
        // The phases write disjoint positions of the same split slices, which one reduction
        // after the last phase adds: they share one split count.
        let shared = gemms
            .iter()
            .map(|(_, (p, _, _), _)| p.splits)
            .max()
            .unwrap_or(1);
        for (_, gemm, _) in &mut gemms {
            *gemm = self.with_splits(*gemm, shared)?;
        }
        Ok(gemms)
    }

    /// The launch of `gemm`, with its uniform; `reduce`: this launch ends its op and adds the
    /// split partials (when K is split).
    fn launch(
        &self,
        s: &Conv2dShape,
        op: Op,
        (params, tile, grid): Gemm,
        reduce: bool,
    ) -> Result<GemmLaunch> {
        let reduce = if reduce && params.splits > 1 {
            let len = params.split_stride;
            let rgrid = Grid::for_items(&self.gpu, u64::from(len), u64::from(WORKGROUP_SIZE))?;
            let [oh, ow] = s.out_size();
            let (channels, inner) = match op {
                Op::Forward => (s.out_channels.max(1), (oh * ow).max(1)),
                _ => (1, 1),
            };
            let rp = SplitParams {
                len,
                splits: params.splits,
                split_stride: params.split_stride,
                has_bias: u32::from(op == Op::Forward && s.bias),
                channels,
                inner,
                fold_x: rgrid.fold_x(),
                total_wg: rgrid.total,
            };
            Some((
                dispatch::uniform(&self.gpu, "conv split reduce", &rp),
                rgrid,
            ))
        } else {
            None
        };
        let strides = tile.is_pointwise().then(|| {
            let strides = pointwise::gemm(s, op).strides;
            dispatch::uniform(&self.gpu, "conv pointwise strides", &strides)
        });
        Ok(GemmLaunch {
            op,
            tile,
            params,
            uniform: dispatch::uniform(&self.gpu, "conv params", &params),
            grid,
            strides,
            reduce,
        })
    }

    /// The bias gradient: passes of `channel_sum` until one value per channel is left, and
    /// the lengths of the two ping-pong partial buffers.
    fn bias_passes(&self, s: &Conv2dShape, positions: u32) -> Result<(Vec<SumPass>, [u64; 2])> {
        let mut passes = Vec::new();
        let mut sum_len = [1u64, 1u64];
        if !s.bias || s.out_channels == 0 {
            return Ok((passes, sum_len));
        }
        let (mut outer, mut inner) = (s.batch, positions);
        let mut pass = 0;
        loop {
            let count = outer * inner;
            let chunks = count.div_ceil(SUM_CHUNK).max(1);
            let grid =
                Grid::for_workgroups(&self.gpu, u64::from(chunks) * u64::from(s.out_channels))?;
            let sp = SumParams {
                outer,
                channels: s.out_channels,
                inner,
                chunks,
                fold_x: grid.fold_x(),
                total_wg: grid.total,
                pad: [0; 2],
            };
            passes.push(SumPass {
                uniform: dispatch::uniform(&self.gpu, "conv bias sum", &sp),
                grid,
            });
            if chunks == 1 {
                return Ok((passes, sum_len));
            }
            sum_len[pass % 2] = sum_len[pass % 2].max(u64::from(chunks * s.out_channels));
            outer = 1;
            inner = chunks;
            pass += 1;
        }
    }

    /// Chooses tile shape and K splits for a GEMM of `[m, n, k]` per group (the implicit
    /// GEMM's sizes), or on a pointwise shape (`plain`: the op as a plain GEMM) for that
    /// GEMM when its tile is a pointwise one: `choice`, its split count clamped to what the
    /// GEMM allows, or the heuristic's ([`pointwise::pick`] on pointwise shapes).
    ///
    /// # Errors
    /// [`Error::Shape`] when `choice` is a pointwise tile and the shape is not pointwise.
    fn gemm_params(
        &self,
        op: Op,
        base: ConvParams,
        implicit: [u32; 3],
        out_len: u32,
        choice: Option<GemmChoice>,
        plain: Option<PointwiseGemm>,
    ) -> Result<Gemm> {
        let limits = self.gpu.device().limits();
        let [m, n, k] = implicit;
        let tile = match (choice, plain) {
            (Some(c), None) if c.tile.is_pointwise() => {
                return Err(Error::shape(format!(
                    "tile `{}` runs only pointwise shapes (1x1 kernel, stride 1, no padding, \
                     one group)",
                    c.tile.name()
                )))
            }
            (Some(c), _) => c.tile,
            (None, Some(g)) => pointwise::pick(implicit, &g).unwrap_or(Tile::pick(m, n, k)),
            (None, None) => Tile::pick(m, n, k),
        };
        let (base, [m, n, k]) = match plain {
            Some(g) if tile.is_pointwise() => {
                let forward = op == Op::Forward;
                let base = ConvParams {
                    groups: g.groups,
                    has_bias: base.has_bias * u32::from(forward),
                    ..base
                };
                (base, g.mnk)
            }
            _ => (base, implicit),
        };
        let tiles_m = m.div_ceil(tile.rows());
        let tiles_n = n.div_ceil(tile.cols());
        let tiles = u64::from(tiles_m) * u64::from(tiles_n) * u64::from(base.groups);
        let min_splits = k.div_ceil(MAX_K_CHUNK).max(1);
        if min_splits > MAX_SPLITS {
            return Err(Error::LimitExceeded {
                limit: "conv reduction length",
                needed: u64::from(k),
                allowed: u64::from(MAX_SPLITS) * u64::from(MAX_K_CHUNK),
                hint: match op {
                    Op::BackwardData => "; the input gradient's reduction (output channels per \
                                         group x kernel taps per stride phase) is too long"
                        .into(),
                    _ => format!("; the {op:?} reduction is too long: use a smaller batch"),
                },
            });
        }
        let max_useful = k.div_ceil(MIN_K_CHUNK).max(1);
        let target = target_workgroups(self.gpu.adapter_info().device_type);
        let wanted = match choice {
            Some(c) if c.splits > 0 => c.splits,
            _ => (u64::from(target).div_ceil(tiles.max(1))) as u32,
        };
        let mut splits = wanted
            .clamp(min_splits, max_useful.max(min_splits))
            .min(MAX_SPLITS);
        // Partials must fit one binding; fall back to fewer, longer splits.
        let max_binding = limits.max_storage_buffer_binding_size;
        let fits = |sp: u32| u64::from(sp) * u64::from(out_len) * 4 <= max_binding;
        while splits > min_splits && !fits(splits) {
            splits = (splits / 2).max(min_splits);
        }
        if splits > 1 && !fits(splits) {
            return Err(Error::LimitExceeded {
                limit: "max_storage_buffer_binding_size",
                needed: u64::from(splits) * u64::from(out_len) * 4,
                allowed: max_binding,
                hint: format!("; split-K partials of {op:?} do not fit: use a smaller batch"),
            });
        }
        let k_chunk = chunk_of(k, splits);
        let params = ConvParams {
            gemm_m: m,
            gemm_n: n,
            gemm_k: k,
            tiles_m,
            tiles_n,
            split_stride: out_len,
            ..base
        };
        // Splits that the rounding of the chunk leaves empty are dropped.
        let splits = if k == 0 { 1 } else { k.div_ceil(k_chunk) };
        let (params, grid) = self.split_k(params, k_chunk, splits)?;
        Ok((params, tile, grid))
    }

    /// `params` (tiles set) cut into `splits` K chunks of `k_chunk` steps, with its grid: one
    /// workgroup per tile and split. No tiles when m or n is 0.
    fn split_k(&self, params: ConvParams, k_chunk: u32, splits: u32) -> Result<(ConvParams, Grid)> {
        let tiles =
            u64::from(params.tiles_m) * u64::from(params.tiles_n) * u64::from(params.groups);
        let grid = Grid::for_workgroups(&self.gpu, tiles * u64::from(splits))?;
        let params = ConvParams {
            k_chunk,
            splits,
            total_wg: grid.total,
            fold_x: grid.fold_x(),
            ..params
        };
        Ok((params, grid))
    }

    /// `gemm` (from [`Conv2d::gemm_params`]) with `splits` K splits, `splits` at least the
    /// count it has: K is cut into `splits` chunks of whole 16s, and splits past the end of
    /// K write zero partials, so every split slice of the GEMM's outputs is written.
    fn with_splits(&self, (params, tile, grid): Gemm, splits: u32) -> Result<Gemm> {
        debug_assert!(splits >= params.splits, "with_splits only raises the count");
        if splits == params.splits {
            return Ok((params, tile, grid));
        }
        let (params, grid) = self.split_k(params, chunk_of(params.gemm_k, splits), splits)?;
        Ok((params, tile, grid))
    }

    /// The pass that zeroes the input-gradient positions no kernel tap reaches, or `None` when
    /// every position is reached (or there are none).
    fn zero_pass(&self, s: &Conv2dShape) -> Result<Option<ZeroPass>> {
        let len = s.input_len() as u64;
        let res = [0, 1].map(|a| s.stride[a].min(s.in_size[a]));
        let reached = [0, 1].map(|a| reached_residues(s, a));
        if len == 0 || (reached[0].len() as u32 == res[0] && reached[1].len() as u32 == res[1]) {
            return Ok(None);
        }
        let mut flags = vec![0u32; (res[0] + res[1]) as usize];
        for (r, _) in &reached[0] {
            flags[*r as usize] = 1;
        }
        for (r, _) in &reached[1] {
            flags[(res[0] + r) as usize] = 1;
        }
        let grid = Grid::for_items(&self.gpu, len, u64::from(WORKGROUP_SIZE))?;
        let params = ZeroParams {
            len: len as u32,
            in_h: s.in_size[0],
            in_w: s.in_size[1],
            stride_h: s.stride[0],
            stride_w: s.stride[1],
            res_h: res[0],
            fold_x: grid.fold_x(),
            total_wg: grid.total,
        };
        let gpu = &self.gpu;
        Ok(Some(ZeroPass {
            uniform: dispatch::uniform(gpu, "conv zero unreached", &params),
            reached: dispatch::storage_init(
                gpu,
                "conv reached residues",
                &flags,
                wgpu::BufferUsages::empty(),
            ),
            grid,
        }))
    }
}
