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

// Register blocks per thread: BLK_M x BLK_N (1 or 2 each) blocks of 4x4, so a thread owns up
// to 8x8 outputs and the tile's WG_M x WG_N blocks take (WG_M / BLK_M) x (WG_N / BLK_N) =
// WORKGROUP_SIZE threads. Thread (ty, tx) owns row blocks ty and ty + WG_M / 2 (BLK_M = 2) and
// column blocks tx and tx + WG_N / 2 (BLK_N = 2): each K step loads BLK_M + BLK_N vec4 from
// workgroup memory for 16 * BLK_M * BLK_N FMAs (2 loads per 16 FMAs at 1 x 1, 4 per 64 at
// 2 x 2), the ratio that bounds a tiled GEMM on GPUs (shared-memory bandwidth) and on CPU
// drivers (gathers). Each output still adds K in order, with the same bits as 1 x 1.
// BLK_M and BLK_N are declared by the module's header (src/conv/kernels.rs), before
// conv_gemm_common.wgsl: naga 30 processes overrides in declaration order and fails on one
// declared after the workgroup arrays sized by the others.

// The accumulators of the blocks past acc0..acc3 of conv_gemm_common.wgsl (the block at row
// offset 0, column offset 0): `_c` column block 1, `_r` row block 1, `_rc` both.
var<private> acc_c: array<vec4<f32>, 4>;
var<private> acc_r: array<vec4<f32>, 4>;
var<private> acc_rc: array<vec4<f32>, 4>;

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

// Element e of a K tile's load, of `width` rows (A) or columns (B): (kk, row or column in
// the tile), walking k fastest when the operand is contiguous along k (neighbouring threads
// read neighbouring addresses either way).
fn tile_element(e: u32, width: u32, k_fast: bool) -> vec2<u32> {
    return select(vec2<u32>(e / width, e % width), vec2<u32>(e % KT, e / KT), k_fast);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn pointwise(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = tile_id(wg);
    if (!t.valid) { return; }
    let threads_n = WG_N / BLK_N;
    let tx = lid % threads_n;
    let ty = lid / threads_n;
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
            let at = tile_element(e, TILE_M, a_k_fast);
            let kk = at.x;
            let mm = at.y;
            let m = t.m0 + mm;
            var v = 0.0;
            if (kk < k_len && m < p.gemm_m) {
                v = a_src[a_base + m * q.a_sm + kk * q.a_sk];
            }
            put_a(kk, mm, v);
        }
        for (var e = lid; e < TILE_N * KT; e += WORKGROUP_SIZE) {
            let at = tile_element(e, TILE_N, b_k_fast);
            let kk = at.x;
            let nn = at.y;
            let n = t.n0 + nn;
            var v = 0.0;
            if (kk < k_len && n < p.gemm_n) {
                v = b_src[b_base + n * q.b_sn + kk * q.b_sk];
            }
            put_b(kk, nn, v);
        }
        workgroupBarrier();
        mma_blocks(ty, tx);
        workgroupBarrier();
    }
    write_blocks(t, ty, tx);
}

// acc += a * b for one 4x4 block (rows a, columns b).
fn block_fma(acc: ptr<private, array<vec4<f32>, 4>>, a: vec4<f32>, b: vec4<f32>) {
    (*acc)[0] = fma(vec4<f32>(a.x), b, (*acc)[0]);
    (*acc)[1] = fma(vec4<f32>(a.y), b, (*acc)[1]);
    (*acc)[2] = fma(vec4<f32>(a.z), b, (*acc)[2]);
    (*acc)[3] = fma(vec4<f32>(a.w), b, (*acc)[3]);
}

// One K tile of multiply-accumulate for thread (ty, tx)'s BLK_M x BLK_N blocks; 1 x 1 is
// conv_gemm_common.wgsl's `mma_tile`.
fn mma_blocks(ty: u32, tx: u32) {
    if (BLK_M * BLK_N == 1u) {
        mma_tile(ty, tx);
        return;
    }
    let half_m = WG_M / 2u;
    let half_n = WG_N / 2u;
    for (var kk = 0u; kk < KT; kk++) {
        let a0 = a_tile[kk * WG_M + ty];
        let b0 = b_tile[kk * WG_N + tx];
        acc0 = fma(vec4<f32>(a0.x), b0, acc0);
        acc1 = fma(vec4<f32>(a0.y), b0, acc1);
        acc2 = fma(vec4<f32>(a0.z), b0, acc2);
        acc3 = fma(vec4<f32>(a0.w), b0, acc3);
        if (BLK_N > 1u) {
            block_fma(&acc_c, a0, b_tile[kk * WG_N + tx + half_n]);
        }
        if (BLK_M > 1u) {
            let a1 = a_tile[kk * WG_M + ty + half_m];
            block_fma(&acc_r, a1, b0);
            if (BLK_N > 1u) {
                block_fma(&acc_rc, a1, b_tile[kk * WG_N + tx + half_n]);
            }
        }
    }
}

// Writes every block of the thread through conv_gemm_common.wgsl's `write_block` (which
// writes acc0..acc3 at block (ty, tx)).
fn write_blocks(t: TileId, ty: u32, tx: u32) {
    write_block(t, ty, tx);
    if (BLK_N > 1u) {
        acc0 = acc_c[0];
        acc1 = acc_c[1];
        acc2 = acc_c[2];
        acc3 = acc_c[3];
        write_block(t, ty, tx + WG_N / 2u);
    }
    if (BLK_M > 1u) {
        acc0 = acc_r[0];
        acc1 = acc_r[1];
        acc2 = acc_r[2];
        acc3 = acc_r[3];
        write_block(t, ty + WG_M / 2u, tx);
        if (BLK_N > 1u) {
            acc0 = acc_rc[0];
            acc1 = acc_rc[1];
            acc2 = acc_rc[2];
            acc3 = acc_rc[3];
            write_block(t, ty + WG_M / 2u, tx + WG_N / 2u);
        }
    }
}
