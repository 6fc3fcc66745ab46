// Tied groups, block granularity, pass 2: groups of several pieces (and empty groups).
// Entry (g, first slot, slots, rows in group): out[g][c] = sum of partials[first .. first +
// slots][c] in order (at most 60,000 pieces: the host refuses larger groups), divided by the
// row count for means.

struct PieceParams {
    cols: u32,
    col_blocks: u32,
    mean: u32,
    entries: u32,
    fold_x: u32,
    total_wg: u32,
    values_stride: u32, // as in tie_reduce_blocks.wgsl
    values_offset: u32,
}

@group(0) @binding(0) var<uniform> p: PieceParams;
@group(0) @binding(1) var<storage, read> entries: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> partials: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let wid = wg.x + wg.y * p.fold_x;
    if (wid >= p.total_wg) {
        return;
    }
    let e = entries[wid / p.col_blocks];
    let c = (wid % p.col_blocks) * 256u + lid;
    if (c >= p.cols) {
        return;
    }
    var s = 0.0;
    for (var k = 0u; k < e.z; k++) {
        s += partials[(e.y + k) * p.cols + c];
    }
    if (p.mean != 0u && e.w > 0u) {
        s = s / f32(e.w);
    }
    out[p.values_offset + e.x * p.values_stride + c] = s;
}
