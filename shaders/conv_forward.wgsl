// Conv2d forward as an implicit GEMM (NCHW input and output, weight [c_out, c_in/groups, kh, kw]).
// Per group g: C[m, n] = sum_k A[m, k] * B[k, n] with
//   m = output channel within the group, n = (batch, oh, ow), k = (ci, kh, kw);
//   A = weight rows, B = the im2col view of the input, computed from addresses (never stored).
// With splits > 1 each split writes its partial sums to output[split * split_stride + i] and
// split_reduce.wgsl adds them (and the bias) in a fixed order.

@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
// Per k = (ci, kh, kw): (ci * in_h * in_w, kh * dil_h, kw * dil_w, unused).
@group(0) @binding(4) var<storage, read> ktab: array<vec4<i32>>;
@group(0) @binding(5) var<storage, read_write> output: array<f32>;

fn store_c(t: TileId, m: u32, n: u32, v: f32) {
    let plane = p.out_h * p.out_w;
    let b = n / plane;
    let pix = n - b * plane;
    let co = t.group * p.c_out_g + m;
    let idx = (b * p.c_out + co) * plane + pix;
    if (p.splits == 1u) {
        var r = v;
        if (p.has_bias != 0u) {
            r += bias[co];
        }
        output[idx] = r;
    } else {
        output[t.split * p.split_stride + idx] = v;
    }
}

// Column n of the im2col view: (batch, oh, ow) decoded once per thread.
struct Column {
    in_base: u32,
    y0: i32,
    x0: i32,
}

fn column(t: TileId, n: u32) -> Column {
    let plane = p.out_h * p.out_w;
    let b = n / plane;
    let pix = n - b * plane;
    let oh = pix / p.out_w;
    let ow = pix - oh * p.out_w;
    return Column(
        (b * p.c_in + t.group * p.c_in_g) * p.in_h * p.in_w,
        i32(oh * p.stride_h) - i32(p.pad_h),
        i32(ow * p.stride_w) - i32(p.pad_w),
    );
}

// Reduction step k: its kernel tap, ktab[k].
fn k_entry(t: TileId, k: u32) -> vec4<i32> {
    return ktab[k];
}

// A[m, k]: weight row m of the group.
fn a_value(t: TileId, m: u32, k: u32, e: vec4<i32>) -> f32 {
    return weight[(t.group * p.c_out_g + m) * p.gemm_k + k];
}

// B[k, n]: the input under kernel tap `tap` = ktab[k]; no term in the padding.
fn b_value(c: Column, tap: vec4<i32>) -> f32 {
    let y = c.y0 + tap.y;
    let x = c.x0 + tap.z;
    if (y >= 0 && y < i32(p.in_h) && x >= 0 && x < i32(p.in_w)) {
        return term(input[c.in_base + u32(tap.x) + u32(y) * p.in_w + u32(x)]);
    }
    return no_term();
}
