// Sums a tensor viewed as [outer][channels][inner] over outer and inner, per channel
// (the conv bias gradient: sum of grad_out over batch and positions).
// One pass: workgroup (c, chunk) sums WORKGROUP_SIZE * SUM_PER_THREAD consecutive elements of
// the flattened (outer, inner) index of channel c: each thread adds SUM_PER_THREAD elements
// strided by WORKGROUP_SIZE (coalesced), then a fixed-shape tree in workgroup memory. The host
// repeats passes on the partials ([1][channels][chunks]) until one value per channel is left.
// Deterministic. `SumParams` and `SUM_PER_THREAD` come from the host.

@group(0) @binding(0) var<uniform> p: SumParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

var<workgroup> partial: array<f32, WORKGROUP_SIZE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let wid = linear_workgroup(wg, p.fold_x);
    if (wid >= p.total_wg) { return; }
    let c = wid / p.chunks;
    let chunk = wid - c * p.chunks;
    let count = p.outer * p.inner;
    var s = 0.0;
    for (var r = 0u; r < SUM_PER_THREAD; r++) {
        let j = (chunk * SUM_PER_THREAD + r) * WORKGROUP_SIZE + lid;
        if (j < count) {
            let o = j / p.inner;
            let i = j - o * p.inner;
            s += src[(o * p.channels + c) * p.inner + i];
        }
    }
    partial[lid] = s;
    workgroupBarrier();
    for (var w = WORKGROUP_SIZE / 2u; w > 0u; w = w / 2u) {
        if (lid < w) {
            partial[lid] += partial[lid + w];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        dst[c * p.chunks + chunk] = partial[0];
    }
}
