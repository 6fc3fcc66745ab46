// Tied groups: write each group's value back to its members. The tensor is viewed as
// [outer][rows][inner] with one group id per row; element (o, r, i) of a tied row takes
// values[ids[r]][o * inner + i]; untied rows (id 0xffffffff) are left as they are.
// Two entry points:
// - `blocks` (row, column and conv-channel ties): workgroup w covers elements
//   [w * 256 * PER_THREAD, (w + 1) * 256 * PER_THREAD), thread t the ones t apart by 256
//   (coalesced). Stepping 256 elements moves (o, r, i) by (step_o, step_r, step_i) plus
//   carries, so each thread divides once and then only adds and compares (an integer
//   division per element dominates on GPUs without a divider and on software drivers);
// - `scalar`: elements first .. len one per thread, ids[e] per element: the last 1-3
//   parameters of scalar ties, after tie_broadcast_quads.wgsl.

struct BroadcastParams {
    len: u32,
    rows: u32,
    inner: u32,
    fold_x: u32,
    total_wg: u32,
    first: u32,
    step_i: u32, // 256 % inner
    step_r: u32, // (256 / inner) % rows
    step_o: u32, // 256 / (inner * rows)
    // Group g's value vector starts at values_offset + g * values_stride (a window of outer
    // slabs reads its columns of the whole [groups][outer * inner]).
    values_stride: u32,
    values_offset: u32,
    _pad: u32,
}

const PER_THREAD: u32 = 16u; // BLOCKS_PER_THREAD on the host
const UNTIED: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> p: BroadcastParams;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> values: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

fn workgroup_index(wg: vec3<u32>) -> u32 {
    return wg.x + wg.y * p.fold_x;
}

@compute @workgroup_size(256)
fn scalar(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let e = p.first + workgroup_index(wg) * 256u + lid;
    if (e < p.len) {
        let g = ids[e];
        if (g != UNTIED) {
            dst[e] = values[g];
        }
    }
}

@compute @workgroup_size(256)
fn blocks(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let wid = workgroup_index(wg);
    if (wid >= p.total_wg) {
        return;
    }
    var e = wid * 256u * PER_THREAD + lid;
    let q = e / p.inner;
    var i = e - q * p.inner;
    var o = q / p.rows;
    var r = q - o * p.rows;
    for (var k = 0u; k < PER_THREAD; k++) {
        if (e >= p.len) {
            break;
        }
        let g = ids[r];
        if (g != UNTIED) {
            dst[e] = values[p.values_offset + g * p.values_stride + o * p.inner + i];
        }
        e += 256u;
        i += p.step_i;
        let carry_i = i >= p.inner;
        i = select(i, i - p.inner, carry_i);
        r += p.step_r + select(0u, 1u, carry_i);
        let carry_r = r >= p.rows;
        r = select(r, r - p.rows, carry_r);
        o += p.step_o + select(0u, 1u, carry_r);
    }
}
