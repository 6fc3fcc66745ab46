//! The plain-GEMM path of pointwise shapes (a 1 x 1 kernel, stride 1, no padding, one group:
//! 1 x 1 convs and dense layers): how each op maps onto the strided GEMM of
//! `shaders/conv_gemm_pointwise.wgsl` ([`PointwiseParams`]).
//!
//! With `P = H x W` positions per image (NCHW), the three ops are
//! - forward `y[b][co][p] = sum_ci w[co][ci] x[b][ci][p]` (+ bias),
//! - input gradient `dx[b][ci][p] = sum_co w[co][ci] dy[b][co][p]` (A transposed),
//! - weight gradient `dw[co][ci] = sum_{b,p} dy[b][co][p] x[b][ci][p]`.
//!
//! When `P > 1` the forward and the input gradient run one GEMM per image (the grid's group
//! axis), `m` = channel, `n` = position, so a tile's B rows are contiguous positions of one
//! image; the weight gradient's K walks the images in blocks of `P` steps rounded up to 16
//! (zeros past `P`, none after the last image), so no K tile crosses an image. When `P = 1`
//! (a dense layer) the batch is the GEMM's n (forward, input gradient) or its K (weight
//! gradient), with no blocks.

use super::kernels::{Op, PointwiseParams};
use super::tiles::Tile;
use super::Conv2dShape;

/// Whether `s` runs on the plain-GEMM tiles ([`super::Tile::POINTWISE`]).
pub(super) fn eligible(s: &Conv2dShape) -> bool {
    s.kernel == [1, 1] && s.stride == [1, 1] && s.padding == [0, 0] && s.groups == 1
}

/// `v` rounded up to whole 16s (at least 16): a K block that no K tile crosses.
fn whole_16s(v: u32) -> u32 {
    v.max(1).div_ceil(16) * 16
}

/// One op of a pointwise shape as a plain GEMM.
#[derive(Clone, Copy, Debug)]
pub(super) struct PointwiseGemm {
    /// Rows, columns and K steps (the blocks' zeros included) of each group's GEMM.
    pub(super) mnk: [u32; 3],
    /// GEMMs in the grid (images, or 1).
    pub(super) groups: u32,
    pub(super) strides: PointwiseParams,
}

/// The plain GEMM of `op` (forward, input gradient or weight gradient) on the pointwise
/// shape `s` (see the module docs).
pub(super) fn gemm(s: &Conv2dShape, op: Op) -> PointwiseGemm {
    let dims = Dims {
        batch: s.batch,
        ci: s.in_channels,
        co: s.out_channels,
        pos: s.in_size[0] * s.in_size[1],
    };
    match op {
        Op::Forward => forward(dims),
        Op::BackwardWeight => weight_gradient(dims),
        _ => input_gradient(dims),
    }
}

/// The sizes a pointwise GEMM reads: images, input and output channels, positions per image.
#[derive(Clone, Copy)]
struct Dims {
    batch: u32,
    ci: u32,
    co: u32,
    pos: u32,
}

/// A GEMM whose K is one block: all `mnk[2]` steps are terms.
fn one_block(mnk: [u32; 3], groups: u32, strides: PointwiseParams) -> PointwiseGemm {
    PointwiseGemm {
        mnk,
        groups,
        strides: PointwiseParams {
            k_block: whole_16s(mnk[2]),
            k_valid: mnk[2],
            ..strides
        },
    }
}

/// `y[b][co][p] = sum_ci w[co][ci] x[b][ci][p]`: per image (m = channel, n = position), or,
/// for a dense layer, one GEMM with the batch as n.
fn forward(Dims { batch, ci, co, pos }: Dims) -> PointwiseGemm {
    if pos == 1 {
        let strides = PointwiseParams {
            a_sm: ci,
            a_sk: 1,
            b_sn: ci,
            b_sk: 1,
            c_sm: 1,
            c_sn: co,
            a_k_fast: 1,
            b_k_fast: 1,
            ..Default::default()
        };
        return one_block([co, batch, ci], 1, strides);
    }
    let strides = PointwiseParams {
        a_sm: ci,
        a_sk: 1,
        b_sn: 1,
        b_sk: pos,
        b_sg: ci * pos,
        c_sm: pos,
        c_sn: 1,
        c_sg: co * pos,
        a_k_fast: 1,
        ..Default::default()
    };
    one_block([co, pos, ci], batch, strides)
}

/// `dx[b][ci][p] = sum_co w[co][ci] dy[b][co][p]` (A transposed): per image, or, for a dense
/// layer, one GEMM with the batch as n.
fn input_gradient(Dims { batch, ci, co, pos }: Dims) -> PointwiseGemm {
    if pos == 1 {
        let strides = PointwiseParams {
            a_sm: 1,
            a_sk: ci,
            b_sn: co,
            b_sk: 1,
            c_sm: 1,
            c_sn: ci,
            b_k_fast: 1,
            ..Default::default()
        };
        return one_block([ci, batch, co], 1, strides);
    }
    let strides = PointwiseParams {
        a_sm: 1,
        a_sk: ci,
        b_sn: 1,
        b_sk: pos,
        b_sg: co * pos,
        c_sm: pos,
        c_sn: 1,
        c_sg: ci * pos,
        ..Default::default()
    };
    one_block([ci, pos, co], batch, strides)
}

/// `dw[co][ci] = sum_{b,p} dy[b][co][p] x[b][ci][p]`: K walks the images in blocks of `pos`
/// steps rounded up to 16 (zeros past `pos`, none after the last image); a dense layer's K is
/// the batch, one block.
fn weight_gradient(Dims { batch, ci, co, pos }: Dims) -> PointwiseGemm {
    if pos == 1 {
        let strides = PointwiseParams {
            a_sm: 1,
            a_sk: co,
            b_sn: 1,
            b_sk: ci,
            c_sm: ci,
            c_sn: 1,
            ..Default::default()
        };
        return one_block([co, ci, batch], 1, strides);
    }
    let block = whole_16s(pos);
    let k = if batch == 0 {
        0
    } else {
        (batch - 1) * block + pos
    };
    PointwiseGemm {
        mnk: [co, ci, k],
        groups: 1,
        strides: PointwiseParams {
            a_sm: pos,
            a_sk: 1,
            a_si: co * pos,
            b_sn: pos,
            b_sk: 1,
            b_si: ci * pos,
            c_sm: ci,
            c_sn: 1,
            k_block: block,
            k_valid: pos,
            a_k_fast: 1,
            b_k_fast: 1,
            ..Default::default()
        },
    }
}

/// The default heuristic's cost of one padded multiply-add on `t`, relative: the implicit
/// GEMM's register tiles 6 (tap table, bounds tests, absent terms), the plain GEMM's 4 x 4
/// blocks 5, 4 x 8 blocks 4, 8 x 8 blocks 3 (fewer workgroup-memory loads per FMA). Measured
/// on lavapipe (case E and a 128 x 784 -> 300 dense layer, ms per padded output): 0.84 and
/// 0.80 for the plain 4 x 4 against the implicit GEMM, 0.8 for 4 x 8 and 0.62 for 8 x 8
/// against the plain 4 x 4.
fn step_cost(t: Tile) -> u128 {
    match t.blocks() {
        _ if !t.is_pointwise() => 6,
        (1, 1) => 5,
        (1, 2) | (2, 1) => 4,
        _ => 3,
    }
}

/// The default heuristic's tile for an op of a pointwise shape whose implicit GEMM is
/// `implicit` (`[m, n, k]`) and whose plain GEMM is `g`: the pointwise tile of least cost,
/// padded work (rows x columns x K steps over the grid: small images pad their columns, and
/// positions per image off whole 16s pad the weight gradient's K) times [`step_cost`], when
/// that is at most the implicit GEMM's with its own pick, and that pick is a register tile
/// (skinny and narrow tiles suit a few rows better). `None`: the implicit GEMM's pick.
pub(super) fn pick(implicit: [u32; 3], g: &PointwiseGemm) -> Option<Tile> {
    let [m, n, k] = implicit;
    let own = Tile::pick(m, n, k);
    if own.is_skinny() {
        return None;
    }
    let cost = |t: Tile, [m, n, k]: [u32; 3], groups: u32| {
        u128::from(t.padded_area(m, n)) * u128::from(k) * u128::from(groups) * step_cost(t)
    };
    let best = Tile::POINTWISE
        .into_iter()
        .min_by_key(|&t| cost(t, g.mnk, g.groups))?;
    (cost(best, g.mnk, g.groups) <= cost(own, implicit, 1)).then_some(best)
}
