// The plain-GEMM kernel of pointwise convolutions (1x1 kernel, stride 1, no padding, one
// group) and dense layers, composed after conv_gemm_common.wgsl, whose tile ids, workgroup
// tiles, 4x4 register block (`mma_tile`) and `write_block` it runs. Such a conv is a batched
// GEMM with no im2col at all, so this kernel reads A and B through strides (`q`, from
// src/conv/pointwise.rs) instead of the implicit GEMMs' tap table and per-element index math:
//   C[g][m][n] = sum_k A[m][k] * B[k][n] (+ bias[m]),
//   A[m][k] = a_src[g * a_sg + blk * a_si + m * a_sm + kp * a_sk], B likewise with n,
//   C[g][m][n] = c_dst[g * c_sg + m * c_sm + n * c_sn],
// where g is the grid's group axis (`t.group`: the image, so one n tile stays in one image and
// its B rows are contiguous), and k = blk * k_block + kp walks K in blocks (the weight
// gradient's K runs over images: block = image, kp = position) of which the first k_valid
// steps are terms and the rest zeros. The host keeps k_block a multiple of 16 and K chunks
// whole 16s, so a K tile (KT divides 16) lies in one block: the block is decoded once per tile,
// never per element.
//
// Every term is present (no padding), so there are no absent terms to mask and the tile loop
// is the plain FMA loop: K is added in order, as by the implicit GEMMs' register tiles.
//
// Why this helps on a real GPU too: each loader walks the operand's contiguous axis fastest
// (`a_k_fast`, `b_k_fast`), so neighbouring threads read neighbouring addresses (coalesced
// loads), with no table reads, no bounds tests per tap and no integer division per element;
// the workgroup-memory tiles and 4x4 register blocks reuse each loaded value 4 * WG_N (A) or
// 4 * WG_M (B) times. Every loop is bounded by the tile or by k_chunk / KT (k_chunk <= 16384).

@group(0) @binding(1) var<uniform> q: PointwiseParams;
@group(0) @binding(2) var<storage, read> a_src: array<f32>;
@group(0) @binding(3) var<storage, read> b_src: array<f32>;
// Read only when `p.has_bias` is set and K is not split (the forward); else a stand-in.
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> c_dst: array<f32>;

fn store_c(t: TileId, m: u32, n: u32, v: f32) {
    let idx = t.group * q.c_sg + m * q.c_sm + n * q.c_sn;
    if (p.splits == 1u) {
        var r = v;
        if (p.has_bias != 0u) {
            r += bias[m];
        }
        c_dst[idx] = r;
    } else {
        c_dst[t.split * p.split_stride + idx] = v;
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn pointwise(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = tile_id(wg);
    if (!t.valid) { return; }
    let a_k_fast = q.a_k_fast != 0u;
    let b_k_fast = q.b_k_fast != 0u;
    let a_group = t.group * q.a_sg;
    let b_group = t.group * q.b_sg;

    for (var k0 = t.k_begin; k0 < t.k_end; k0 += KT) {
        let blk = k0 / q.k_block;
        let kp0 = k0 - blk * q.k_block;
        // Steps of this tile that are terms: within the chunk and the block's valid steps.
        let k_len = min(t.k_end - k0, select(0u, q.k_valid - kp0, kp0 < q.k_valid));
        let a_base = a_group + blk * q.a_si + kp0 * q.a_sk;
        let b_base = b_group + blk * q.b_si + kp0 * q.b_sk;
        for (var e = lid; e < TILE_M * KT; e += WORKGROUP_SIZE) {
            let kk = select(e / TILE_M, e % KT, a_k_fast);
            let mm = select(e % TILE_M, e / KT, a_k_fast);
            let m = t.m0 + mm;
            var v = 0.0;
            if (kk < k_len && m < p.gemm_m) {
                v = a_src[a_base + m * q.a_sm + kk * q.a_sk];
            }
            put_a(kk, mm, v);
        }
        for (var e = lid; e < TILE_N * KT; e += WORKGROUP_SIZE) {
            let kk = select(e / TILE_N, e % KT, b_k_fast);
            let nn = select(e % TILE_N, e / KT, b_k_fast);
            let n = t.n0 + nn;
            var v = 0.0;
            if (kk < k_len && n < p.gemm_n) {
                v = b_src[b_base + n * q.b_sn + kk * q.b_sk];
            }
            put_b(kk, nn, v);
        }
        workgroupBarrier();
        mma_tile(lid / WG_N, lid % WG_N);
        workgroupBarrier();
    }
    write_block(t, lid);
}
