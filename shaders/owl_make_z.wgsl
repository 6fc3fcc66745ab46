// z_k = q(sorted_k) - q(w_k), q(x) = round(x * 2^(155 - c_k)) on position k's own grid
// (c_k = grid_code(max(sorted_k, w_k)): both below 2^29 units, exact integers), stored at
// n - 1 - k so that the forward inclusive scan gives the suffix sums T_k.
@group(0) @binding(1) var<storage, read> keys: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> z: array<vec2<u32>>;

fn stage(k: u32) {
    if (k >= p.n) { return; }
    let a = keys[k];
    let b = w[k];
    let code = grid_code(max(a, b));
    let shift = 155 - i32(code);
    let q = i32(round(scale2(a, shift))) - i32(round(scale2(b, shift)));
    z[p.n - 1u - k] = sc_pack(Scaled(i64_from_i32(q), code));
}
