// Points P_k = (k, -T_k) of the cumulative-sum diagram (the points (k, S_k) shifted by the
// total: same hull, same slopes), T_k = z_k + ... + z_{n-1} block-scaled; sums[n - 1 - k]
// holds T_k, and T_n = 0.
@group(0) @binding(1) var<storage, read> sums: array<vec2<u32>>;

fn t_at(k: u32) -> Scaled {
    if (k >= p.n) {
        return Scaled(vec2<u32>(0u, 0u), CODE_MIN);
    }
    return sc_unpack(sums[p.n - 1u - k]);
}

// The rise S_b - S_a = T_a - T_b of the diagram from P_a to P_b, on the coarser grid of the
// two (exact there but for rounding the finer sum to it).
fn rise(a: u32, b: u32) -> Scaled {
    return sc_sub(t_at(a), t_at(b));
}

// > 0 when P_c lies above the line through P_a and P_b (a < b < c), < 0 below. Anchored at
// the middle point: (b - a)(S_c - S_b) - (c - b)(S_b - S_a) compares the two slopes with
// terms of the same size, so a far-away a or c costs no precision (the rises are integers on
// their grids; the finer one is rescaled to the coarser before the products, and only the
// conversions and the products round).
fn turn(a: u32, b: u32, c: u32) -> f32 {
    let tb = t_at(b);
    let ab = sc_sub(t_at(a), tb);
    let bc = sc_sub(tb, t_at(c));
    let code = max(ab.code, bc.code);
    let dy_ab = scale2(i64_to_f32(ab.m), i32(ab.code) - i32(code));
    let dy_bc = scale2(i64_to_f32(bc.m), i32(bc.code) - i32(code));
    return f32(b - a) * dy_bc - f32(c - b) * dy_ab;
}
