// z_k = q(sorted_k) - q(w_k) with q(x) = round(x * scale): exact integers. Thread 0 also
// stores the scale's bits after the n values, for the stages that turn sums back into floats.
@group(0) @binding(1) var<storage, read> keys: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> z: array<vec2<u32>>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let k = thread_id(wg, lid);
    if (k >= p.n) {
        return;
    }
    let scale = fixed_scale(max(keys[0], w[0]));
    let q = i32(round(keys[k] * scale)) - i32(round(w[k] * scale));
    z[k] = i64_from_i32(q);
    if (k == 0u) {
        z[p.n] = vec2<u32>(bitcast<u32>(scale), 0u);
    }
}
