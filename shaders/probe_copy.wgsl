// Copy-bandwidth probe: dst = src, one vec4 per thread per step, coalesced; each thread copies
// COPY_PER_THREAD vec4 strided by the grid width so the grid stays within dispatch limits.

@group(0) @binding(0) var<uniform> p: CopyParams;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let wid = linear_workgroup(wg, p.fold_x);
    if (wid >= p.total_wg) { return; }
    for (var r = 0u; r < COPY_PER_THREAD; r++) {
        let i = r * p.stride4 + wid * WORKGROUP_SIZE + lid;
        if (i < p.len4) {
            dst[i] = src[i];
        }
    }
}
