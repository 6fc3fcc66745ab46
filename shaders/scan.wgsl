// Exclusive prefix sum of u32 values, in place, reduce-then-scan over several dispatches
// (no spin-waiting, so no forward-progress assumption):
// `scan_block`: workgroup w scans its BLOCK = 4096 values (each thread 16 consecutive ones,
// then a raking scan of the 256 thread totals), writes the exclusive prefixes in place and the
// block's total to totals[w]. The host scans `totals` the same way (recursively), then
// `add_block` adds each block's scanned total to its values. Integer sums: exact.

struct ScanParams {
    len: u32,
    blocks: u32,
    fold_x: u32,
    total_wg: u32,
}

const PER_THREAD: u32 = 16u;
const BLOCK: u32 = 4096u;

@group(0) @binding(0) var<uniform> p: ScanParams;
@group(0) @binding(1) var<storage, read_write> data: array<u32>;
@group(0) @binding(2) var<storage, read_write> totals: array<u32>;

var<workgroup> sums: array<u32, 256>;
var<workgroup> rake: array<u32, 16>;

@compute @workgroup_size(256)
fn scan_block(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let wid = wg.x + wg.y * p.fold_x;
    if (wid >= p.total_wg) {
        return;
    }
    let first = wid * BLOCK + lid * PER_THREAD;
    var s = 0u;
    for (var e = 0u; e < PER_THREAD; e++) {
        if (first + e < p.len) {
            s += data[first + e];
        }
    }
    sums[lid] = s;
    workgroupBarrier();
    if (lid < 16u) {
        var run = 0u;
        for (var j = 0u; j < 16u; j++) {
            let v = sums[lid * 16u + j];
            sums[lid * 16u + j] = run;
            run += v;
        }
        rake[lid] = run;
    }
    workgroupBarrier();
    if (lid == 0u) {
        var run = 0u;
        for (var j = 0u; j < 16u; j++) {
            let v = rake[j];
            rake[j] = run;
            run += v;
        }
        totals[wid] = run;
    }
    workgroupBarrier();
    var run = sums[lid] + rake[lid / 16u];
    for (var e = 0u; e < PER_THREAD; e++) {
        if (first + e < p.len) {
            let v = data[first + e];
            data[first + e] = run;
            run += v;
        }
    }
}

@compute @workgroup_size(256)
fn add_block(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let wid = wg.x + wg.y * p.fold_x;
    if (wid >= p.total_wg) {
        return;
    }
    let add = totals[wid];
    let first = wid * BLOCK + lid * PER_THREAD;
    for (var e = 0u; e < PER_THREAD; e++) {
        if (first + e < p.len) {
            data[first + e] += add;
        }
    }
}
