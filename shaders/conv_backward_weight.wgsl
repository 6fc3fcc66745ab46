// Conv2d weight gradient (the shared kernel's gradient) as an implicit GEMM, NCHW.
// Per group g: dW[m, n] = sum_k A[m, k] * B[k, n] with
//   m = output channel within the group, n = (ci, kh, kw), k = (batch, oh, ow): K is the
//   reduction over the batch and every output position, so the host splits it into chunks
//   (splits) whose partial sums land in grad_weight[split * split_stride + i] and are added in a
//   fixed order by split_reduce.wgsl: deterministic, no atomics.
//   A[m, k] = grad_out[batch, g*c_out_g + m, oh, ow];
//   B[k, n] = input[batch, g*c_in_g + ci, oh*stride - pad + kh*dil, ow*stride - pad + kw*dil].

@group(0) @binding(1) var<storage, read> grad_out: array<f32>;
@group(0) @binding(2) var<storage, read> input: array<f32>;
// Per n = (ci, kh, kw): (ci * in_h * in_w, kh * dil_h, kw * dil_w, unused).
@group(0) @binding(3) var<storage, read> ktab: array<vec4<i32>>;
@group(0) @binding(4) var<storage, read_write> grad_weight: array<f32>;

fn store_c(t: TileId, m: u32, n: u32, v: f32) {
    let idx = (t.group * p.c_out_g + m) * p.gemm_n + n;
    grad_weight[t.split * p.split_stride + idx] = v;
}

// Column n = (ci, kh, kw): its kernel tap, ktab[n].
struct Column {
    tap: vec4<i32>,
}

fn column(t: TileId, n: u32) -> Column {
    return Column(ktab[n]);
}

// Reduction step k = (batch, oh, ow): (grad_out index of row 0, input base of the group,
// top-left input row, top-left input column); the first two are u32 bits.
fn k_entry(t: TileId, k: u32) -> vec4<i32> {
    let plane = p.out_h * p.out_w;
    let b = k / plane;
    let pix = k - b * plane;
    let oh = pix / p.out_w;
    let ow = pix - oh * p.out_w;
    return vec4<i32>(
        bitcast<i32>((b * p.c_out + t.group * p.c_out_g) * plane + pix),
        bitcast<i32>((b * p.c_in + t.group * p.c_in_g) * p.in_h * p.in_w),
        i32(oh * p.stride_h) - i32(p.pad_h),
        i32(ow * p.stride_w) - i32(p.pad_w),
    );
}

// A[m, k]: the output gradient of channel m at step k.
fn a_value(t: TileId, m: u32, k: u32, e: vec4<i32>) -> f32 {
    return grad_out[bitcast<u32>(e.x) + m * p.out_h * p.out_w];
}

// B[k, n]: the input that tap c meets at step e; no term in the padding.
fn b_value(c: Column, e: vec4<i32>) -> f32 {
    let y = e.z + c.tap.y;
    let x = e.w + c.tap.z;
    if (y >= 0 && y < i32(p.in_h) && x >= 0 && x < i32(p.in_w)) {
        return term(input[bitcast<u32>(e.y) + u32(c.tap.x) + u32(y) * p.in_w + u32(x)]);
    }
    return no_term();
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = tile_id(wg);
    if (!t.valid) { return; }

    // Both loaders walk K fastest (KT divides WORKGROUP_SIZE), so this thread's k is fixed per tile.
    let kk = lid % KT;
    let row0 = lid / KT;
    let rows_per_pass = WORKGROUP_SIZE / KT;

    clear_nonfinite(lid);
    for (var k0 = t.k_begin; k0 < t.k_end; k0 += KT) {
        let k = k0 + kk;
        let k_ok = k < t.k_end;
        let e = k_entry(t, k);
        var finite = true;
        for (var mm = row0; mm < TILE_M; mm += rows_per_pass) {
            let m = t.m0 + mm;
            var v = 0.0;
            if (k_ok && m < p.gemm_m) {
                v = a_value(t, m, k, e);
            }
            finite = finite && is_finite(v);
            put_a(kk, mm, v);
        }
        if (!finite) {
            mark_nonfinite(k0);
        }
        for (var nn = row0; nn < TILE_N; nn += rows_per_pass) {
            let n = t.n0 + nn;
            var v = 0.0;
            if (k_ok && n < p.gemm_n) {
                v = b_value(column(t, n), e);
            }
            put_b(kk, nn, v);
        }
        workgroupBarrier();
        mma_step(lid, k0);
        workgroupBarrier();
    }
    write_block(t, lid / WG_N, lid % WG_N);
}
