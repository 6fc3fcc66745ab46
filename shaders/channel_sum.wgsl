// Sums a tensor viewed as [outer][channels][inner] over outer and inner, per channel
// (the conv bias gradient: sum of grad_out over batch and positions).
// One pass: workgroup (c, chunk) sums CHUNK = 256 * PER_THREAD consecutive elements of the
// flattened (outer, inner) index of channel c: each thread adds PER_THREAD elements strided by
// 256 (coalesced), then a fixed-shape tree in workgroup memory. The host repeats passes on the
// partials ([1][channels][chunks]) until one value per channel is left. Deterministic.

struct SumParams {
    outer: u32,
    channels: u32,
    inner: u32,
    chunks: u32,
    fold_x: u32,
    total_wg: u32,
    _pad0: u32,
    _pad1: u32,
}

const PER_THREAD: u32 = 16u;

@group(0) @binding(0) var<uniform> p: SumParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let wid = wg.x + wg.y * p.fold_x;
    if (wid >= p.total_wg) {
        return;
    }
    let c = wid / p.chunks;
    let chunk = wid - c * p.chunks;
    let count = p.outer * p.inner;
    var s = 0.0;
    for (var r = 0u; r < PER_THREAD; r++) {
        let j = (chunk * PER_THREAD + r) * 256u + lid;
        if (j < count) {
            let o = j / p.inner;
            let i = j - o * p.inner;
            s += src[(o * p.channels + c) * p.inner + i];
        }
    }
    partial[lid] = s;
    workgroupBarrier();
    for (var w = 128u; w > 0u; w = w / 2u) {
        if (lid < w) {
            partial[lid] += partial[lid + w];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        dst[c * p.chunks + chunk] = partial[0];
    }
}
