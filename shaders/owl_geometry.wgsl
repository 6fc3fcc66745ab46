// Points P_k = (k, S_k) of the cumulative-sum diagram; `sums[k - 1]` = S_k.
@group(0) @binding(1) var<storage, read> sums: array<vec2<f32>>;

fn s_at(k: u32) -> vec2<f32> {
    if (k == 0u) {
        return vec2<f32>(0.0, 0.0);
    }
    return sums[k - 1u];
}

// > 0 when P_c lies above the line through P_a and P_b (a < b), < 0 below.
fn turn(a: u32, b: u32, c: u32) -> f32 {
    let sa = s_at(a);
    let dy1 = df_sub(s_at(b), sa);
    let dy2 = df_sub(s_at(c), sa);
    return f32(b - a) * (dy2.x + dy2.y) - f32(c - a) * (dy1.x + dy1.y);
}
