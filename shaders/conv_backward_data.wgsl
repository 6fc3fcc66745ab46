// Conv2d input gradient as an implicit GEMM with transposed-conv addressing (NCHW).
// Per group g: dX[m, n] = sum_k A[m, k] * B[k, n] with
//   m = input channel within the group, n = (batch, ih, iw), k = (co, kh, kw);
//   A[m, k] = weight[g*c_out_g + co, m, kh, kw];
//   B[k, n] = grad_out[batch, g*c_out_g + co, oh, ow] where ih = oh*stride - pad + kh*dil
//             (zero when no such output position exists).
// With stride > 1 the host runs one GEMM per stride phase (ih mod stride_h, iw mod stride_w):
// n then walks only that phase's input positions, ih = phase_h + step_h * i', and k only the
// kernel taps that reach them, so no work is spent on zero taps.
// With splits > 1 partial sums go to grad_in[split * split_stride + i] (see split_reduce.wgsl).

@group(0) @binding(1) var<storage, read> grad_out: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
// Per k = (co, kh, kw): (co * out_h * out_w, kh * dil_h, kw * dil_w, co * c_in_g * kh_kw + kh * k_w + kw).
@group(0) @binding(3) var<storage, read> ktab: array<vec4<i32>>;
@group(0) @binding(4) var<storage, read_write> grad_in: array<f32>;

// Input position (batch, ih, iw) of GEMM column n in the current phase.
fn input_pos(n: u32) -> vec3<u32> {
    let sub = p.sub_h * p.sub_w;
    let b = n / sub;
    let r = n - b * sub;
    let i = r / p.sub_w;
    let j = r - i * p.sub_w;
    return vec3<u32>(b, p.phase_h + i * p.step_h, p.phase_w + j * p.step_w);
}

fn store_c(t: TileId, m: u32, n: u32, v: f32) {
    let pos = input_pos(n);
    let idx = ((pos.x * p.c_in + t.group * p.c_in_g + m) * p.in_h + pos.y) * p.in_w + pos.z;
    grad_in[t.split * p.split_stride + idx] = v;
}

// Output coordinate that input coordinate `i` meets through kernel offset `off`, or -1.
fn out_coord(i: u32, off: i32, pad: u32, stride: u32, extent: u32) -> i32 {
    let q = i32(i + pad) - off;
    if (q < 0) {
        return -1;
    }
    let o = u32(q) / stride;
    if (o * stride != u32(q) || o >= extent) {
        return -1;
    }
    return i32(o);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = tile_id(wg);
    if (!t.valid) {
        return;
    }
    let tx = lid % WG_N;
    let ty = lid / WG_N;
    let tile_n = 4u * WG_N;
    let tile_m = 4u * WG_M;
    let khw = p.k_h * p.k_w;

    let nn = lid % tile_n;
    let n = t.n0 + nn;
    let pos = input_pos(n);
    let b = pos.x;
    let ih = pos.y;
    let iw = pos.z;
    let n_ok = n < p.gemm_n;
    let dy_base = (b * p.c_out + t.group * p.c_out_g) * p.out_h * p.out_w;
    let w_base = t.group * p.c_out_g * p.c_in_g * khw;

    for (var k0 = t.k_begin; k0 < t.k_end; k0 += KT) {
        for (var e = lid; e < tile_m * KT; e += THREADS) {
            let kk = e % KT;
            let mm = e / KT;
            let k = k0 + kk;
            let m = t.m0 + mm;
            var v = 0.0;
            if (k < t.k_end && m < p.gemm_m) {
                v = weight[w_base + u32(ktab[k].w) + m * khw];
            }
            put_a(kk, mm, v);
        }
        for (var e = lid; e < tile_n * KT; e += THREADS) {
            let kk = e / tile_n;
            let k = k0 + kk;
            var v = 0.0;
            if (k < t.k_end && n_ok) {
                let ent = ktab[k];
                let oh = out_coord(ih, ent.y, p.pad_h, p.stride_h, p.out_h);
                let ow = out_coord(iw, ent.z, p.pad_w, p.stride_w, p.out_w);
                if (oh >= 0 && ow >= 0) {
                    v = grad_out[dy_base + u32(ent.x) + u32(oh) * p.out_w + u32(ow)];
                }
            }
            put_b(kk, nn, v);
        }
        workgroupBarrier();
        mma_tile(ty, tx);
        workgroupBarrier();
    }
    write_block(t, ty, tx);
}
