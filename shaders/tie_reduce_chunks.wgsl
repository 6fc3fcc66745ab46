// Tied groups, scalar granularity, pass 1: segmented reduction of equal-size chunks.
//
// The plan lists the tied parameters grouped by group (a stable counting sort on the host):
// position `pos` holds parameter perm[pos] of group member_group[pos]; group g occupies
// positions offsets[g] .. offsets[g + 1]. Workgroup w reduces positions
// [w * CHUNK, (w + 1) * CHUNK), whatever the group sizes, so one giant group and millions of
// singletons balance alike.
//
// Each thread walks PER_THREAD consecutive positions once, summing in order and restarting at
// group starts. A segment that starts and ends inside the thread is complete: it is written
// at once. The thread's first segment may continue from earlier threads (its "head"), and its
// last may continue into later ones: a segmented raking scan over the 256 threads' trailing
// sums gives each thread the carry to add to its head. The order of every addition depends
// only on the plan, never on scheduling. A group crossing the chunk's edges leaves its partial
// in partials[2w] (the chunk's first segment) or partials[2w + 1] (its last), which
// tie_reduce_spans.wgsl adds in a fixed order.
//
// IDENTITY (pipeline constant): the permutation is the identity, so `perm` is not read.

struct ReduceParams {
    members: u32,
    chunks: u32,
    fold_x: u32,
    total_wg: u32,
    mean: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

override IDENTITY: bool = false;

const PER_THREAD: u32 = 32u;
const CHUNK: u32 = 8192u; // 256 * PER_THREAD
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

fn value_at(pos: u32) -> f32 {
    if (IDENTITY) {
        return src[pos];
    }
    return src[perm[pos]];
}

fn finish(total: f32, size: u32) -> f32 {
    if (p.mean != 0u) {
        return total / f32(size);
    }
    return total;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let wid = wg.x + wg.y * p.fold_x;
    if (wid >= p.total_wg) {
        return;
    }
    let base = wid * CHUNK;
    let first = base + lid * PER_THREAD;

    // One walk: `run` sums the current segment; `fresh` says it started in this thread.
    var prev = NONE;
    if (first > 0u) {
        prev = group_at(first - 1u);
    }
    var g = group_at(first);
    var run = 0.0;
    var count = 0u;
    var fresh = false;
    var any_fresh = false;
    var head = 0.0;
    var head_group = NONE;
    var open = false;
    for (var e = 0u; e < PER_THREAD; e++) {
        if (g == NONE) {
            break;
        }
        let pos = first + e;
        if (g != prev) {
            run = 0.0;
            count = 0u;
            fresh = true;
            any_fresh = true;
        }
        run += value_at(pos);
        count += 1u;
        let next = group_at(pos + 1u);
        open = next == g;
        if (!open) {
            if (fresh) {
                out[g] = finish(run, count);
            } else {
                head = run;
                head_group = g;
            }
        }
        prev = g;
        g = next;
    }

    // Segmented inclusive scan of the trailing sums over the 256 threads, raking (4
    // barriers): 16 rakers scan 16 entries each, one thread scans the 16 raker totals, the
    // rakers add the carries. (f1, v1) + (f2, v2) = (f1 | f2, f2 ? v2 : v1 + v2).
    scan_v[lid] = select(0.0, run, open);
    scan_f[lid] = select(0u, 1u, any_fresh || lid == 0u || !open);
    workgroupBarrier();
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

    // The head segment closed inside this thread: add the carry; it is complete unless the
    // group started before the chunk.
    if (head_group != NONE) {
        let total = carry + head;
        let lo = offsets[head_group];
        if (lo >= base) {
            out[head_group] = finish(total, offsets[head_group + 1u] - lo);
        } else {
            partials[2u * wid] = total;
        }
    }
    // The chunk's last segment continues past the chunk: its partial, which is also the
    // chunk's first segment when the group spans the whole chunk.
    if (lid == 255u && open) {
        let total = scan_v[255];
        partials[2u * wid + 1u] = total;
        if (offsets[prev] < base) {
            partials[2u * wid] = total;
        }
    }
}
