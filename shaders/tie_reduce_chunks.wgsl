// Tied groups, scalar granularity, pass 1: segmented reduction of equal-size chunks.
//
// The plan lists the tied parameters grouped by group (a stable counting sort on the host):
// position `pos` holds parameter perm[pos] of group member_group[pos]; group g occupies
// positions offsets[g] .. offsets[g + 1]. Workgroup w reduces positions
// [w * CHUNK, (w + 1) * CHUNK), whatever the group sizes, so one giant group and millions of
// singletons balance alike. Each thread owns PER_THREAD consecutive positions (kept in
// registers): it sums them sequentially, resetting at group starts; a segmented raking
// scan over the 256 threads' trailing sums gives each thread the carry of the segment it
// starts in. The order of every addition depends only on the plan, never on scheduling.
// A group entirely inside the chunk is written to out[g]; a group crossing the chunk's edges
// leaves its partial in partials[2w] (the chunk's first segment) or partials[2w + 1] (its
// last), which tie_reduce_spans.wgsl adds in a fixed order.

struct ReduceParams {
    members: u32,
    chunks: u32,
    fold_x: u32,
    total_wg: u32,
    mean: u32,
    identity: u32,
    _pad0: u32,
    _pad1: u32,
}

const PER_THREAD: u32 = 16u;
const CHUNK: u32 = 4096u; // 256 * PER_THREAD
const NONE: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> p: ReduceParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> perm: array<u32>;
@group(0) @binding(3) var<storage, read> member_group: array<u32>;
@group(0) @binding(4) var<storage, read> offsets: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> partials: array<f32>;

var<workgroup> scan_v: array<f32, 256>;
var<workgroup> scan_f: array<u32, 256>;
var<workgroup> rake_v: array<f32, 16>;
var<workgroup> rake_f: array<u32, 16>;
var<workgroup> rake_carry: array<f32, 16>;

fn group_at(pos: u32) -> u32 {
    if (pos >= p.members) {
        return NONE;
    }
    return member_group[pos];
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let wid = wg.x + wg.y * p.fold_x;
    if (wid >= p.total_wg) {
        return;
    }
    let base = wid * CHUNK;
    let first = base + lid * PER_THREAD;

    var vals: array<f32, 16>;
    var gs: array<u32, 16>;
    for (var e = 0u; e < PER_THREAD; e++) {
        let pos = first + e;
        var v = 0.0;
        if (pos < p.members) {
            if (p.identity != 0u) {
                v = src[pos];
            } else {
                v = src[perm[pos]];
            }
        }
        vals[e] = v;
        gs[e] = group_at(pos);
    }
    var before = NONE;
    if (lid > 0u) {
        before = group_at(first - 1u);
    }

    // The thread's trailing segment sum, and whether a segment starts inside the thread.
    var run = 0.0;
    var any_start = false;
    var prev = before;
    for (var e = 0u; e < PER_THREAD; e++) {
        if (gs[e] != prev || (lid == 0u && e == 0u)) {
            run = 0.0;
            any_start = true;
        }
        run += vals[e];
        prev = gs[e];
    }
    scan_v[lid] = run;
    scan_f[lid] = select(0u, 1u, any_start);
    workgroupBarrier();

    // Segmented inclusive scan over the 256 threads, raking (4 barriers, work-efficient):
    // 16 rakers scan 16 entries each, one thread scans the 16 raker totals, the rakers add
    // the carries. (f1, v1) + (f2, v2) = (f1 | f2, f2 ? v2 : v1 + v2).
    if (lid < 16u) {
        var f = 0u;
        var v = 0.0;
        for (var j = 0u; j < 16u; j++) {
            let k = lid * 16u + j;
            if (scan_f[k] != 0u) {
                v = scan_v[k];
                f = 1u;
            } else {
                v = v + scan_v[k];
            }
            scan_v[k] = v;
            scan_f[k] = f;
        }
        rake_v[lid] = v;
        rake_f[lid] = f;
    }
    workgroupBarrier();
    if (lid == 0u) {
        var v = 0.0;
        for (var j = 0u; j < 16u; j++) {
            let total = rake_v[j];
            rake_carry[j] = v;
            if (rake_f[j] != 0u) {
                v = total;
            } else {
                v = v + total;
            }
        }
    }
    workgroupBarrier();
    if (lid < 16u && lid > 0u) {
        let c = rake_carry[lid];
        for (var j = 0u; j < 16u; j++) {
            let k = lid * 16u + j;
            if (scan_f[k] != 0u) {
                break;
            }
            scan_v[k] = c + scan_v[k];
        }
    }
    workgroupBarrier();
    var carry = 0.0;
    if (lid > 0u) {
        carry = scan_v[lid - 1u];
    }

    // Second walk over the registers: running sums with the carry; write each segment end.
    run = carry;
    prev = before;
    for (var e = 0u; e < PER_THREAD; e++) {
        let pos = first + e;
        let g = gs[e];
        if (g == NONE) {
            break;
        }
        if (g != prev || (lid == 0u && e == 0u)) {
            run = 0.0;
        }
        run += vals[e];
        prev = g;
        var next = NONE;
        if (e + 1u < PER_THREAD) {
            next = gs[e + 1u];
        } else if (lid + 1u < 256u) {
            next = group_at(pos + 1u);
        }
        if (next != g) {
            var val = run;
            let lo = offsets[g];
            let hi = offsets[g + 1u];
            if (lo >= base && hi <= base + CHUNK) {
                if (p.mean != 0u) {
                    val = val / f32(hi - lo);
                }
                out[g] = val;
            } else {
                if (hi > pos + 1u) {
                    partials[2u * wid + 1u] = val;
                }
                if (lo < base) {
                    partials[2u * wid] = val;
                }
            }
        }
    }
}
