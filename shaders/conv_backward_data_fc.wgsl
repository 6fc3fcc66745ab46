// Conv2d input gradient when the kernel covers the whole input (a fully connected layer:
// kernel == input size, no padding, no dilation, so out is 1x1). Then each input position
// meets exactly one kernel tap, and per group g the gradient is a plain GEMM:
//   dX[b, j] = sum_co grad_out[b, g*c_out_g + co] * weight[g*c_out_g + co, j],
//   m = batch index, n = j = (ci, kh, kw) = (ci, ih, iw), k = co.
// The general transposed-conv addressing would walk kh*kw times more (mostly zero) terms.

@group(0) @binding(1) var<storage, read> grad_out: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad_in: array<f32>;

fn store_c(t: TileId, m: u32, n: u32, v: f32) {
    let idx = (m * p.c_in + t.group * p.c_in_g) * p.in_h * p.in_w + n;
    grad_in[t.split * p.split_stride + idx] = v;
}

// Column n = j: where its weights start within the group.
struct Column {
    w_base: u32,
}

fn column(t: TileId, n: u32) -> Column {
    return Column(t.group * p.c_out_g * p.gemm_n + n);
}

// Reduction step k = co: nothing to decode.
fn k_entry(t: TileId, k: u32) -> vec4<i32> {
    return vec4<i32>(bitcast<i32>(k), 0, 0, 0);
}

// A[m, k] = grad_out[m, g*c_out_g + k].
fn a_value(t: TileId, m: u32, k: u32, e: vec4<i32>) -> f32 {
    return grad_out[m * p.c_out + t.group * p.c_out_g + k];
}

// B[k, n] = weight[g*c_out_g + k, n].
fn b_value(c: Column, e: vec4<i32>) -> f32 {
    return term(weight[c.w_base + bitcast<u32>(e.x) * p.gemm_n]);
}
