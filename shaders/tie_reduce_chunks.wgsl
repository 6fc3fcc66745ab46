// Tied groups, scalar granularity, pass 1: segmented reduction of equal-size chunks.
//
// The plan lists the tied parameters grouped by group (a stable counting sort on the host):
// position `pos` holds parameter perm[pos] of group member_group[pos]; group g occupies
// positions offsets[g] .. offsets[g + 1]. Workgroup w reduces positions
// [w * CHUNK, (w + 1) * CHUNK), whatever the group sizes, so one giant group and millions of
// singletons balance alike. Inside the chunk: each thread scans its 4 consecutive positions,
// then a segmented Hillis-Steele scan over the 256 threads (fixed shape: the summation order
// depends only on the plan, never on scheduling). A group entirely inside the chunk is
// written to out[g]; a group crossing the chunk's edges leaves its partial in
// partials[2w] (the chunk's first segment) or partials[2w + 1] (its last), which
// tie_reduce_spans.wgsl adds in a fixed order.

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

const CHUNK: u32 = 1024u;
const PER_THREAD: u32 = 4u;

@group(0) @binding(0) var<uniform> p: ReduceParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> perm: array<u32>;
@group(0) @binding(3) var<storage, read> member_group: array<u32>;
@group(0) @binding(4) var<storage, read> offsets: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> partials: array<f32>;

var<workgroup> vals: array<f32, 1024>;
var<workgroup> segs: array<u32, 1024>;
var<workgroup> scan_v: array<f32, 256>;
var<workgroup> scan_f: array<u32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let wid = wg.x + wg.y * p.fold_x;
    if (wid >= p.total_wg) {
        return;
    }
    let base = wid * CHUNK;
    // Stage the chunk, coalesced.
    for (var r = 0u; r < PER_THREAD; r++) {
        let i = r * 256u + lid;
        let pos = base + i;
        var v = 0.0;
        var s = 0xffffffffu;
        if (pos < p.members) {
            if (p.identity != 0u) {
                v = src[pos];
            } else {
                v = src[perm[pos]];
            }
            s = member_group[pos];
        }
        vals[i] = v;
        segs[i] = s;
    }
    workgroupBarrier();

    // Thread-local segmented scan of 4 consecutive positions.
    let i0 = lid * PER_THREAD;
    var local: array<f32, 4>;
    var seen_start = array<bool, 4>(false, false, false, false);
    var run = 0.0;
    var any_start = false;
    for (var e = 0u; e < PER_THREAD; e++) {
        let i = i0 + e;
        if (i == 0u || segs[i] != segs[i - 1u]) {
            run = 0.0;
            any_start = true;
        }
        run += vals[i];
        local[e] = run;
        seen_start[e] = any_start;
    }
    scan_v[lid] = run;
    scan_f[lid] = select(0u, 1u, any_start);
    workgroupBarrier();

    // Segmented inclusive scan over threads: (f1, v1) + (f2, v2) = (f1 | f2, f2 ? v2 : v1 + v2).
    for (var off = 1u; off < 256u; off = off * 2u) {
        var f = scan_f[lid];
        var v = scan_v[lid];
        if (lid >= off) {
            if (f == 0u) {
                v = scan_v[lid - off] + v;
            }
            f = f | scan_f[lid - off];
        }
        workgroupBarrier();
        scan_v[lid] = v;
        scan_f[lid] = f;
        workgroupBarrier();
    }
    var carry = 0.0;
    if (lid > 0u) {
        carry = scan_v[lid - 1u];
    }

    for (var e = 0u; e < PER_THREAD; e++) {
        let i = i0 + e;
        let pos = base + i;
        if (pos >= p.members) {
            break;
        }
        var val = local[e];
        if (!seen_start[e]) {
            val = carry + val;
        }
        let last = i + 1u == CHUNK || pos + 1u >= p.members;
        if (last || segs[i + 1u] != segs[i]) {
            let g = segs[i];
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
