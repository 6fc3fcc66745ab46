// The register-tile entry point of the conv GEMMs whose B loader owns one column per thread
// (forward, input gradient, fully connected input gradient): each K tile, the threads load
// A and B through the op's hooks (see conv_gemm_skinny.wgsl) into the shared tiles of
// conv_gemm_common.wgsl, then multiply. The weight gradient, whose loaders walk K fastest,
// has its own.

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = tile_id(wg);
    if (!t.valid) { return; }

    // This thread always loads B column nn (4 * WG_N divides WORKGROUP_SIZE): decode it once.
    let nn = lid % TILE_N;
    let n = t.n0 + nn;
    let col = column(t, n);
    let n_ok = n < p.gemm_n;

    clear_nonfinite(lid);
    for (var k0 = t.k_begin; k0 < t.k_end; k0 += KT) {
        var finite = true;
        for (var e = lid; e < TILE_M * KT; e += WORKGROUP_SIZE) {
            let kk = e % KT;
            let mm = e / KT;
            let k = k0 + kk;
            let m = t.m0 + mm;
            var v = 0.0;
            if (k < t.k_end && m < p.gemm_m) {
                v = a_value(t, m, k, k_entry(t, k));
            }
            finite = finite && is_finite(v);
            put_a(kk, mm, v);
        }
        if (!finite) {
            mark_nonfinite(k0);
        }
        for (var e = lid; e < TILE_N * KT; e += WORKGROUP_SIZE) {
            let kk = e / TILE_N;
            let k = k0 + kk;
            var v = 0.0;
            if (k < t.k_end && n_ok) {
                v = b_value(col, k_entry(t, k));
            }
            put_b(kk, nn, v);
        }
        workgroupBarrier();
        mma_step(lid, k0);
        workgroupBarrier();
    }
    write_block(t, lid / WG_N, lid % WG_N);
}
