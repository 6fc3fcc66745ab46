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
// The host launches it with WG_M = 1 and WG_N = 64 or 4, so tile_id() sees 4 x 256 or 4 x 16
// tiles.

var<workgroup> skinny_a: array<vec4<f32>, SKINNY_K>;
var<workgroup> skinny_entries: array<vec4<i32>, SKINNY_K>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn skinny(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = tile_id(wg);
    if (!t.valid) {
        return;
    }
    let cols = 4u * WG_N;
    let slices = WORKGROUP_SIZE / cols;
    let slice = lid / cols;
    let n = t.n0 + lid % cols;
    let n_ok = n < p.gemm_n;
    // Idle threads of the last tile decode the last column and never use it.
    let col = column(t, min(n, p.gemm_n - 1u));
    var acc = vec4<f32>(0.0);
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
        // Stages whose A holds an Inf or NaN skip absent terms (see conv_gemm_common.wgsl).
        let masked = tile_nonfinite(k0);
        let steps = select(0u, min(SKINNY_K, t.k_end - k0), n_ok);
        for (var kk = select(slice, steps, masked); kk < steps; kk += slices) {
            acc = fma(skinny_a[kk], vec4<f32>(b_value(col, skinny_entries[kk])), acc);
        }
        for (var kk = select(steps, slice, masked); kk < steps; kk += slices) {
            let b = b_value(col, skinny_entries[kk]);
            let fused = fma(skinny_a[kk], vec4<f32>(b), acc);
            acc = select(fused, acc, bitcast<u32>(b) == NO_TERM);
        }
        workgroupBarrier();
    }
    // Narrow tiles: a tree over the slices, slice s adding slice s + half.
    if (slices > 1u) {
        skinny_a[lid] = acc;
        workgroupBarrier();
        for (var half = slices / 2u; half > 0u; half /= 2u) {
            if (slice < half) {
                skinny_a[lid] += skinny_a[lid + half * cols];
            }
            workgroupBarrier();
        }
        acc = skinny_a[lid];
    }
    if (slice == 0u && n_ok) {
        for (var i = 0u; i < 4u; i++) {
            if (t.m0 + i < p.gemm_m) {
                store_c(t, t.m0 + i, n, acc[i]);
            }
        }
    }
}
