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
    let (batch, ci, co) = (s.batch, s.in_channels, s.out_channels);
    let pos = s.in_size[0] * s.in_size[1];
    let one_block = |k: u32| (whole_16s(k), k);
    let (mnk, groups, strides) = match (op, pos) {
        (Op::Forward, 1) => (
            [co, batch, ci],
            1,
            PointwiseParams {
                a_sm: ci,
                a_sk: 1,
                b_sn: ci,
                b_sk: 1,
                c_sm: 1,
                c_sn: co,
                a_k_fast: 1,
                b_k_fast: 1,
                ..Default::default()
            },
        ),
        (Op::Forward, _) => (
            [co, pos, ci],
            batch,
            PointwiseParams {
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
            },
        ),
        (Op::BackwardWeight, 1) => (
            [co, ci, batch],
            1,
            PointwiseParams {
                a_sm: 1,
                a_sk: co,
                b_sn: 1,
                b_sk: ci,
                c_sm: ci,
                c_sn: 1,
                ..Default::default()
            },
        ),
        (Op::BackwardWeight, _) => {
            let block = whole_16s(pos);
            let k = if batch == 0 {
                0
            } else {
                (batch - 1) * block + pos
            };
            return PointwiseGemm {
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
            };
        }
        // The input gradient.
        (_, 1) => (
            [ci, batch, co],
            1,
            PointwiseParams {
                a_sm: 1,
                a_sk: ci,
                b_sn: co,
                b_sk: 1,
                c_sm: 1,
                c_sn: ci,
                b_k_fast: 1,
                ..Default::default()
            },
        ),
        (_, _) => (
            [ci, pos, co],
            batch,
            PointwiseParams {
                a_sm: 1,
                a_sk: ci,
                b_sn: 1,
                b_sk: pos,
                b_sg: co * pos,
                c_sm: pos,
                c_sn: 1,
                c_sg: ci * pos,
                ..Default::default()
            },
        ),
    };
    let (k_block, k_valid) = one_block(mnk[2]);
    PointwiseGemm {
        mnk,
        groups,
        strides: PointwiseParams {
            k_block,
            k_valid,
            ..strides
        },
    }
}

/// The default heuristic's tile for an op of a pointwise shape whose implicit GEMM is
/// `implicit` (`[m, n, k]`) and whose plain GEMM is `g`: the pointwise twin of the tile
/// [`Tile::pick`] gives the plain GEMM, when the implicit GEMM's own pick is a register tile
/// (skinny and narrow tiles suit a few rows better) and the plain GEMM computes at most 5/4
/// of the implicit one's padded work (rows x columns x K steps over the grid: small images pad
/// their columns, and positions per image off whole 16s pad the weight gradient's K). The
/// allowance is what the plain GEMM saves per step (no tap table, no bounds tests, no absent
/// terms): case E's 28 x 28 images pad 6% more columns per image than the implicit GEMM's
/// batch-wide columns. `None`: the implicit GEMM's pick.
pub(super) fn pick(implicit: [u32; 3], g: &PointwiseGemm) -> Option<Tile> {
    let [m, n, k] = implicit;
    let own = Tile::pick(m, n, k);
    own.pointwise_twin()?;
    let [pm, pn, pk] = g.mnk;
    let twin = Tile::pick(pm, pn, pk).pointwise_twin()?;
    let work = |t: Tile, [m, n, k]: [u32; 3], groups: u32| {
        u128::from(t.padded_area(m, n)) * u128::from(k) * u128::from(groups)
    };
    (4 * work(twin, g.mnk, g.groups) <= 5 * work(own, implicit, 1)).then_some(twin)
}
