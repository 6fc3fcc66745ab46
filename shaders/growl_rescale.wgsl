// Element e of group g = (e / inner) % groups becomes e * new_norm_g / norm_g (0 if norm_g is 0).
@group(0) @binding(1) var<storage, read_write> matrix: array<f32>;
@group(0) @binding(2) var<storage, read> norms: array<f32>;
@group(0) @binding(3) var<storage, read> new_norms: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let e = (wg.x + wg.y * p.fold_x) * 256u + lid;
    if (e >= p.len) {
        return;
    }
    let g = (e / p.inner) % p.groups;
    let r = norms[g];
    var scale = 0.0;
    if (r > 0.0) {
        scale = new_norms[g] / r;
    }
    matrix[e] = matrix[e] * scale;
}
