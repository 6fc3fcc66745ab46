//! Conv2d with shared weights: forward, input gradient, weight gradient and bias gradient.
//!
//! Layout: NCHW (see [`Conv2dShape`]); [`LayoutTranspose`] converts NHWC data.
//!
//! Design: all three ops are implicit GEMMs (`shaders/conv_gemm_common.wgsl`) over tiles
//! chosen per launch ([`Conv2dPlan::tiles`]): 4 x 4 register blocks per thread, or skinny and
//! narrow tiles (`shaders/conv_gemm_skinny.wgsl`) for GEMMs of few rows or few columns; the
//! im2col matrix is never materialised. The K dimension is split across
//! workgroups when it is long (always for the weight gradient, whose K is batch x positions):
//! each split writes partial sums, and `shaders/split_reduce.wgsl` adds them in a fixed order,
//! so results are bitwise reproducible with no atomics. The bias gradient is a multi-pass
//! fixed-tree reduction (`shaders/channel_sum.wgsl`).
//!
//! Use: build [`Conv2d`] once per device (it compiles the pipelines), make a [`Conv2dPlan`] per
//! shape (small uniform and table buffers, no compilation), then record ops into your own
//! encoder on your own buffers. [`Conv2d::forward`] and friends are the host-slice path.

#[doc(hidden)]
pub mod cases;
pub mod cpu;
mod layout;
mod shape;

pub use layout::{LayoutTranspose, TransposePlan};
pub use shape::Conv2dShape;

use std::sync::Arc;

use crate::dispatch::legacy::{Binding, Kernel};
use crate::dispatch::{self, check_buffer, check_distinct, Grid, Recording};
use crate::error::{check_len, Error, Result};
use crate::gpu::Gpu;
use crate::shaders;

/// Longest K range one workgroup walks: bounds every loop far below the 65,535 iterations
/// software drivers allow per invocation.
const MAX_K_CHUNK: u32 = 16384;
/// Shortest K range worth a split of its own.
const MIN_K_CHUNK: u32 = 256;
/// Most splits the reduction pass adds per element.
const MAX_SPLITS: u32 = 4096;
/// Workgroups a launch aims for before it splits K to fill the device (a few per compute
/// unit on large GPUs; CPU "GPUs" have a handful of cores and only pay for extra splits).
fn target_workgroups(device_type: wgpu::DeviceType) -> u32 {
    match device_type {
        wgpu::DeviceType::Cpu => 16,
        _ => 1024,
    }
}

/// Uniform block shared by the three conv GEMM shaders (mirrors `ConvParams` in WGSL).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct ConvParams {
    batch: u32,
    c_in: u32,
    c_out: u32,
    groups: u32,
    in_h: u32,
    in_w: u32,
    out_h: u32,
    out_w: u32,
    k_h: u32,
    k_w: u32,
    stride_h: u32,
    stride_w: u32,
    pad_h: u32,
    pad_w: u32,
    dil_h: u32,
    dil_w: u32,
    gemm_m: u32,
    gemm_n: u32,
    gemm_k: u32,
    k_chunk: u32,
    splits: u32,
    tiles_m: u32,
    tiles_n: u32,
    total_wg: u32,
    fold_x: u32,
    has_bias: u32,
    split_stride: u32,
    c_in_g: u32,
    c_out_g: u32,
    phase_h: u32,
    phase_w: u32,
    step_h: u32,
    step_w: u32,
    sub_h: u32,
    sub_w: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct SplitParams {
    len: u32,
    splits: u32,
    split_stride: u32,
    has_bias: u32,
    channels: u32,
    inner: u32,
    fold_x: u32,
    total_wg: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct SumParams {
    outer: u32,
    channels: u32,
    inner: u32,
    chunks: u32,
    fold_x: u32,
    total_wg: u32,
    _pad: [u32; 2],
}

/// Elements one `channel_sum` workgroup reduces (256 threads x 16).
const SUM_CHUNK: u32 = 4096;

/// (WG_M, WG_N, KT) of each [`Tile`], in declaration order: the overrides of the conv GEMM
/// shaders. A tile has 4 * WG_M rows and 4 * WG_N columns; register tiles have WG_M x WG_N
/// threads and K depth KT, skinny ones (`skinny` entry point) ignore KT.
pub(crate) const TILE_SHAPES: [(u32, u32, u32); 5] =
    [(16, 16, 16), (4, 64, 8), (64, 4, 8), (1, 64, 8), (1, 4, 8)];

/// The pipeline constants of a tile shape `(WG_M, WG_N, KT)` in `conv_gemm_common.wgsl`.
pub(crate) fn tile_constants((wm, wn, kt): (u32, u32, u32)) -> [(&'static str, f64); 3] {
    [("WG_M", wm.into()), ("WG_N", wn.into()), ("KT", kt.into())]
}

/// Tile shapes of the GEMM micro-kernel, chosen per launch to waste the least padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tile {
    /// 64 x 64, K depth 16.
    Square,
    /// 16 rows x 256 columns (few output channels), K depth 8.
    Wide,
    /// 256 rows x 16 columns (few columns, e.g. a fully connected layer), K depth 8.
    Tall,
    /// 4 rows x 256 columns, one column per thread (`conv_gemm_skinny.wgsl`): GEMMs of at
    /// most 4 rows, such as the input gradient of 1-4 input channels or a depthwise conv.
    Skinny,
    /// 4 rows x 16 columns, 16 threads per column splitting K (`conv_gemm_skinny.wgsl`):
    /// GEMMs of few columns and long K, such as a depthwise weight gradient.
    Narrow,
}

impl Tile {
    const ALL: [Tile; 5] = [
        Tile::Square,
        Tile::Wide,
        Tile::Tall,
        Tile::Skinny,
        Tile::Narrow,
    ];

    /// (WG_M, WG_N, KT): see [`TILE_SHAPES`].
    fn dims(self) -> (u32, u32, u32) {
        TILE_SHAPES[self as usize]
    }

    fn rows(self) -> u32 {
        4 * self.dims().0
    }

    fn cols(self) -> u32 {
        4 * self.dims().1
    }

    /// The name [`Conv2dPlan::tiles`] reports.
    fn name(self) -> &'static str {
        match self {
            Tile::Square => "square",
            Tile::Wide => "wide",
            Tile::Tall => "tall",
            Tile::Skinny => "skinny",
            Tile::Narrow => "narrow",
        }
    }

    /// The shader entry point.
    fn entry(self) -> &'static str {
        match self {
            Tile::Skinny | Tile::Narrow => "skinny",
            _ => "main",
        }
    }

    /// The tile that wastes least: padded area (rows x columns computed), doubled for
    /// skinny tiles, whose threads reuse each loaded value 4 times instead of 16, and tripled
    /// for narrow ones, which also stage every K step per 16 columns and add a tree. Narrow
    /// tiles need a total K of 256 or more. Register tiles win ties.
    fn pick(m: u32, n: u32, k: u32) -> Tile {
        let cost = |t: Tile| {
            let area = u64::from(m.div_ceil(t.rows()) * t.rows())
                * u64::from(n.div_ceil(t.cols()) * t.cols());
            match t {
                Tile::Skinny => 2 * area,
                Tile::Narrow if k >= 256 => 3 * area,
                Tile::Narrow => u64::MAX,
                _ => area,
            }
        };
        Tile::ALL
            .into_iter()
            .min_by_key(|&t| cost(t))
            .unwrap_or(Tile::Square)
    }
}

/// Which GEMM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Forward,
    BackwardData,
    /// The input gradient when the kernel covers the whole input (fully connected).
    BackwardDataFc,
    BackwardWeight,
}

/// The conv pipelines of one device. Build once, reuse for every shape.
#[derive(Debug, Clone)]
pub struct Conv2d {
    gpu: Gpu,
    kernels: Arc<ConvKernels>,
}

#[derive(Debug)]
struct ConvKernels {
    forward: [Kernel; 5],
    backward_data: [Kernel; 5],
    backward_data_fc: [Kernel; 5],
    backward_weight: [Kernel; 5],
    split_reduce: Kernel,
    channel_sum: Kernel,
    zero_unreached: Kernel,
}

impl ConvKernels {
    fn gemm(&self, op: Op, tile: Tile) -> &Kernel {
        let i = tile as usize;
        match op {
            Op::Forward => &self.forward[i],
            Op::BackwardData => &self.backward_data[i],
            Op::BackwardDataFc => &self.backward_data_fc[i],
            Op::BackwardWeight => &self.backward_weight[i],
        }
    }
}

/// One GEMM launch of a plan: its uniform, grid and (with split K) the reduction.
#[derive(Debug)]
struct GemmLaunch {
    op: Op,
    tile: Tile,
    params: ConvParams,
    uniform: wgpu::Buffer,
    grid: Grid,
    /// With split K the launch writes partials to the plan's scratch; the reduction that adds
    /// them into the output (uniform, grid) runs after the op's last launch (the stride phases
    /// of the input gradient share one).
    reduce: Option<(wgpu::Buffer, Grid)>,
}

/// Uniform of `conv_zero_unreached.wgsl` (mirrors `ZeroParams` there).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct ZeroParams {
    len: u32,
    in_h: u32,
    in_w: u32,
    stride_h: u32,
    stride_w: u32,
    res_h: u32,
    fold_x: u32,
    total_wg: u32,
}

/// The input gradient's pass that zeroes the positions no kernel tap reaches: its uniform,
/// per-residue reached flags and grid.
#[derive(Debug)]
struct ZeroPass {
    uniform: wgpu::Buffer,
    reached: wgpu::Buffer,
    grid: Grid,
}

/// One pass of the bias-gradient reduction.
#[derive(Debug)]
struct SumPass {
    uniform: wgpu::Buffer,
    grid: Grid,
}

/// Everything a shape needs on the GPU besides the caller's tensors: uniforms, the kernel
/// offset tables and split-K scratch. Creating one compiles nothing; recording an op only
/// creates bind groups and records passes.
#[derive(Debug)]
pub struct Conv2dPlan {
    conv: Conv2d,
    shape: Conv2dShape,
    out_size: [u32; 2],
    forward: GemmLaunch,
    /// One launch (and its kernel-tap table) per stride phase that some tap reaches (at most
    /// kernel_h x kernel_w of them); one in all for stride 1.
    backward_data: Vec<(GemmLaunch, wgpu::Buffer)>,
    /// Zeroes the input positions no tap reaches, after `backward_data`, when there are any.
    zero_unreached: Option<ZeroPass>,
    backward_weight: GemmLaunch,
    bias_passes: Vec<SumPass>,
    table_fwd: wgpu::Buffer,
    scratch: wgpu::Buffer,
    sum_scratch: [wgpu::Buffer; 2],
    dummy: wgpu::Buffer,
}

/// Buffers for [`Conv2dPlan::record_forward`]. All need `STORAGE` usage.
#[derive(Clone, Copy, Debug)]
pub struct ForwardBuffers<'a> {
    /// `[batch, in_channels, in_h, in_w]`.
    pub input: &'a wgpu::Buffer,
    /// `[out_channels, in_channels / groups, kernel_h, kernel_w]`.
    pub weight: &'a wgpu::Buffer,
    /// `[out_channels]`, required exactly when the shape has a bias.
    pub bias: Option<&'a wgpu::Buffer>,
    /// `[batch, out_channels, out_h, out_w]`, written.
    pub output: &'a wgpu::Buffer,
}

/// Buffers for [`Conv2dPlan::record_backward_data`]. All need `STORAGE` usage.
#[derive(Clone, Copy, Debug)]
pub struct BackwardDataBuffers<'a> {
    /// `[batch, out_channels, out_h, out_w]`.
    pub grad_output: &'a wgpu::Buffer,
    /// `[out_channels, in_channels / groups, kernel_h, kernel_w]`.
    pub weight: &'a wgpu::Buffer,
    /// `[batch, in_channels, in_h, in_w]`, overwritten (not accumulated).
    pub grad_input: &'a wgpu::Buffer,
}

/// Buffers for [`Conv2dPlan::record_backward_weight`]. All need `STORAGE` usage, and
/// `COPY_DST` for the outputs when the batch is empty (they are then cleared).
#[derive(Clone, Copy, Debug)]
pub struct BackwardWeightBuffers<'a> {
    /// `[batch, out_channels, out_h, out_w]`.
    pub grad_output: &'a wgpu::Buffer,
    /// `[batch, in_channels, in_h, in_w]`.
    pub input: &'a wgpu::Buffer,
    /// `[out_channels, in_channels / groups, kernel_h, kernel_w]`, overwritten.
    pub grad_weight: &'a wgpu::Buffer,
    /// `[out_channels]`, overwritten; required exactly when the shape has a bias.
    pub grad_bias: Option<&'a wgpu::Buffer>,
}

/// The tile kinds of a plan's GEMM launches ([`Conv2dPlan::tiles`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GemmTiles {
    /// The forward GEMM.
    pub forward: &'static str,
    /// One per stride phase of the input gradient (empty when it has no work).
    pub input_gradient: Vec<&'static str>,
    /// The weight gradient.
    pub weight_gradient: &'static str,
}

/// Gradients returned by [`Conv2d::backward`].
#[derive(Clone, Debug, PartialEq)]
pub struct Conv2dGrads {
    /// Gradient with respect to the input, NCHW.
    pub input: Vec<f32>,
    /// Gradient with respect to the shared weight.
    pub weight: Vec<f32>,
    /// Gradient with respect to the bias (empty without bias).
    pub bias: Vec<f32>,
}

impl Conv2d {
    /// Compiles the conv pipelines on `gpu`'s device.
    ///
    /// # Errors
    /// Errors captured while creating the pipelines (validation, out of memory, device lost).
    pub fn new(gpu: &Gpu) -> Result<Self> {
        gpu.scoped(|| Ok(Self::new_unchecked(gpu)))
    }

    /// Compiles the conv pipelines on `gpu`'s device, awaiting the error scopes (web-friendly).
    ///
    /// # Errors
    /// As [`Conv2d::new`].
    pub async fn new_async(gpu: &Gpu) -> Result<Self> {
        gpu.scoped_async(|| Ok(Self::new_unchecked(gpu))).await
    }

    fn new_unchecked(gpu: &Gpu) -> Self {
        let device = gpu.device();
        let fwd = dispatch::shader(device, "conv_forward", &shaders::conv_forward());
        let bwd_data =
            dispatch::shader(device, "conv_backward_data", &shaders::conv_backward_data());
        let bwd_data_fc = dispatch::shader(
            device,
            "conv_backward_data_fc",
            &shaders::conv_backward_data_fc(),
        );
        let bwd_weight = dispatch::shader(
            device,
            "conv_backward_weight",
            &shaders::conv_backward_weight(),
        );
        use Binding::{Read, ReadWrite, Uniform};
        let build = |name, module, bindings: &[Binding]| -> [Kernel; 5] {
            Tile::ALL.map(|t| {
                Kernel::new(
                    device,
                    name,
                    module,
                    t.entry(),
                    bindings,
                    &tile_constants(t.dims()),
                )
            })
        };
        let kernels = ConvKernels {
            forward: build(
                "conv_forward",
                &fwd,
                &[Uniform, Read, Read, Read, Read, ReadWrite],
            ),
            backward_data: build(
                "conv_backward_data",
                &bwd_data,
                &[Uniform, Read, Read, Read, ReadWrite],
            ),
            backward_data_fc: build(
                "conv_backward_data_fc",
                &bwd_data_fc,
                &[Uniform, Read, Read, Read, ReadWrite],
            ),
            backward_weight: build(
                "conv_backward_weight",
                &bwd_weight,
                &[Uniform, Read, Read, Read, ReadWrite],
            ),
            split_reduce: Kernel::new(
                device,
                "split_reduce",
                &dispatch::shader(device, "split_reduce", shaders::SPLIT_REDUCE),
                "main",
                &[Uniform, Read, Read, ReadWrite],
                &[],
            ),
            channel_sum: Kernel::new(
                device,
                "channel_sum",
                &dispatch::shader(device, "channel_sum", shaders::CHANNEL_SUM),
                "main",
                &[Uniform, Read, ReadWrite],
                &[],
            ),
            zero_unreached: Kernel::new(
                device,
                "conv_zero_unreached",
                &dispatch::shader(device, "conv_zero_unreached", shaders::CONV_ZERO_UNREACHED),
                "main",
                &[Uniform, Read, ReadWrite],
                &[],
            ),
        };
        Self {
            gpu: gpu.clone(),
            kernels: Arc::new(kernels),
        }
    }

    /// The device these pipelines belong to.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Validates `shape` and prepares its uniforms, tables and scratch.
    ///
    /// # Errors
    /// [`Error::Shape`] for an invalid shape; [`Error::LimitExceeded`] when a tensor or the
    /// grid does not fit this device; errors captured while creating the buffers.
    pub fn plan(&self, shape: &Conv2dShape) -> Result<Conv2dPlan> {
        let out_size = shape.validate()?;
        let device = self.gpu.device();
        let limits = device.limits();
        let [oh, ow] = out_size;
        let s = shape;
        let base = ConvParams {
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
        };
        for (name, len) in [
            ("input", s.input_len()),
            ("weight", s.weight_len()),
            ("output", s.output_len()),
        ] {
            dispatch::check_binding_size(&self.gpu, name, len as u64 * 4)?;
        }
        let khw = s.kernel[0] * s.kernel[1];
        let pixels = s.batch * oh * ow;
        for (name, entries) in [
            ("conv kernel table", s.in_per_group() * khw),
            (
                "conv kernel table (input gradient)",
                s.out_per_group() * khw,
            ),
        ] {
            dispatch::check_binding_size(&self.gpu, name, u64::from(entries) * 16)?;
        }
        let fwd = self.gemm_params(
            Op::Forward,
            base,
            [s.out_per_group(), pixels, s.in_per_group() * khw],
            s.output_len() as u32,
        )?;
        let fully_connected = s.kernel == s.in_size && s.padding == [0, 0] && s.dilation == [1, 1];
        // Input gradient: one GEMM per stride phase (no zero taps), or the fully connected one.
        let mut bwd_data = Vec::new();
        if fully_connected {
            let params = self.gemm_params(
                Op::BackwardDataFc,
                base,
                [s.batch, s.in_per_group() * khw, s.out_per_group()],
                s.input_len() as u32,
            )?;
            // The fully connected shader reads no tap table.
            bwd_data.push((Op::BackwardDataFc, params, Vec::new()));
        } else {
            for phase in data_phases(s, out_size)? {
                let mut pb = base;
                pb.phase_h = phase.start[0];
                pb.phase_w = phase.start[1];
                pb.step_h = phase.step[0];
                pb.step_w = phase.step[1];
                pb.sub_h = phase.count[0];
                pb.sub_w = phase.count[1];
                let n = s.batch * phase.count[0] * phase.count[1];
                let k = phase.table.len() as u32;
                if n == 0 {
                    continue;
                }
                let params = self.gemm_params(
                    Op::BackwardData,
                    pb,
                    [s.in_per_group(), n, k],
                    s.input_len() as u32,
                )?;
                bwd_data.push((Op::BackwardData, params, phase.table));
            }
            // The phases write disjoint positions of the same split slices, which one
            // reduction after the last phase adds: they share one split count.
            let shared = bwd_data
                .iter()
                .map(|(_, (p, _, _), _)| p.splits)
                .max()
                .unwrap_or(1);
            for (_, params, _) in &mut bwd_data {
                *params = self.with_splits(*params, shared)?;
            }
        }
        let bwd_weight = self.gemm_params(
            Op::BackwardWeight,
            base,
            [s.out_per_group(), s.in_per_group() * khw, pixels],
            s.weight_len() as u32,
        )?;
        let scratch_len = [&fwd, &bwd_weight]
            .into_iter()
            .chain(bwd_data.iter().map(|(_, p, _)| p))
            .filter(|(p, _, _)| p.splits > 1)
            .map(|(p, _, _)| u64::from(p.splits) * u64::from(p.split_stride))
            .max()
            .unwrap_or(1);

        let forward_taps = forward_table(s)?;
        self.gpu.scoped(|| {
            let table_fwd = table_buffer(&self.gpu, "conv table (ci, kh, kw)", &forward_taps);
            let none = wgpu::BufferUsages::empty();
            let scratch =
                dispatch::scratch(&self.gpu, "conv split-K partials", scratch_len * 4, none);
            // `reduce`: this launch ends its op and adds the split partials.
            let launch = |op,
                          (params, tile, grid): (ConvParams, Tile, Grid),
                          reduce: bool|
             -> Result<GemmLaunch> {
                let reduce = if reduce && params.splits > 1 {
                    let len = params.split_stride;
                    let rgrid = Grid::fold(
                        u64::from(len.div_ceil(256)),
                        limits.max_compute_workgroups_per_dimension,
                    )?;
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
                        fold_x: rgrid.x.max(1),
                        total_wg: rgrid.total,
                    };
                    Some((
                        dispatch::uniform(&self.gpu, "conv split reduce", &rp),
                        rgrid,
                    ))
                } else {
                    None
                };
                Ok(GemmLaunch {
                    op,
                    tile,
                    params,
                    uniform: dispatch::uniform(&self.gpu, "conv params", &params),
                    grid,
                    reduce,
                })
            };
            let forward = launch(Op::Forward, fwd, true)?;
            let mut backward_data = Vec::new();
            let phases = bwd_data.len();
            for (i, (op, params, table)) in bwd_data.into_iter().enumerate() {
                let table = table_buffer(&self.gpu, "conv table (co, kh, kw)", &table);
                backward_data.push((launch(op, params, i + 1 == phases)?, table));
            }
            let backward_weight = launch(Op::BackwardWeight, bwd_weight, true)?;
            let zero_unreached = if fully_connected {
                None
            } else {
                self.zero_pass(s)?
            };

            // Bias gradient: passes of channel_sum until one value per channel is left.
            let mut bias_passes = Vec::new();
            let mut sum_len = [1u64, 1u64];
            if s.bias && s.out_channels > 0 {
                let (mut outer, mut inner) = (s.batch, oh * ow);
                let mut pass = 0;
                loop {
                    let count = outer * inner;
                    let chunks = count.div_ceil(SUM_CHUNK).max(1);
                    let grid = Grid::fold(
                        u64::from(chunks) * u64::from(s.out_channels),
                        limits.max_compute_workgroups_per_dimension,
                    )?;
                    let sp = SumParams {
                        outer,
                        channels: s.out_channels,
                        inner,
                        chunks,
                        fold_x: grid.x.max(1),
                        total_wg: grid.total,
                        _pad: [0; 2],
                    };
                    bias_passes.push(SumPass {
                        uniform: dispatch::uniform(&self.gpu, "conv bias sum", &sp),
                        grid,
                    });
                    if chunks == 1 {
                        break;
                    }
                    sum_len[pass % 2] = sum_len[pass % 2].max(u64::from(chunks * s.out_channels));
                    outer = 1;
                    inner = chunks;
                    pass += 1;
                }
            }
            let sum_scratch = sum_len
                .map(|len| dispatch::scratch(&self.gpu, "conv bias partials", len * 4, none));
            let dummy = dispatch::scratch(&self.gpu, "conv no bias", 4, none);
            Ok(Conv2dPlan {
                conv: self.clone(),
                shape: *s,
                out_size,
                forward,
                backward_data,
                zero_unreached,
                backward_weight,
                bias_passes,
                table_fwd,
                scratch,
                sum_scratch,
                dummy,
            })
        })
    }

    /// Chooses tile shape and K splits for a GEMM of `[m, n, k]` per group.
    fn gemm_params(
        &self,
        op: Op,
        base: ConvParams,
        [m, n, k]: [u32; 3],
        out_len: u32,
    ) -> Result<(ConvParams, Tile, Grid)> {
        let limits = self.gpu.device().limits();
        let tile = Tile::pick(m, n, k);
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
        let wanted = (u64::from(target).div_ceil(tiles.max(1))) as u32;
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
        let grid = Grid::fold(
            tiles * u64::from(splits),
            self.gpu
                .device()
                .limits()
                .max_compute_workgroups_per_dimension,
        )?;
        let params = ConvParams {
            k_chunk,
            splits,
            total_wg: grid.total,
            fold_x: grid.x.max(1),
            ..params
        };
        Ok((params, grid))
    }

    /// `gemm` (from [`Conv2d::gemm_params`]) with `splits` K splits, `splits` at least the
    /// count it has: K is cut into `splits` chunks of whole 16s, and splits past the end of
    /// K write zero partials, so every split slice of the GEMM's outputs is written.
    fn with_splits(
        &self,
        (params, tile, grid): (ConvParams, Tile, Grid),
        splits: u32,
    ) -> Result<(ConvParams, Tile, Grid)> {
        debug_assert!(splits >= params.splits, "with_splits only raises the count");
        if splits == params.splits {
            return Ok((params, tile, grid));
        }
        let (params, grid) = self.split_k(params, chunk_of(params.gemm_k, splits), splits)?;
        Ok((params, tile, grid))
    }

    /// Forward pass from host slices: uploads, runs, reads back `[batch, c_out, out_h, out_w]`.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] when a slice does not match `shape`, plus everything
    /// [`Conv2d::plan`] and the recording return.
    pub async fn forward(
        &self,
        shape: &Conv2dShape,
        input: &[f32],
        weight: &[f32],
        bias: Option<&[f32]>,
    ) -> Result<Vec<f32>> {
        // The shape first: an invalid one's saturated lengths are no length to report.
        shape.validate()?;
        check_len("input", shape.input_len(), input)?;
        check_len("weight", shape.weight_len(), weight)?;
        check_bias(shape, bias)?;
        let plan = self.plan(shape)?;
        let gpu = &self.gpu;
        let output = dispatch::record_and_submit(gpu, |encoder| {
            let input = dispatch::upload(gpu, "input", input);
            let weight = dispatch::upload(gpu, "weight", weight);
            let bias = bias.map(|b| dispatch::upload(gpu, "bias", b));
            let output = dispatch::zeros(gpu, "output", shape.output_len());
            plan.record_forward(
                encoder,
                &ForwardBuffers {
                    input: &input,
                    weight: &weight,
                    bias: bias.as_ref(),
                    output: &output,
                },
            )?;
            Ok(output)
        })
        .await?;
        dispatch::read_back(gpu, &output, shape.output_len()).await
    }

    /// Both gradients (and the bias gradient when the shape has a bias) from host slices.
    ///
    /// # Errors
    /// As [`Conv2d::forward`].
    pub async fn backward(
        &self,
        shape: &Conv2dShape,
        input: &[f32],
        weight: &[f32],
        grad_output: &[f32],
    ) -> Result<Conv2dGrads> {
        // The shape first: an invalid one's saturated lengths are no length to report.
        shape.validate()?;
        check_len("input", shape.input_len(), input)?;
        check_len("weight", shape.weight_len(), weight)?;
        check_len("grad_output", shape.output_len(), grad_output)?;
        let plan = self.plan(shape)?;
        let gpu = &self.gpu;
        let (gi, gw, gb) = dispatch::record_and_submit(gpu, |encoder| {
            let input = dispatch::upload(gpu, "input", input);
            let weight = dispatch::upload(gpu, "weight", weight);
            let grad_output = dispatch::upload(gpu, "grad_output", grad_output);
            let gi = dispatch::zeros(gpu, "grad_input", shape.input_len());
            let gw = dispatch::zeros(gpu, "grad_weight", shape.weight_len());
            let gb = dispatch::zeros(gpu, "grad_bias", shape.bias_len());
            plan.record_backward_data(
                encoder,
                &BackwardDataBuffers {
                    grad_output: &grad_output,
                    weight: &weight,
                    grad_input: &gi,
                },
            )?;
            plan.record_backward_weight(
                encoder,
                &BackwardWeightBuffers {
                    grad_output: &grad_output,
                    input: &input,
                    grad_weight: &gw,
                    grad_bias: shape.bias.then_some(&gb),
                },
            )?;
            Ok((gi, gw, gb))
        })
        .await?;
        Ok(Conv2dGrads {
            input: dispatch::read_back(gpu, &gi, shape.input_len()).await?,
            weight: dispatch::read_back(gpu, &gw, shape.weight_len()).await?,
            bias: dispatch::read_back(gpu, &gb, shape.bias_len()).await?,
        })
    }

    /// Blocking [`Conv2d::forward`] (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn forward_blocking(
        &self,
        shape: &Conv2dShape,
        input: &[f32],
        weight: &[f32],
        bias: Option<&[f32]>,
    ) -> Result<Vec<f32>> {
        pollster::block_on(self.forward(shape, input, weight, bias))
    }

    /// Blocking [`Conv2d::backward`] (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn backward_blocking(
        &self,
        shape: &Conv2dShape,
        input: &[f32],
        weight: &[f32],
        grad_output: &[f32],
    ) -> Result<Conv2dGrads> {
        pollster::block_on(self.backward(shape, input, weight, grad_output))
    }
}

/// A bias (or bias-gradient) buffer is given exactly when the shape has a bias, and holds one
/// value per output channel.
fn check_bias_buffer(
    dev: &Gpu,
    s: &Conv2dShape,
    name: &'static str,
    buffer: Option<&wgpu::Buffer>,
) -> Result<()> {
    match (s.bias, buffer) {
        (true, Some(b)) => check_buffer(
            dev,
            name,
            b,
            s.bias_len() as u64,
            wgpu::BufferUsages::STORAGE,
        ),
        (false, None) => Ok(()),
        _ => Err(Error::shape(format!(
            "{name} buffer given iff the shape has a bias"
        ))),
    }
}

fn check_bias(shape: &Conv2dShape, bias: Option<&[f32]>) -> Result<()> {
    match (shape.bias, bias) {
        (true, Some(b)) => check_len("bias", shape.bias_len(), b),
        (false, None) => Ok(()),
        (true, None) => Err(Error::shape("the shape has a bias but no bias was given")),
        (false, Some(_)) => Err(Error::shape(
            "a bias was given but the shape has none: use Conv2dShape::with_bias(true)",
        )),
    }
}

/// K steps per chunk when `k` is cut into `splits` chunks: whole 16s, at least 16.
fn chunk_of(k: u32, splits: u32) -> u32 {
    k.max(1).div_ceil(splits).div_ceil(16) * 16
}

/// One stride phase of the input gradient: input positions `start + step * i` per axis
/// (`count` of them) and the kernel-tap table of the taps that reach them.
struct DataPhase {
    start: [u32; 2],
    step: [u32; 2],
    count: [u32; 2],
    table: Vec<[i32; 4]>,
}

/// Residues modulo the stride of axis `axis` (below the input size) that some kernel tap
/// reaches, each with its taps: input position `ih` meets tap `t` when
/// `ih + pad - t * dil` is a multiple of the stride. At most `kernel` residues, found from the
/// taps (no walk over the stride).
fn reached_residues(s: &Conv2dShape, axis: usize) -> Vec<(u32, Vec<u32>)> {
    let stride = i64::from(s.stride[axis]);
    let mut reached: Vec<(u32, Vec<u32>)> = Vec::new();
    for t in 0..s.kernel[axis] {
        let r = (i64::from(t) * i64::from(s.dilation[axis]) - i64::from(s.padding[axis]))
            .rem_euclid(stride);
        if r >= i64::from(s.in_size[axis]) {
            continue;
        }
        let r = r as u32;
        match reached.iter_mut().find(|(q, _)| *q == r) {
            Some((_, taps)) => taps.push(t),
            None => reached.push((r, vec![t])),
        }
    }
    reached.sort_by_key(|&(r, _)| r);
    reached
}

/// Stride phases of the input gradient that some tap reaches: the input positions congruent
/// to (ph, pw) modulo the stride, each with only the kernel taps that reach them (for stride
/// 1, one phase with every tap). Each tap then meets each position of its phase at a whole
/// output coordinate. Phases no tap reaches are left to the zero pass.
fn data_phases(s: &Conv2dShape, out_size: [u32; 2]) -> Result<Vec<DataPhase>> {
    let rows = reached_residues(s, 0);
    let cols = reached_residues(s, 1);
    let mut phases = Vec::with_capacity(rows.len() * cols.len());
    for (ph, th) in &rows {
        for (pw, tw) in &cols {
            phases.push(DataPhase {
                start: [*ph, *pw],
                step: s.stride,
                count: [
                    (s.in_size[0] - ph).div_ceil(s.stride[0]),
                    (s.in_size[1] - pw).div_ceil(s.stride[1]),
                ],
                table: data_table(s, out_size, th, tw, [*ph, *pw])?,
            });
        }
    }
    Ok(phases)
}

/// A table entry as the shaders read it (i32), or the error naming what does not fit.
fn entry(what: &str, value: i64) -> Result<i32> {
    i32::try_from(value).map_err(|_| {
        Error::shape(format!(
            "the conv tap table's {what} ({value}) does not fit i32: the shape is too large"
        ))
    })
}

/// Per-(ci, kh, kw) offsets the forward and weight-gradient shaders read instead of
/// dividing: `(ci * in_h * in_w, kh * dil_h, kw * dil_w, 0)`. Checked arithmetic: an entry
/// past i32 is an error.
fn forward_table(s: &Conv2dShape) -> Result<Vec<[i32; 4]>> {
    let plane = i64::from(s.in_size[0]) * i64::from(s.in_size[1]);
    let taps = u64::from(s.in_per_group()) * u64::from(s.kernel[0]) * u64::from(s.kernel[1]);
    let mut table = Vec::with_capacity(usize::try_from(taps).unwrap_or(0));
    for c in 0..s.in_per_group() {
        let channel = entry("input channel offset", i64::from(c) * plane)?;
        for y in 0..s.kernel[0] {
            let dy = entry("row offset", i64::from(y) * i64::from(s.dilation[0]))?;
            for x in 0..s.kernel[1] {
                let dx = entry("column offset", i64::from(x) * i64::from(s.dilation[1]))?;
                table.push([channel, dy, dx, 0]);
            }
        }
    }
    Ok(table)
}

/// The input-gradient taps `(co, th[i], tw[j])` of the stride phase starting at input
/// position `start`: `(co * out_h * out_w, dy, dx, co * c_in_g * kh * kw + kh * k_w + kw)`,
/// where `(dy, dx)` is the tap's output coordinate minus the position's index within the
/// phase: `(start + pad - kh * dil) / stride`, exact for the taps that reach the phase. The
/// shader then needs no division. Checked arithmetic: an entry past i32 is an error.
fn data_table(
    s: &Conv2dShape,
    [oh, ow]: [u32; 2],
    th: &[u32],
    tw: &[u32],
    start: [u32; 2],
) -> Result<Vec<[i32; 4]>> {
    let (kh, kw) = (i64::from(s.kernel[0]), i64::from(s.kernel[1]));
    let offset = |axis: usize, tap: u32| -> Result<i32> {
        let q = i64::from(start[axis]) + i64::from(s.padding[axis])
            - i64::from(tap) * i64::from(s.dilation[axis]);
        entry("output offset", q.div_euclid(i64::from(s.stride[axis])))
    };
    let (dys, dxs) = (
        th.iter()
            .map(|&y| offset(0, y))
            .collect::<Result<Vec<_>>>()?,
        tw.iter()
            .map(|&x| offset(1, x))
            .collect::<Result<Vec<_>>>()?,
    );
    let plane = i64::from(oh) * i64::from(ow);
    let filter = i64::from(s.in_per_group()) * kh * kw;
    let mut table = Vec::with_capacity(s.out_per_group() as usize * th.len() * tw.len());
    for c in 0..s.out_per_group() {
        let channel = entry("output channel offset", i64::from(c) * plane)?;
        for (&y, &dy) in th.iter().zip(&dys) {
            for (&x, &dx) in tw.iter().zip(&dxs) {
                let tap = i64::from(c) * filter + i64::from(y) * kw + i64::from(x);
                table.push([channel, dy, dx, entry("weight index", tap)?]);
            }
        }
    }
    Ok(table)
}

/// Uploads a tap table; an empty one (no input or output channels) gets one
/// unused entry so that it can be bound.
fn table_buffer(gpu: &Gpu, label: &str, table: &[[i32; 4]]) -> wgpu::Buffer {
    let table = if table.is_empty() {
        &[[0; 4]][..]
    } else {
        table
    };
    dispatch::storage_init(gpu, label, table, wgpu::BufferUsages::empty())
}

impl Conv2d {
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
        let limits = self.gpu.device().limits();
        let grid = Grid::fold(
            len.div_ceil(256),
            limits.max_compute_workgroups_per_dimension,
        )?;
        let params = ZeroParams {
            len: len as u32,
            in_h: s.in_size[0],
            in_w: s.in_size[1],
            stride_h: s.stride[0],
            stride_w: s.stride[1],
            res_h: res[0],
            fold_x: grid.x.max(1),
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

impl Conv2dPlan {
    /// The shape this plan was made for.
    pub fn shape(&self) -> &Conv2dShape {
        &self.shape
    }

    /// Output size `[out_h, out_w]`.
    pub fn out_size(&self) -> [u32; 2] {
        self.out_size
    }

    /// K splits of (forward, input gradient, weight gradient): 1 means no split.
    pub fn splits(&self) -> [u32; 3] {
        [
            self.forward.params.splits,
            self.backward_data
                .iter()
                .map(|(l, _)| l.params.splits)
                .max()
                .unwrap_or(1),
            self.backward_weight.params.splits,
        ]
    }

    /// The tile kind of each GEMM launch: forward, input gradient (one launch per stride
    /// phase), weight gradient. One of `"square"` (64 x 64), `"wide"` (16 x 256), `"tall"`
    /// (256 x 16), `"skinny"` (4 x 256, one column per thread) or `"narrow"` (4 x 16, 16
    /// threads per column): what a benchmark ran, and which kernel a test covered.
    pub fn tiles(&self) -> GemmTiles {
        GemmTiles {
            forward: self.forward.tile.name(),
            input_gradient: self
                .backward_data
                .iter()
                .map(|(l, _)| l.tile.name())
                .collect(),
            weight_gradient: self.backward_weight.tile.name(),
        }
    }

    fn device(&self) -> &wgpu::Device {
        self.conv.gpu.device()
    }

    /// Records the forward pass into `encoder`. Never submits.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`], [`Error::MissingUsage`], [`Error::LimitExceeded`] for a
    /// buffer too large to bind, [`Error::Shape`] for a bias that does not match the shape,
    /// [`Error::Aliasing`] for an output that is also an input, [`Error::BufferMapped`],
    /// and [`Error::Validation`] for a buffer wgpu refuses (destroyed, of another device).
    /// Nothing is recorded on error.
    pub fn record_forward(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        b: &ForwardBuffers<'_>,
    ) -> Result<()> {
        dispatch::record_checked(&self.conv.gpu, encoder, |rec| self.build_forward(rec, b))
    }

    fn build_forward(&self, rec: &mut Recording, b: &ForwardBuffers<'_>) -> Result<()> {
        let s = &self.shape;
        let dev = &self.conv.gpu;
        let st = wgpu::BufferUsages::STORAGE;
        check_buffer(dev, "input", b.input, s.input_len() as u64, st)?;
        check_buffer(dev, "weight", b.weight, s.weight_len() as u64, st)?;
        check_buffer(dev, "output", b.output, s.output_len() as u64, st)?;
        check_bias_buffer(dev, s, "bias", b.bias)?;
        check_distinct(
            "output",
            b.output,
            &[("input", b.input), ("weight", b.weight)],
        )?;
        if let Some(bias) = b.bias {
            check_distinct("output", b.output, &[("bias", bias)])?;
        }
        if s.output_len() == 0 {
            return Ok(());
        }
        let bias = b.bias.unwrap_or(&self.dummy);
        self.record_gemm(
            rec,
            &self.forward,
            &[b.input, b.weight, bias, &self.table_fwd],
            b.output,
            bias,
        );
        Ok(())
    }

    /// Records the input gradient into `encoder`: `grad_input` is overwritten.
    ///
    /// # Errors
    /// As [`Conv2dPlan::record_forward`].
    pub fn record_backward_data(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        b: &BackwardDataBuffers<'_>,
    ) -> Result<()> {
        dispatch::record_checked(&self.conv.gpu, encoder, |rec| {
            self.build_backward_data(rec, b)
        })
    }

    fn build_backward_data(&self, rec: &mut Recording, b: &BackwardDataBuffers<'_>) -> Result<()> {
        let s = &self.shape;
        let dev = &self.conv.gpu;
        let st = wgpu::BufferUsages::STORAGE;
        check_buffer(dev, "grad_output", b.grad_output, s.output_len() as u64, st)?;
        check_buffer(dev, "weight", b.weight, s.weight_len() as u64, st)?;
        check_buffer(dev, "grad_input", b.grad_input, s.input_len() as u64, st)?;
        check_distinct(
            "grad_input",
            b.grad_input,
            &[("grad_output", b.grad_output), ("weight", b.weight)],
        )?;
        if s.input_len() == 0 {
            return Ok(());
        }
        for (launch, table) in &self.backward_data {
            self.record_gemm(
                rec,
                launch,
                &[b.grad_output, b.weight, table],
                b.grad_input,
                &self.dummy,
            );
        }
        if let Some(zero) = &self.zero_unreached {
            self.conv.kernels.zero_unreached.run(
                self.device(),
                rec,
                &[&zero.uniform, &zero.reached, b.grad_input],
                zero.grid,
            );
        }
        Ok(())
    }

    /// Records the weight gradient (and the bias gradient when the shape has a bias) into
    /// `encoder`. Both are overwritten, not accumulated: the sum over the batch and all
    /// positions, in a fixed order.
    ///
    /// # Errors
    /// As [`Conv2dPlan::record_forward`].
    pub fn record_backward_weight(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        b: &BackwardWeightBuffers<'_>,
    ) -> Result<()> {
        dispatch::record_checked(&self.conv.gpu, encoder, |rec| {
            self.build_backward_weight(rec, b)
        })
    }

    fn build_backward_weight(
        &self,
        rec: &mut Recording,
        b: &BackwardWeightBuffers<'_>,
    ) -> Result<()> {
        let s = &self.shape;
        let dev = &self.conv.gpu;
        let st = wgpu::BufferUsages::STORAGE;
        check_buffer(dev, "grad_output", b.grad_output, s.output_len() as u64, st)?;
        check_buffer(dev, "input", b.input, s.input_len() as u64, st)?;
        check_buffer(dev, "grad_weight", b.grad_weight, s.weight_len() as u64, st)?;
        check_bias_buffer(dev, s, "grad_bias", b.grad_bias)?;
        check_distinct(
            "grad_weight",
            b.grad_weight,
            &[("grad_output", b.grad_output), ("input", b.input)],
        )?;
        if let Some(gb) = b.grad_bias {
            check_distinct(
                "grad_bias",
                gb,
                &[
                    ("grad_output", b.grad_output),
                    ("input", b.input),
                    ("grad_weight", b.grad_weight),
                ],
            )?;
        }
        if s.output_len() == 0 {
            // No positions: the gradients are zero (a clear, not a dispatch). Check every
            // buffer before clearing any.
            let outputs = [
                ("grad_weight", Some(b.grad_weight), s.weight_len()),
                ("grad_bias", b.grad_bias, s.bias_len()),
            ];
            let outputs = outputs
                .into_iter()
                .filter_map(|(name, buf, len)| Some((name, buf?, len as u64)));
            for (name, buf, _) in outputs.clone() {
                if buf.size() > 0 {
                    let copy_dst = wgpu::BufferUsages::COPY_DST;
                    dispatch::check_buffer_unbound(name, buf, 0, copy_dst)?;
                }
            }
            for (_, buf, len) in outputs {
                if len > 0 {
                    rec.clear(buf, len * 4);
                }
            }
            return Ok(());
        }
        if s.weight_len() > 0 {
            self.record_gemm(
                rec,
                &self.backward_weight,
                &[b.grad_output, b.input, &self.table_fwd],
                b.grad_weight,
                &self.dummy,
            );
        }
        if let Some(gb) = b.grad_bias {
            self.record_bias_grad(rec, b.grad_output, gb);
        }
        Ok(())
    }

    fn record_gemm(
        &self,
        rec: &mut Recording,
        launch: &GemmLaunch,
        inputs: &[&wgpu::Buffer],
        output: &wgpu::Buffer,
        bias: &wgpu::Buffer,
    ) {
        let kernels = &self.conv.kernels;
        let kernel = kernels.gemm(launch.op, launch.tile);
        let target = if launch.params.splits > 1 {
            &self.scratch
        } else {
            output
        };
        let mut bufs: Vec<&wgpu::Buffer> = vec![&launch.uniform];
        bufs.extend_from_slice(inputs);
        bufs.push(target);
        kernel.run(self.device(), rec, &bufs, launch.grid);
        if let Some((uniform, grid)) = &launch.reduce {
            kernels.split_reduce.run(
                self.device(),
                rec,
                &[uniform, &self.scratch, bias, output],
                *grid,
            );
        }
    }

    fn record_bias_grad(
        &self,
        rec: &mut Recording,
        grad_output: &wgpu::Buffer,
        grad_bias: &wgpu::Buffer,
    ) {
        let k = &self.conv.kernels.channel_sum;
        let last = self.bias_passes.len().saturating_sub(1);
        for (i, pass) in self.bias_passes.iter().enumerate() {
            let src = if i == 0 {
                grad_output
            } else {
                &self.sum_scratch[(i - 1) % 2]
            };
            let dst = if i == last {
                grad_bias
            } else {
                &self.sum_scratch[i % 2]
            };
            k.run(self.device(), rec, &[&pass.uniform, src, dst], pass.grid);
        }
    }
}
