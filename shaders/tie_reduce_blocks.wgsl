// Tied groups, block granularity (whole rows, or input channels of a conv kernel), pass 1.
// The parameter tensor is viewed as [outer][rows][inner]; "row" r is the vector of its
// outer * inner elements, and rows tie by group: out[g][c] = sum of row r's element c over the
// rows r of group g, with c = o * inner + i.
// The plan cuts each group's rows (grouped, in order) into pieces of at most 64 rows.
// Workgroup (piece, column block of 256 * COLS_PER_THREAD): thread t adds columns t,
// t + 256, ... over the piece's rows in order (coalesced across threads). A group of one
// piece writes out[g] directly; otherwise the piece's sums go to partials[slot] and
// tie_reduce_block_pieces.wgsl adds them in order.
//
// A column is a `Lane`, declared by the prelude: one f32, or, when the inner extent is whole
// quads, a vec4 of four neighbouring columns (the host then gives every extent, offset and
// stride below in quads).

struct BlockParams {
    outer: u32,
    rows: u32,
    inner: u32,
    cols: u32,          // outer * inner
    col_blocks: u32,
    mean: u32,
    fold_x: u32,
    total_wg: u32,
    // out[g][c] sits at values_offset + g * values_stride + c: a window of outer slabs writes
    // its columns straight into the whole tensor's [groups][outer * inner].
    values_stride: u32,
    values_offset: u32,
    _pad0: u32,
    _pad1: u32,
}

const COLS_PER_THREAD: u32 = 4u; // BLOCK_COLS_PER_THREAD on the host

@group(0) @binding(0) var<uniform> p: BlockParams;
@group(0) @binding(1) var<storage, read> src: array<Lane>;
@group(0) @binding(2) var<storage, read> row_perm: array<u32>;
// Per piece: (group, first position, row count, slot + 1 or 0 when the group has one piece).
@group(0) @binding(3) var<storage, read> pieces: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read_write> out: array<Lane>;
@group(0) @binding(5) var<storage, read_write> partials: array<Lane>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let wid = wg.x + wg.y * p.fold_x;
    if (wid >= p.total_wg) {
        return;
    }
    let piece = pieces[wid / p.col_blocks];
    // This thread's columns: up to COLS_PER_THREAD of the block's 256 * COLS_PER_THREAD, 256
    // apart; `sets` of them hold columns (the same for the whole workgroup).
    let first = (wid % p.col_blocks) * 256u * COLS_PER_THREAD;
    let sets = min(COLS_PER_THREAD, (p.cols - first + 255u) / 256u);
    let c0 = first + lid;
    var base: array<u32, COLS_PER_THREAD>;
    var s: array<Lane, COLS_PER_THREAD>;
    // Constant trip counts (the arrays stay in registers); sets past the tensor are skipped.
    for (var j = 0u; j < COLS_PER_THREAD; j++) {
        let c = min(c0 + j * 256u, p.cols - 1u);
        let o = c / p.inner;
        base[j] = o * p.rows * p.inner + c - o * p.inner;
        s[j] = Lane(0.0);
    }
    for (var k = 0u; k < piece.z; k++) {
        let row = row_perm[piece.y + k] * p.inner;
        for (var j = 0u; j < COLS_PER_THREAD; j++) {
            if (j < sets) {
                s[j] += src[base[j] + row];
            }
        }
    }
    for (var j = 0u; j < sets; j++) {
        let c = c0 + j * 256u;
        if (c < p.cols) {
            var total = s[j];
            if (piece.w == 0u) {
                if (p.mean != 0u) {
                    total = total / f32(piece.z);
                }
                out[p.values_offset + piece.x * p.values_stride + c] = total;
            } else {
                partials[(piece.w - 1u) * p.cols + c] = total;
            }
        }
    }
}
