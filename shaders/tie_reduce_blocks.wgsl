// Tied groups, block granularity (whole rows, or input channels of a conv kernel), pass 1.
// The parameter tensor is viewed as [outer][rows][inner]; "row" r is the vector of its
// outer * inner elements, and rows tie by group: out[g][c] = sum of row r's element c over the
// rows r of group g, with c = o * inner + i.
// The plan cuts each group's rows (grouped, in order) into pieces of at most PIECE_ROWS rows.
// Workgroup (piece, block of WORKGROUP_SIZE columns): thread t adds column t over the piece's
// rows in order (coalesced across threads). One column per thread: software drivers execute
// unused column slots too, so several slots per thread only cost. A group of one piece writes
// out[g] directly; otherwise the piece's sums go to partials[slot] and
// tie_reduce_block_pieces.wgsl adds them in order.
//
// A column is a `Lane`, declared by the module's header: one f32, or, when the inner extent is
// whole quads, a vec4 of four neighbouring columns (the host then gives every extent, offset
// and stride of `BlockParams` in quads).

@group(0) @binding(0) var<uniform> p: BlockParams;
@group(0) @binding(1) var<storage, read> src: array<Lane>;
@group(0) @binding(2) var<storage, read> row_perm: array<u32>;
// Per piece: (group, first position, row count, slot + 1 or 0 when the group has one piece).
@group(0) @binding(3) var<storage, read> pieces: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read_write> out: array<Lane>;
@group(0) @binding(5) var<storage, read_write> partials: array<Lane>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let wid = linear_workgroup(wg, p.fold_x);
    if (wid >= p.total_wg) { return; }
    let piece = pieces[wid / p.col_blocks];
    let c = (wid % p.col_blocks) * WORKGROUP_SIZE + lid;
    if (c >= p.cols) { return; }
    let o = c / p.inner;
    let base = o * p.rows * p.inner + c - o * p.inner;
    var total = Lane(0.0);
    for (var k = 0u; k < piece.z; k++) {
        total += src[base + row_perm[piece.y + k] * p.inner];
    }
    if (piece.w == 0u) {
        if (p.mean != 0u) {
            total = total / f32(piece.z);
        }
        out[p.values_offset + piece.x * p.values_stride + c] = total;
    } else {
        partials[(piece.w - 1u) * p.cols + c] = total;
    }
}
