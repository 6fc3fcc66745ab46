//! The conv family's kernels as the kernel table declares them: uniform structs (their WGSL
//! is generated from these), bindings, modules and pipelines.
//!
//! The GEMM modules are compositions: `conv_gemm_common.wgsl` (tiles, accumulators, absent
//! terms), `conv_gemm_skinny.wgsl` (the `skinny` entry point), `conv_gemm_main.wgsl` (the
//! register-tile `main`, except for the weight gradient, which has its own), then the op's
//! addressing (`conv_forward.wgsl`, `conv_backward_data.wgsl`, `conv_backward_data_fc.wgsl`,
//! `conv_backward_weight.wgsl`). Each op has two kernels, `<op>` (entry `main`, one variant
//! per register tile) and `<op>_skinny` (entry `skinny`, skinny and narrow tiles); see
//! [`Tile`]. The plain-GEMM kernel of pointwise shapes, `conv_pointwise`, is
//! `conv_gemm_common.wgsl` then `conv_gemm_pointwise.wgsl`, one kernel for all three ops (its
//! operands come as A, B and C with strides, [`PointwiseParams`]).

use super::tiles::{Tile, MAIN_VARIANTS, POINTWISE_VARIANTS, SKINNY_K, SKINNY_VARIANTS};
use crate::dispatch::{KernelDecl, Part};
use crate::wgsl;

crate::uniform_struct! {
    /// The uniform block of the conv GEMMs (`p` in `shaders/conv_gemm_common.wgsl`).
    pub(crate) struct ConvParams {
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
        /// The launch's GEMM, per group: rows, columns, reduction length.
        gemm_m: u32,
        gemm_n: u32,
        gemm_k: u32,
        /// K steps per split.
        k_chunk: u32,
        /// K splits: each writes partials to its slice `split * split_stride` of the target.
        splits: u32,
        tiles_m: u32,
        tiles_n: u32,
        total_wg: u32,
        fold_x: u32,
        /// The forward adds the bias itself when K is not split.
        has_bias: u32,
        split_stride: u32,
        c_in_g: u32,
        c_out_g: u32,
        /// Input gradient: the stride phase's first input position, its step (the stride) and
        /// its positions per axis.
        phase_h: u32,
        phase_w: u32,
        step_h: u32,
        step_w: u32,
        sub_h: u32,
        sub_w: u32,
        pad: u32,
    }
}

crate::uniform_struct! {
    /// The operands of the plain-GEMM kernel (`q` in `shaders/conv_gemm_pointwise.wgsl`), in
    /// f32 elements: `A[m][k] = a[g * a_sg + blk * a_si + m * a_sm + kp * a_sk]` with
    /// `k = blk * k_block + kp` (terms where `kp < k_valid`, zeros past it), `B[k][n]` the
    /// same with `b_*` and n, `C[g][m][n] = c[g * c_sg + m * c_sm + n * c_sn]`; `g` is the
    /// grid's group axis (`ConvParams::groups` counts it). `a_k_fast`, `b_k_fast`: the
    /// operand is contiguous along k (its loader walks k fastest), else along m or n.
    pub(crate) struct PointwiseParams {
        a_sm: u32,
        a_sk: u32,
        a_si: u32,
        a_sg: u32,
        b_sn: u32,
        b_sk: u32,
        b_si: u32,
        b_sg: u32,
        c_sm: u32,
        c_sn: u32,
        c_sg: u32,
        k_block: u32,
        k_valid: u32,
        a_k_fast: u32,
        b_k_fast: u32,
        pad: u32,
    }
}

crate::uniform_struct! {
    /// `split_reduce`: `len` outputs, each the sum of `splits` partials `split_stride` apart,
    /// plus (`has_bias`) `bias[(i / inner) % channels]`.
    pub(crate) struct SplitParams {
        len: u32,
        splits: u32,
        split_stride: u32,
        has_bias: u32,
        channels: u32,
        inner: u32,
        fold_x: u32,
        total_wg: u32,
    }
}

crate::uniform_struct! {
    /// `channel_sum`: a `[outer][channels][inner]` view summed per channel into `chunks`
    /// partials each.
    pub(crate) struct SumParams {
        outer: u32,
        channels: u32,
        inner: u32,
        chunks: u32,
        fold_x: u32,
        total_wg: u32,
        pad: [u32; 2],
    }
}

crate::uniform_struct! {
    /// `conv_zero_unreached`: `len` input-gradient elements of `in_h x in_w` planes;
    /// `reached` holds `res_h` row residues, then the column residues.
    pub(crate) struct ZeroParams {
        len: u32,
        in_h: u32,
        in_w: u32,
        stride_h: u32,
        stride_w: u32,
        res_h: u32,
        fold_x: u32,
        total_wg: u32,
    }
}

crate::bindings! {
    /// The forward GEMM. `bias` is read only when the shape has a bias and K is not split
    /// (a run-time test): without a bias the plan binds a 4-byte stand-in.
    pub(crate) struct ForwardBindings {
        p @ 0: uniform(ConvParams),
        input @ 1: read,
        weight @ 2: read,
        bias @ 3: read,
        ktab @ 4: read,
        output @ 5: read_write,
    }
}

crate::bindings! {
    /// The col2im gather of the input gradient's columns path.
    pub(crate) struct Col2imBindings {
        p @ 0: uniform(ConvParams),
        cols @ 1: read,
        grad_in @ 2: read_write,
    }
}

crate::bindings! {
    /// The input gradient, one stride phase: `ktab` holds the phase's taps.
    pub(crate) struct BackwardDataBindings {
        p @ 0: uniform(ConvParams),
        grad_out @ 1: read,
        weight @ 2: read,
        ktab @ 3: read,
        grad_in @ 4: read_write,
    }
}

crate::bindings! {
    /// The input gradient of a fully connected layer (no tap table).
    pub(crate) struct BackwardDataFcBindings {
        p @ 0: uniform(ConvParams),
        grad_out @ 1: read,
        weight @ 2: read,
        grad_in @ 3: read_write,
    }
}

crate::bindings! {
    /// The weight gradient.
    pub(crate) struct BackwardWeightBindings {
        p @ 0: uniform(ConvParams),
        grad_out @ 1: read,
        input @ 2: read,
        ktab @ 3: read,
        grad_weight @ 4: read_write,
    }
}

crate::bindings! {
    /// The plain GEMM of a pointwise shape: forward (A = weight, B = input, the bias),
    /// input gradient (A = weight, B = output gradient) or weight gradient (A = output
    /// gradient, B = input); `c` is the op's output (or the split-K partials).
    pub(crate) struct PointwiseBindings {
        p @ 0: uniform(ConvParams),
        q @ 1: uniform(PointwiseParams),
        a_src @ 2: read,
        b_src @ 3: read,
        bias @ 4: read,
        c_dst @ 5: read_write,
    }
}

crate::bindings! {
    /// The split-K reduction. `bias` is read only when `has_bias` is set (a run-time test):
    /// otherwise the plan binds a 4-byte stand-in.
    pub(crate) struct SplitReduceBindings {
        p @ 0: uniform(SplitParams),
        partials @ 1: read,
        bias @ 2: read,
        out @ 3: read_write,
    }
}

crate::bindings! {
    /// One pass of the per-channel sum (bias gradient).
    pub(crate) struct ChannelSumBindings {
        p @ 0: uniform(SumParams),
        src @ 1: read,
        dst @ 2: read_write,
    }
}

crate::bindings! {
    /// The zeros of the input-gradient positions no tap reaches.
    pub(crate) struct ZeroUnreachedBindings {
        p @ 0: uniform(ZeroParams),
        reached @ 1: read,
        grad_in @ 2: read_write,
    }
}

/// Elements each `channel_sum` thread adds per pass (`SUM_PER_THREAD` in WGSL).
pub(crate) const SUM_PER_THREAD: u32 = 16;

const GEMM_COMMON: Part = wgsl!("conv_gemm_common");
const GEMM_SKINNY: Part = wgsl!("conv_gemm_skinny");
const GEMM_MAIN: Part = wgsl!("conv_gemm_main");
const GEMM_CONSTANTS: &[(&str, u32)] = &[("SKINNY_K", SKINNY_K)];

crate::module!(FORWARD_MODULE = "conv_forward", [ConvParams], constants: GEMM_CONSTANTS,
    parts: [GEMM_COMMON, GEMM_SKINNY, GEMM_MAIN, "conv_forward"]);
crate::module!(BACKWARD_DATA_MODULE = "conv_backward_data", [ConvParams], constants: GEMM_CONSTANTS,
    parts: [GEMM_COMMON, GEMM_SKINNY, GEMM_MAIN, "conv_backward_data"]);
crate::module!(BACKWARD_DATA_FC_MODULE = "conv_backward_data_fc", [ConvParams],
    constants: GEMM_CONSTANTS, parts: [GEMM_COMMON, GEMM_SKINNY, GEMM_MAIN, "conv_backward_data_fc"]);
crate::module!(BACKWARD_WEIGHT_MODULE = "conv_backward_weight", [ConvParams],
    constants: GEMM_CONSTANTS, parts: [GEMM_COMMON, GEMM_SKINNY, "conv_backward_weight"]);

/// The two kernels of a GEMM module: `$main` (register tiles) and `$skinny`.
macro_rules! gemm_kernels {
    ($main:ident, $skinny:ident, $name:literal, $module:ident, $bindings:ident) => {
        crate::kernel!($main = $name, $module, $bindings, variants: &MAIN_VARIANTS);
        crate::kernel!($skinny = concat!($name, "_skinny"), $module, $bindings,
            entry: "skinny", variants: &SKINNY_VARIANTS);
    };
}

gemm_kernels!(
    CONV_FORWARD,
    CONV_FORWARD_SKINNY,
    "conv_forward",
    FORWARD_MODULE,
    ForwardBindings
);
gemm_kernels!(
    CONV_BACKWARD_DATA,
    CONV_BACKWARD_DATA_SKINNY,
    "conv_backward_data",
    BACKWARD_DATA_MODULE,
    BackwardDataBindings
);
gemm_kernels!(
    CONV_BACKWARD_DATA_FC,
    CONV_BACKWARD_DATA_FC_SKINNY,
    "conv_backward_data_fc",
    BACKWARD_DATA_FC_MODULE,
    BackwardDataFcBindings
);
gemm_kernels!(
    CONV_BACKWARD_WEIGHT,
    CONV_BACKWARD_WEIGHT_SKINNY,
    "conv_backward_weight",
    BACKWARD_WEIGHT_MODULE,
    BackwardWeightBindings
);

crate::module!(POINTWISE_MODULE = "conv_pointwise", [ConvParams, PointwiseParams],
    header: "override BLK_M: u32 = 1u;\noverride BLK_N: u32 = 1u;\n",
    parts: [GEMM_COMMON, "conv_gemm_pointwise"]);

crate::kernel! {
    /// The plain GEMM of pointwise shapes, one variant per [`Tile::POINTWISE`] tile.
    pub(crate) CONV_POINTWISE = "conv_pointwise", POINTWISE_MODULE, PointwiseBindings,
        entry: "pointwise", variants: &POINTWISE_VARIANTS
}

crate::module!(SPLIT_REDUCE_MODULE = "split_reduce", [SplitParams],
    parts: ["elementwise", "slice_sum", "split_reduce"]);
crate::module!(CHANNEL_SUM_MODULE = "channel_sum", [SumParams],
    constants: &[("SUM_PER_THREAD", SUM_PER_THREAD)]);
crate::module!(ZERO_UNREACHED_MODULE = "conv_zero_unreached", [ZeroParams],
    parts: ["elementwise", "conv_zero_unreached"]);
crate::module!(COL2IM_MODULE = "conv_col2im", [ConvParams]);

crate::kernel! {
    /// Fixed-order sum of split-K partials plus bias.
    pub(crate) SPLIT_REDUCE = "split_reduce", SPLIT_REDUCE_MODULE, SplitReduceBindings
}

crate::kernel! {
    /// Per-channel fixed-tree sum (bias gradient), one pass.
    pub(crate) CHANNEL_SUM = "channel_sum", CHANNEL_SUM_MODULE, ChannelSumBindings
}

crate::kernel! {
    /// Input gradient: zeros at the positions no kernel tap reaches.
    pub(crate) CONV_ZERO_UNREACHED =
        "conv_zero_unreached", ZERO_UNREACHED_MODULE, ZeroUnreachedBindings
}

crate::kernel! {
    /// Input gradient, columns path: the col2im gather of the columns.
    pub(crate) CONV_COL2IM = "conv_col2im", COL2IM_MODULE, Col2imBindings
}

/// Which GEMM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Forward,
    BackwardData,
    /// The input gradient when the kernel covers the whole input (fully connected).
    BackwardDataFc,
    BackwardWeight,
}

impl Op {
    /// The declared kernel and variant that run this op on `tile`.
    pub(crate) fn kernel(self, tile: Tile) -> (&'static KernelDecl, usize) {
        if tile.is_pointwise() {
            return (&CONV_POINTWISE, tile.variant());
        }
        let [main, skinny] = match self {
            Op::Forward => [&CONV_FORWARD, &CONV_FORWARD_SKINNY],
            Op::BackwardData => [&CONV_BACKWARD_DATA, &CONV_BACKWARD_DATA_SKINNY],
            Op::BackwardDataFc => [&CONV_BACKWARD_DATA_FC, &CONV_BACKWARD_DATA_FC_SKINNY],
            Op::BackwardWeight => [&CONV_BACKWARD_WEIGHT, &CONV_BACKWARD_WEIGHT_SKINNY],
        };
        (if tile.is_skinny() { skinny } else { main }, tile.variant())
    }
}

/// The conv family's kernels, layout transpose included, for the kernel table.
pub(crate) static KERNELS: &[&KernelDecl] = &[
    &CONV_FORWARD,
    &CONV_FORWARD_SKINNY,
    &CONV_BACKWARD_DATA,
    &CONV_BACKWARD_DATA_SKINNY,
    &CONV_BACKWARD_DATA_FC,
    &CONV_BACKWARD_DATA_FC_SKINNY,
    &CONV_BACKWARD_WEIGHT,
    &CONV_BACKWARD_WEIGHT_SKINNY,
    &CONV_POINTWISE,
    &SPLIT_REDUCE,
    &CHANNEL_SUM,
    &CONV_ZERO_UNREACHED,
    &CONV_COL2IM,
    &super::layout::LAYOUT_TRANSPOSE,
];
