//! Block reduce planning: each group's rows cut into pieces of at most [`PIECE_ROWS`] rows,
//! one workgroup per piece and `WORKGROUP_SIZE` columns (`shaders/tie_reduce_blocks.wgsl`,
//! columns of four elements when rows are whole quads), then the groups of several pieces
//! added in piece order (`shaders/tie_reduce_block_pieces.wgsl`).

use super::map::{TieLayout, TieMap};
use super::plan::{Pass, ReducePlan, Single, ValuesView};
use crate::dispatch::{self, check_binding_size, Grid, WORKGROUP_SIZE};
use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// Rows one block-reduction piece covers at most (`PIECE_ROWS` in WGSL).
const PIECE_ROWS: u32 = 64;
/// Pieces one group may have: bounds the second pass's per-thread loop far below the
/// 65,535 iterations software drivers allow (`MAX_PIECES` in WGSL).
const MAX_PIECES: u32 = 60_000;

crate::uniform_struct! {
    /// The uniform block of `shaders/tie_reduce_blocks.wgsl` (extents, offset and stride in
    /// lanes: quads when the inner extent is whole quads).
    pub(super) struct BlockParams {
        outer: u32,
        rows: u32,
        inner: u32,
        /// `outer * inner`.
        cols: u32,
        /// Workgroups per piece: `cols` in blocks of `WORKGROUP_SIZE`.
        col_blocks: u32,
        /// Nonzero: a group of one piece divides by its row count.
        mean: u32,
        fold_x: u32,
        total_wg: u32,
        /// `out[g][c]` sits at `values_offset + g * values_stride + c`: a window of outer slabs
        /// writes its columns straight into the whole tensor's `[groups][outer * inner]`.
        values_stride: u32,
        values_offset: u32,
        pad: [u32; 2],
    }
}

crate::uniform_struct! {
    /// The uniform block of `shaders/tie_reduce_block_pieces.wgsl`.
    pub(super) struct PieceParams {
        /// `outer * inner` (in elements).
        cols: u32,
        /// Workgroups per group entry: `cols` in blocks of `WORKGROUP_SIZE`.
        col_blocks: u32,
        /// Nonzero: divide by the group's row count.
        mean: u32,
        /// Groups of several pieces.
        entries: u32,
        fold_x: u32,
        total_wg: u32,
        /// As in [`BlockParams`].
        values_stride: u32,
        values_offset: u32,
    }
}

crate::bindings! {
    /// `tie_reduce_blocks` and `tie_reduce_blocks_quads`: `src` rows, grouped through
    /// `row_perm`, summed per piece into `out` (a group of one piece) or `partials`.
    pub(super) struct BlocksBindings {
        p @ 0: uniform(BlockParams),
        src @ 1: read,
        row_perm @ 2: read,
        pieces @ 3: read,
        out @ 4: read_write,
        partials @ 5: read_write,
    }
}

crate::bindings! {
    /// `tie_reduce_block_pieces`: the `partials` of each group of several pieces into `out`.
    pub(super) struct PiecesBindings {
        p @ 0: uniform(PieceParams),
        entries @ 1: read,
        partials @ 2: read,
        out @ 3: read_write,
    }
}

crate::module!(TIE_REDUCE_BLOCKS_F32 = "tie_reduce_blocks", [BlockParams], constants: &[("PIECE_ROWS", PIECE_ROWS)], header: "alias Lane = f32;\n");

crate::module!(TIE_REDUCE_BLOCKS_QUADS_MODULE = "tie_reduce_blocks_quads", [BlockParams], constants: &[("PIECE_ROWS", PIECE_ROWS)], header: "alias Lane = vec4<f32>;\n", parts: ["tie_reduce_blocks"]);

crate::module!(TIE_REDUCE_BLOCK_PIECES_MODULE = "tie_reduce_block_pieces", [PieceParams], constants: &[("MAX_PIECES", MAX_PIECES)]);

crate::kernel!(pub(super) TIE_REDUCE_BLOCKS = "tie_reduce_blocks", TIE_REDUCE_BLOCKS_F32, BlocksBindings);

crate::kernel!(pub(super) TIE_REDUCE_BLOCKS_QUADS = "tie_reduce_blocks_quads", TIE_REDUCE_BLOCKS_QUADS_MODULE, BlocksBindings);

crate::kernel!(pub(super) TIE_REDUCE_BLOCK_PIECES = "tie_reduce_block_pieces", TIE_REDUCE_BLOCK_PIECES_MODULE, PiecesBindings);

/// Each group's rows (positions `offsets[g]..offsets[g + 1]` of the grouped rows) cut into
/// pieces: `(pieces, entries, slots)`. A piece is (group, first position, rows, slot + 1, or 0
/// for a group of one piece); an entry, per group of several pieces, (group, first slot,
/// pieces, rows).
type Pieces = (Vec<[u32; 4]>, Vec<[u32; 4]>, u32);

fn cut_pieces(map: &TieMap, offsets: &[u32]) -> Result<Pieces> {
    let mut pieces: Vec<[u32; 4]> = Vec::new();
    let mut entries: Vec<[u32; 4]> = Vec::new();
    let mut slots = 0u32;
    for g in 0..map.groups() as usize {
        let (lo, hi) = (offsets[g], offsets[g + 1]);
        let size = hi - lo;
        let n = size.div_ceil(PIECE_ROWS);
        if n > MAX_PIECES {
            return Err(Error::LimitExceeded {
                limit: "rows in one tied group",
                needed: u64::from(size),
                allowed: u64::from(MAX_PIECES * PIECE_ROWS),
                hint: "; split the group".into(),
            });
        }
        if n == 1 {
            pieces.push([g as u32, lo, size, 0]);
        } else {
            entries.push([g as u32, slots, n, size]);
            for j in 0..n {
                let start = lo + j * PIECE_ROWS;
                pieces.push([g as u32, start, PIECE_ROWS.min(hi - start), slots + 1]);
                slots += 1;
            }
        }
    }
    Ok((pieces, entries, slots))
}

/// The reduction of a block map whose rows, in group order, are `perm` (group `g` at
/// `offsets[g]..offsets[g + 1]`), writing group values at `values`. `tables`: a plan of the
/// same ids whose row permutation, pieces and partials this one shares.
pub(super) fn plan(
    gpu: &Gpu,
    map: &TieMap,
    (perm, offsets): (&[u32], &[u32]),
    values: ValuesView,
    tables: Option<&Single>,
) -> Result<ReducePlan> {
    let (outer, rows, inner) = map.layout().view();
    debug_assert!(matches!(map.layout(), TieLayout::Blocks { .. }));
    let cols = outer * inner;
    // The first pass's columns: quads when the inner extent is whole quads.
    let quads = inner % 4 == 0 && inner > 0;
    let lane = if quads { 4 } else { 1 };
    let col_blocks = (cols / lane).div_ceil(WORKGROUP_SIZE).max(1);
    let piece_col_blocks = cols.div_ceil(WORKGROUP_SIZE).max(1);
    let (pieces, entries, slots) = cut_pieces(map, offsets)?;
    check_binding_size(
        gpu,
        "tie block partials",
        u64::from(slots) * u64::from(cols) * 4,
    )?;
    check_binding_size(gpu, "tie pieces", pieces.len() as u64 * 16)?;
    let grid = Grid::for_workgroups(gpu, pieces.len() as u64 * u64::from(col_blocks))?;
    let grid2 = Grid::for_workgroups(gpu, entries.len() as u64 * u64::from(piece_col_blocks))?;
    let first = Pass::sum_and_mean(gpu, "tie reduce blocks", grid, |mean| BlockParams {
        outer,
        rows,
        inner: inner / lane,
        cols: cols / lane,
        col_blocks,
        mean,
        fold_x: grid.fold_x(),
        total_wg: grid.total,
        values_stride: values.stride / lane,
        values_offset: values.offset / lane,
        pad: [0; 2],
    });
    let second = Pass::sum_and_mean(gpu, "tie reduce block pieces", grid2, |mean| PieceParams {
        cols,
        col_blocks: piece_col_blocks,
        mean,
        entries: entries.len() as u32,
        fold_x: grid2.fold_x(),
        total_wg: grid2.total,
        values_stride: values.stride,
        values_offset: values.offset,
    });
    let (row_perm, pieces, entries, partials) = match tables {
        Some(Single {
            reduce:
                ReducePlan::Blocks {
                    row_perm,
                    pieces,
                    entries,
                    partials,
                    ..
                },
            ..
        }) => (
            row_perm.clone(),
            pieces.clone(),
            entries.clone(),
            partials.clone(),
        ),
        _ => {
            let up = |label: &str, data: &[[u32; 4]]| {
                dispatch::storage_init(gpu, label, data, wgpu::BufferUsages::empty())
            };
            (
                dispatch::storage_init(gpu, "tie row perm", perm, wgpu::BufferUsages::empty()),
                up("tie pieces", &pieces),
                up("tie piece groups", &entries),
                dispatch::storage_init(
                    gpu,
                    "tie block partials",
                    // At least one quad: a vec4 binding needs 16 bytes.
                    &vec![0f32; (slots as usize * cols as usize).max(4)],
                    wgpu::BufferUsages::empty(),
                ),
            )
        }
    };
    Ok(ReducePlan::Blocks {
        row_perm,
        pieces,
        entries,
        partials,
        quads,
        first,
        second,
    })
}
