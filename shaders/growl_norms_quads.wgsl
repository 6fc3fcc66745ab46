// Quad loader of growl_norms.wgsl, for rows of whole quads (outer 1, inner a multiple of
// 4): thread t adds quads t, t + 256, ... of row g, one sum per lane, then the four lanes.
@group(0) @binding(1) var<storage, read> matrix: array<vec4<f32>>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = wg.x + wg.y * p.fold_x;
    if (g >= p.groups) {
        return;
    }
    let quads = p.inner / 4u;
    let base = g * quads;
    var s4 = vec4<f32>(0.0);
    for (var j = lid; j < quads; j += 256u) {
        let x = matrix[base + j];
        s4 = fma(x, x, s4);
    }
    store_norm(g, (s4.x + s4.y) + (s4.z + s4.w), lid);
}
