// Points P_k = (k, S_k) of the cumulative-sum diagram; sums[k - 1] = S_k (fixed point), and
// sums[n] holds the fixed-point scale's bits.
@group(0) @binding(1) var<storage, read> sums: array<vec2<u32>>;

fn s_at(k: u32) -> vec2<u32> {
    if (k == 0u) {
        return vec2<u32>(0u, 0u);
    }
    return sums[k - 1u];
}

// > 0 when P_c lies above the line through P_a and P_b (a < b < c), < 0 below. Anchored at
// the middle point: (b - a)(S_c - S_b) - (c - b)(S_b - S_a) compares the two slopes with
// terms of the same size, so a far-away a or c costs no precision (the differences are exact
// integers; only their conversion and the products round).
fn turn(a: u32, b: u32, c: u32) -> f32 {
    let sb = s_at(b);
    let dy_ab = i64_to_f32(i64_sub(sb, s_at(a)));
    let dy_bc = i64_to_f32(i64_sub(s_at(c), sb));
    return f32(b - a) * dy_bc - f32(c - b) * dy_ab;
}
