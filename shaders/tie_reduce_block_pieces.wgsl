// Tied groups, block granularity, pass 2: groups of several pieces (and empty groups).
// Entry (g, first slot, slots, rows in group): out[g][c] = sum of partials[first .. first +
// slots][c] in order (at most MAX_PIECES pieces: the host refuses larger groups), divided by the
// row count for means.

@group(0) @binding(0) var<uniform> p: PieceParams;
@group(0) @binding(1) var<storage, read> entries: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> partials: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let wid = linear_workgroup(wg, p.fold_x);
    if (wid >= p.total_wg) { return; }
    let e = entries[wid / p.col_blocks];
    let c = (wid % p.col_blocks) * WORKGROUP_SIZE + lid;
    if (c >= p.cols) { return; }
    var s = 0.0;
    for (var k = 0u; k < e.z; k++) {
        s += partials[(e.y + k) * p.cols + c];
    }
    if (p.mean != 0u && e.w > 0u) {
        s = s / f32(e.w);
    }
    out[p.values_offset + e.x * p.values_stride + c] = s;
}
