// Conv2d input gradient as an implicit GEMM with transposed-conv addressing (NCHW).
// Per group g: dX[m, n] = sum_k A[m, k] * B[k, n] with
//   m = input channel within the group, n = (batch, ih, iw), k = (co, kh, kw);
//   A[m, k] = weight[g*c_out_g + co, m, kh, kw];
//   B[k, n] = grad_out[batch, g*c_out_g + co, oh, ow] where ih = oh*stride - pad + kh*dil
//             (zero when no such output position exists).
// The host runs one GEMM per stride phase (ih mod stride_h, iw mod stride_w; one phase for
// stride 1): n walks only that phase's input positions, ih = phase_h + step_h * i', and k only
// the kernel taps that reach them, so no work is spent on zero taps, and each tap meets each
// position at a whole output coordinate: oh = i' + dy, ow = j' + dx, with no division.
// With splits > 1 partial sums go to grad_in[split * split_stride + i] (see split_reduce.wgsl).

@group(0) @binding(1) var<storage, read> grad_out: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
// Per k = (co, kh, kw): (co * out_h * out_w, dy, dx, co * c_in_g * kh_kw + kh * k_w + kw), where
// (dy, dx) is the tap's output coordinate minus (i', j').
@group(0) @binding(3) var<storage, read> ktab: array<vec4<i32>>;
@group(0) @binding(4) var<storage, read_write> grad_in: array<f32>;

// GEMM column n of the current phase: (batch, i', j'), input position
// (phase_h + step_h * i', phase_w + step_w * j').
fn phase_pos(n: u32) -> vec3<u32> {
    let sub = p.sub_h * p.sub_w;
    let b = n / sub;
    let r = n - b * sub;
    let i = r / p.sub_w;
    return vec3<u32>(b, i, r - i * p.sub_w);
}

fn store_c(t: TileId, m: u32, n: u32, v: f32) {
    let q = phase_pos(n);
    let ih = p.phase_h + q.y * p.step_h;
    let iw = p.phase_w + q.z * p.step_w;
    let idx = ((q.x * p.c_in + t.group * p.c_in_g + m) * p.in_h + ih) * p.in_w + iw;
    grad_in[t.split * p.split_stride + idx] = v;
}

// Column n: its batch's output-gradient base and its (i', j') within the phase, decoded once
// per thread.
struct Column {
    dy_base: u32,
    i: u32,
    j: u32,
}

fn column(t: TileId, n: u32) -> Column {
    let q = phase_pos(n);
    return Column((q.x * p.c_out + t.group * p.c_out_g) * p.out_h * p.out_w, q.y, q.z);
}

// Reduction step k: its kernel tap, ktab[k].
fn k_entry(t: TileId, k: u32) -> vec4<i32> {
    return ktab[k];
}

// A[m, k]: the weight of input channel m under the tap e = ktab[k].
fn a_value(t: TileId, m: u32, k: u32, e: vec4<i32>) -> f32 {
    let khw = p.k_h * p.k_w;
    return weight[t.group * p.c_out_g * p.c_in_g * khw + u32(e.w) + m * khw];
}

// B[k, n]: the output gradient that column c meets through tap `tap`; no term past the edges.
fn b_value(c: Column, tap: vec4<i32>) -> f32 {
    let oh = i32(c.i) + tap.y;
    let ow = i32(c.j) + tap.z;
    if (oh >= 0 && oh < i32(p.out_h) && ow >= 0 && ow < i32(p.out_w)) {
        return term(grad_out[c.dy_base + u32(tap.x) + u32(oh) * p.out_w + u32(ow)]);
    }
    return no_term();
}
