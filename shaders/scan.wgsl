// Prefix sum in place, reduce-then-scan over several dispatches (no spin-waiting, so no
// forward-progress assumption). Generic over the element: a prelude declares `Elem`,
// `ELEM_ZERO`, `elem_add`, `INCLUSIVE` and the uniform `p` (with `len`, `fold_x`,
// `total_wg`): `scan_u32.wgsl` (exclusive u32, the sort's digit offsets) or `owl_scan.wgsl`
// (inclusive 64-bit fixed point, the OWL prox's cumulative sums). Integer sums: exact.
//
// `scan_block`: workgroup w scans its SCAN_BLOCK = 4096 values (each thread 16 consecutive ones,
// then a raking scan of the 256 thread totals), writes the prefixes in place and the block's
// total to totals[w]. The host scans `totals` the same way (recursively), then `add_block`
// adds the scanned total of the earlier blocks to each block's values.

// `SCAN_BLOCK` (4096) comes from the host.
const PER_THREAD: u32 = SCAN_BLOCK / WORKGROUP_SIZE;

@group(0) @binding(1) var<storage, read_write> data: array<Elem>;
@group(0) @binding(2) var<storage, read_write> totals: array<Elem>;

var<workgroup> sums: array<Elem, WORKGROUP_SIZE>;
var<workgroup> rake: array<Elem, 16>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn scan_block(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let wid = linear_workgroup(wg, p.fold_x);
    if (wid >= p.total_wg) { return; }
    let first = wid * SCAN_BLOCK + lid * PER_THREAD;
    var s = ELEM_ZERO;
    for (var e = 0u; e < PER_THREAD; e++) {
        if (first + e < p.len) {
            s = elem_add(s, data[first + e]);
        }
    }
    sums[lid] = s;
    workgroupBarrier();
    // Threads 0-15 rake 16 sums each, then thread 0 the 16 rakers. The thread test is the
    // loops' bound, not a branch: software drivers skip a loop that no lane of a SIMD batch
    // enters, but run a branch's body masked for every batch.
    {
        var run = ELEM_ZERO;
        for (var j = 0u; j < select(0u, 16u, lid < 16u); j++) {
            let v = sums[lid * 16u + j];
            sums[lid * 16u + j] = run;
            run = elem_add(run, v);
        }
        if (lid < 16u) {
            rake[lid] = run;
        }
    }
    workgroupBarrier();
    {
        var run = ELEM_ZERO;
        for (var j = 0u; j < select(0u, 16u, lid == 0u); j++) {
            let v = rake[j];
            rake[j] = run;
            run = elem_add(run, v);
        }
        if (lid == 0u) {
            totals[wid] = run;
        }
    }
    workgroupBarrier();
    // The sum of everything before this thread's first value in the block.
    var run = elem_add(rake[lid / 16u], sums[lid]);
    for (var e = 0u; e < PER_THREAD; e++) {
        if (first + e < p.len) {
            let v = data[first + e];
            if (INCLUSIVE) {
                run = elem_add(run, v);
                data[first + e] = run;
            } else {
                data[first + e] = run;
                run = elem_add(run, v);
            }
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn add_block(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let wid = linear_workgroup(wg, p.fold_x);
    if (wid >= p.total_wg) { return; }
    // Scanned totals: exclusive ones hold the earlier blocks' sum at wid, inclusive ones at
    // wid - 1 (block 0 has nothing to add).
    var add = ELEM_ZERO;
    if (INCLUSIVE) {
        if (wid == 0u) { return; }
        add = totals[wid - 1u];
    } else {
        add = totals[wid];
    }
    let first = wid * SCAN_BLOCK + lid * PER_THREAD;
    for (var e = 0u; e < PER_THREAD; e++) {
        if (first + e < p.len) {
            data[first + e] = elem_add(add, data[first + e]);
        }
    }
}
