// Skinny and narrow tiles of the conv GEMMs, 4 rows each, for GEMMs where the 4 x 4 register
// tiles above would leave most threads idle: few rows (the input gradient of a layer with 1-4
// input channels, a depthwise conv, a layer with 1-4 output channels, a fully connected layer
// at batch 1-4) or few columns and long K (a depthwise weight gradient). A thread owns one
// column n and all 4 rows in one vec4 accumulator, so each thread gathers the B elements of
// its column itself, with no shared B tile and no barrier per K step: a workgroup stages
// SKINNY_K (= WORKGROUP_SIZE, from the host) K steps of A (4 rows each) and of the op's per-K entry in workgroup memory, then each
// thread walks them in K order.
//
// A tile has 4 * WG_N columns: WORKGROUP_SIZE (skinny: one thread per column), or 16
// (narrow: WORKGROUP_SIZE / 16 threads per column, "slices", slice s taking every 16th K step from s). The slices' sums
// of a column then meet in a fixed-order tree. The order of every addition depends only on
// the plan.
//
// Every op file defines the hooks both this and its tiled `main` use:
//   struct Column, fn column(t, n) -> Column: the op's addressing of column n, decoded once;
//   fn k_entry(t, k) -> vec4<i32>: what the op needs to know about reduction step k;
//   fn a_value(t, m, k, e) -> f32: A[m, k], with e = k_entry(t, k); called only in range;
//   fn b_value(c, e) -> f32: B[k, n] of column c (through `term`), `no_term()` where the column
//   has no term (see conv_gemm_common.wgsl).
// The host launches it with WG_M = 1 and 4 * WG_N columns per tile (see src/conv/tiles.rs).

// Columns per thread (1, 2 or 4; the host's `Tile`): with CPT > 1 (skinny tiles only, one
// slice) a thread owns columns n0 + c, n0 + c + cols, ... (c = lid % cols, cols = threads per
// slice), so each staged K step's A value and entry, read once from workgroup memory, feed CPT
// columns (register blocking along n; neighbouring threads still read neighbouring columns).
// The columns' accumulators are acc0..acc3 of conv_gemm_common.wgsl, written out statement by
// statement (no private array, no inner loop for the loop limiter to count).
override CPT: u32 = 1u;

var<workgroup> skinny_a: array<vec4<f32>, SKINNY_K>;
var<workgroup> skinny_entries: array<vec4<i32>, SKINNY_K>;

// acc += a * b unless b is no term (`masked`: the stage's A holds an Inf or NaN).
fn skinny_fma(a: vec4<f32>, b: f32, acc: vec4<f32>, masked: bool) -> vec4<f32> {
    let fused = fma(a, vec4<f32>(b), acc);
    return select(fused, acc, masked && bitcast<u32>(b) == NO_TERM);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn skinny(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = tile_id(wg);
    if (!t.valid) { return; }
    let cols = 4u * WG_N / CPT;
    let slices = WORKGROUP_SIZE / cols;
    let slice = lid / cols;
    let n = t.n0 + lid % cols;
    let n_ok = n < p.gemm_n;
    // Idle threads of the last tile decode the last column and never store it.
    let last = p.gemm_n - 1u;
    let col0 = column(t, min(n, last));
    let col1 = column(t, min(n + cols, last));
    let col2 = column(t, min(n + 2u * cols, last));
    let col3 = column(t, min(n + 3u * cols, last));
    acc0 = vec4<f32>(0.0);
    acc1 = vec4<f32>(0.0);
    acc2 = vec4<f32>(0.0);
    acc3 = vec4<f32>(0.0);
    clear_nonfinite(lid);
    for (var k0 = t.k_begin; k0 < t.k_end; k0 += SKINNY_K) {
        let k = k0 + lid;
        var a = vec4<f32>(0.0);
        var e = vec4<i32>(0);
        if (k < t.k_end) {
            e = k_entry(t, k);
            for (var i = 0u; i < 4u; i++) {
                if (t.m0 + i < p.gemm_m) {
                    a[i] = a_value(t, t.m0 + i, k, e);
                }
            }
        }
        if (!(is_finite(a.x) && is_finite(a.y) && is_finite(a.z) && is_finite(a.w))) {
            mark_nonfinite(k0);
        }
        skinny_a[lid] = a;
        skinny_entries[lid] = e;
        workgroupBarrier();
        // Stages whose A holds an Inf or NaN skip absent terms (see conv_gemm_common.wgsl);
        // finite ones run the plain FMA, with the same bits.
        let masked = tile_nonfinite(k0);
        let steps = select(0u, min(SKINNY_K, t.k_end - k0), n_ok);
        for (var kk = slice; kk < steps; kk += slices) {
            let a = skinny_a[kk];
            let e = skinny_entries[kk];
            acc0 = skinny_fma(a, b_value(col0, e), acc0, masked);
            if (CPT > 1u) {
                acc1 = skinny_fma(a, b_value(col1, e), acc1, masked);
            }
            if (CPT > 2u) {
                acc2 = skinny_fma(a, b_value(col2, e), acc2, masked);
                acc3 = skinny_fma(a, b_value(col3, e), acc3, masked);
            }
        }
        workgroupBarrier();
    }
    // Narrow tiles (CPT = 1): a tree over the slices, slice s adding slice s + half.
    if (slices > 1u) {
        skinny_a[lid] = acc0;
        workgroupBarrier();
        for (var half = slices / 2u; half > 0u; half /= 2u) {
            if (slice < half) {
                skinny_a[lid] += skinny_a[lid + half * cols];
            }
            workgroupBarrier();
        }
        acc0 = skinny_a[lid];
    }
    if (slice == 0u) {
        let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
        for (var j = 0u; j < CPT; j++) {
            let nj = n + j * cols;
            for (var i = 0u; i < 4u; i++) {
                if (nj < p.gemm_n && t.m0 + i < p.gemm_m) {
                    store_c(t, t.m0 + i, nj, accs[j][i]);
                }
            }
        }
    }
}
