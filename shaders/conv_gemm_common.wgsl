// Shared core of the implicit-GEMM convolution kernels (forward, input gradient, weight
// gradient). Prepended to each of them, before conv_gemm_skinny.wgsl; each op file defines
// `store_c` and its addressing hooks (see conv_gemm_skinny.wgsl); the register-tile `main` is
// conv_gemm_main.wgsl, except for the weight gradient, which has its own.
//
// Register tiles: (4 * WG_M) rows x (4 * WG_N) columns, K depth KT; WG_M x WG_N =
// WORKGROUP_SIZE threads, each owning a 4x4 block of consecutive rows and columns held in four vec4
// accumulators. Tiles of A are kept transposed ([kk][m]) and tiles of B as [kk][n], both as
// vec4, so the inner step is two vec4 loads and sixteen FMAs. Every loop is bounded by KT or
// by the tile size: one invocation runs at most k_chunk / KT tile steps (the host keeps
// k_chunk <= 16384), far below the 65,535 iterations software drivers allow. The tile shapes
// (the overrides below) and `ConvParams` come from the host (src/conv/tiles.rs, kernels.rs).

@group(0) @binding(0) var<uniform> p: ConvParams;

override WG_M: u32 = 16u;
override WG_N: u32 = 16u;
override KT: u32 = 16u;
// Rows and columns of a register tile. Thread lid owns the 4x4 block of row block
// lid / WG_N and column block lid % WG_N.
override TILE_M: u32 = 4u * WG_M;
override TILE_N: u32 = 4u * WG_N;

var<workgroup> a_tile: array<vec4<f32>, KT * WG_M>;
var<workgroup> b_tile: array<vec4<f32>, KT * WG_N>;

// Absent terms. A B element that is no term of the sum (an input tap in the padding, an output
// position past the edges) is stored as -0.0, `no_term()`: it adds nothing when multiplied by a
// finite A value. Real B values never are -0.0 (`term` turns -0.0 into +0.0, which changes no
// sum but the sign of an exact zero). A K tile whose A holds an Inf or NaN (`a_nonfinite`
// records its k0 + 1) runs `mma_tile_masked`, which skips absent terms, so a padding tap
// contributes nothing even against an Inf weight, as in the CPU twins. Finite tiles run the
// plain FMA loop; both give the same bits for finite A.
const NO_TERM: u32 = 0x80000000u;

fn no_term() -> f32 {
    return bitcast<f32>(NO_TERM);
}

fn term(v: f32) -> f32 {
    let bits = bitcast<u32>(v);
    return bitcast<f32>(select(bits, 0u, bits == NO_TERM));
}

fn is_finite(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

var<workgroup> a_nonfinite: atomic<u32>;

// Clears the mark before a workgroup's first K tile (pipelines skip the zero-initialisation
// of workgroup memory). Call in uniform control flow.
fn clear_nonfinite(lid: u32) {
    if (lid == 0u) {
        atomicStore(&a_nonfinite, 0u);
    }
    workgroupBarrier();
}

// Marks the K tile starting at k0 as holding a non-finite A value (any thread may call it).
fn mark_nonfinite(k0: u32) {
    atomicMax(&a_nonfinite, k0 + 1u);
}

// Whether the K tile starting at k0 holds a non-finite A value (after the loads' barrier).
fn tile_nonfinite(k0: u32) -> bool {
    return atomicLoad(&a_nonfinite) == k0 + 1u;
}

var<private> acc0: vec4<f32>;
var<private> acc1: vec4<f32>;
var<private> acc2: vec4<f32>;
var<private> acc3: vec4<f32>;

struct TileId {
    group: u32,
    split: u32,
    m0: u32,
    n0: u32,
    k_begin: u32,
    k_end: u32,
    valid: bool,
}

fn tile_id(wg: vec3<u32>) -> TileId {
    let wid = linear_workgroup(wg, p.fold_x);
    var t: TileId;
    t.valid = wid < p.total_wg;
    let tn = wid % p.tiles_n;
    var r = wid / p.tiles_n;
    let tm = r % p.tiles_m;
    r = r / p.tiles_m;
    t.split = r % p.splits;
    t.group = r / p.splits;
    t.m0 = tm * TILE_M;
    t.n0 = tn * TILE_N;
    t.k_begin = t.split * p.k_chunk;
    t.k_end = min(t.k_begin + p.k_chunk, p.gemm_k);
    return t;
}

fn put_a(kk: u32, mm: u32, v: f32) {
    a_tile[kk * WG_M + mm / 4u][mm % 4u] = v;
}

fn put_b(kk: u32, nn: u32, v: f32) {
    b_tile[kk * WG_N + nn / 4u][nn % 4u] = v;
}

// One K tile of multiply-accumulate for the thread of row block ty, column block tx.
fn mma_tile(ty: u32, tx: u32) {
    for (var kk = 0u; kk < KT; kk++) {
        let a = a_tile[kk * WG_M + ty];
        let b = b_tile[kk * WG_N + tx];
        acc0 = fma(vec4<f32>(a.x), b, acc0);
        acc1 = fma(vec4<f32>(a.y), b, acc1);
        acc2 = fma(vec4<f32>(a.z), b, acc2);
        acc3 = fma(vec4<f32>(a.w), b, acc3);
    }
}

// `mma_tile` skipping absent terms (for K tiles whose A holds an Inf or NaN).
fn mma_tile_masked(ty: u32, tx: u32) {
    for (var kk = 0u; kk < KT; kk++) {
        let a = a_tile[kk * WG_M + ty];
        let b = b_tile[kk * WG_N + tx];
        let absent = bitcast<vec4<u32>>(b) == vec4<u32>(NO_TERM);
        acc0 = select(fma(vec4<f32>(a.x), b, acc0), acc0, absent);
        acc1 = select(fma(vec4<f32>(a.y), b, acc1), acc1, absent);
        acc2 = select(fma(vec4<f32>(a.z), b, acc2), acc2, absent);
        acc3 = select(fma(vec4<f32>(a.w), b, acc3), acc3, absent);
    }
}

// Thread lid's K tile: the plain or the masked loop. Loops rather than a branch: software drivers skip
// a loop that no lane enters, but run both sides of a branch.
fn mma_step(lid: u32, k0: u32) {
    let ty = lid / WG_N;
    let tx = lid % WG_N;
    let masked = tile_nonfinite(k0);
    for (var r = 0u; r < select(1u, 0u, masked); r++) {
        mma_tile(ty, tx);
    }
    for (var r = 0u; r < select(0u, 1u, masked); r++) {
        mma_tile_masked(ty, tx);
    }
}

// Writes the 4x4 block of row block ty, column block tx (thread ty * WG_N + tx's in the
// register tiles) through `store_c`, skipping out-of-range rows and columns.
fn write_block(t: TileId, ty: u32, tx: u32) {
    let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var j = 0u; j < 4u; j++) {
        let n = t.n0 + tx * 4u + j;
        if (n >= p.gemm_n) {
            break;
        }
        for (var i = 0u; i < 4u; i++) {
            let m = t.m0 + ty * 4u + i;
            if (m < p.gemm_m) {
                store_c(t, m, n, accs[i][j]);
            }
        }
    }
}
