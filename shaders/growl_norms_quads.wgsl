// Quad loader of growl_norms.wgsl, for rows of whole quads (outer 1, inner a multiple of
// 4): thread t adds the scaled squares of quads t, t + WORKGROUP_SIZE, ... of row g, one sum per lane
// (one scale for the four), then the four lanes.
@group(0) @binding(1) var<storage, read> matrix: array<vec4<f32>>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = linear_workgroup(wg, p.fold_x);
    if (g >= p.groups) { return; }
    let quads = p.inner / 4u;
    let base = g * quads;
    var s4 = vec4<f32>(0.0);
    var code = CODE_LO;
    var factor = code_factor(code);
    var bound = code_bound(code);
    for (var j = lid; j < quads; j += WORKGROUP_SIZE) {
        let x = matrix[base + j];
        let a = abs(x);
        let m = max(max(a.x, a.y), max(a.z, a.w));
        if (m >= bound) {
            let c = code_of(m);
            let r = rescale_squares(1.0, code, c);
            s4 *= r;
            code = c;
            factor = code_factor(c);
            bound = code_bound(c);
        }
        let y = x * factor;
        s4 = fma(y, y, s4);
    }
    store_norm(g, (s4.x + s4.y) + (s4.z + s4.w), code, lid);
}
