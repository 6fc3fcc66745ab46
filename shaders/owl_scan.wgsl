// Inclusive 64-bit integer scan of data[0 .. len) in blocks of 4096 (16 per thread, then a
// raking scan of the 256 thread sums); `scan_block` writes block totals, the host scans them
// the same way, `add_block` adds the inclusive total of the earlier blocks. Exact.

@group(0) @binding(1) var<storage, read_write> data: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read_write> totals: array<vec2<u32>>;

const PER_THREAD: u32 = 16u;
const BLOCK: u32 = 4096u;

var<workgroup> sums: array<vec2<u32>, 256>;
var<workgroup> rake: array<vec2<u32>, 16>;

@compute @workgroup_size(256)
fn scan_block(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let b = wg.x + wg.y * p.fold_x;
    if (b >= p.total_wg) {
        return;
    }
    let first = b * BLOCK + lid * PER_THREAD;
    var run = vec2<u32>(0u, 0u);
    for (var e = 0u; e < PER_THREAD; e++) {
        if (first + e < p.len) {
            run = i64_add(run, data[first + e]);
        }
    }
    sums[lid] = run;
    workgroupBarrier();
    if (lid < 16u) {
        var acc = vec2<u32>(0u, 0u);
        for (var j = 0u; j < 16u; j++) {
            let x = sums[lid * 16u + j];
            sums[lid * 16u + j] = acc;
            acc = i64_add(acc, x);
        }
        rake[lid] = acc;
    }
    workgroupBarrier();
    if (lid == 0u) {
        var acc = vec2<u32>(0u, 0u);
        for (var j = 0u; j < 16u; j++) {
            let x = rake[j];
            rake[j] = acc;
            acc = i64_add(acc, x);
        }
        totals[b] = acc;
    }
    workgroupBarrier();
    var acc = i64_add(rake[lid / 16u], sums[lid]);
    for (var e = 0u; e < PER_THREAD; e++) {
        if (first + e < p.len) {
            acc = i64_add(acc, data[first + e]);
            data[first + e] = acc;
        }
    }
}

@compute @workgroup_size(256)
fn add_block(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let b = wg.x + wg.y * p.fold_x;
    if (b >= p.total_wg || b == 0u) {
        return;
    }
    let add = totals[b - 1u];
    let first = b * BLOCK + lid * PER_THREAD;
    for (var e = 0u; e < PER_THREAD; e++) {
        if (first + e < p.len) {
            data[first + e] = i64_add(add, data[first + e]);
        }
    }
}
