// Tied groups: write each group's value back to its members. The tensor is viewed as
// [outer][rows][inner] with one group id per row (scalar ties: outer = inner = 1); element
// (o, r, i) of a tied row takes values[ids[r]][o * inner + i]; untied rows (id 0xffffffff)
// are left as they are. Each thread handles PER_THREAD elements strided by the grid, so reads
// and writes are coalesced; the group values are a small, cached gather.
// Two entry points, so the scalar path carries no index arithmetic at all (software drivers
// execute both sides of a branch in SIMD and pay for the divisions even when unused).

struct BroadcastParams {
    len: u32,
    rows: u32,
    inner: u32,
    fold_x: u32,
    total_wg: u32,
    stride: u32,
    // blocks: group g's value vector starts at values_offset + g * values_stride (a window of
    // outer slabs reads its columns of the whole [groups][outer * inner]).
    values_stride: u32,
    values_offset: u32,
    first: u32, // scalar: the first element (the tail after tie_broadcast_quads.wgsl)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const PER_THREAD: u32 = 4u; // BROADCAST_PER_THREAD on the host
const UNTIED: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> p: BroadcastParams;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> values: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

// Element k of this thread, or p.len (out of range) in the workgroups that pad a folded grid.
fn element(wg: vec3<u32>, lid: u32, k: u32) -> u32 {
    let wid = wg.x + wg.y * p.fold_x;
    if (wid >= p.total_wg) {
        return p.len;
    }
    return p.first + k * p.stride + wid * 256u + lid;
}

// Scalar ties: element e takes values[ids[e]] (the tail of tie_broadcast_quads.wgsl).
@compute @workgroup_size(256)
fn scalar(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    for (var k = 0u; k < PER_THREAD; k++) {
        let e = element(wg, lid, k);
        if (e < p.len) {
            let g = ids[e];
            if (g != UNTIED) {
                dst[e] = values[g];
            }
        }
    }
}

// Row, column and conv-channel ties: one id per row of the [outer][rows][inner] view.
@compute @workgroup_size(256)
fn blocks(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    for (var k = 0u; k < PER_THREAD; k++) {
        let e = element(wg, lid, k);
        if (e < p.len) {
            let q = e / p.inner;
            let i = e - q * p.inner;
            let o = q / p.rows;
            let r = q - o * p.rows;
            let g = ids[r];
            if (g != UNTIED) {
                dst[e] = values[p.values_offset + g * p.values_stride + o * p.inner + i];
            }
        }
    }
}
