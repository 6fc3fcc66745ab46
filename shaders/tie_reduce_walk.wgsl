// Tied groups, scalar granularity: the segmented reduction, level by level, with no barriers,
// no workgroup memory and no atomics. Shared part of tie_reduce_first.wgsl (level 1: the
// members) and tie_reduce_upper.wgsl (later levels: the partial sums of the level below).
//
// A level's input is a sequence of (value, group) entries sorted by group. Each thread walks
// ENTRIES consecutive entries once, in order, summing runs of equal groups ("segments"):
// - a segment that closes inside the thread after an earlier one closed there is a whole
//   group (the sequence is sorted, so nothing of the group lies elsewhere): it is final and
//   written to `out` at once;
// - the thread's first segment (its "head") and its last one (its "tail") may continue in
//   the neighbouring threads: the thread emits both as two entries, (head, tail) =
//   pairs_out[t], for the next level, which sees every group that is not yet final, still in
//   sorted order, ENTRIES / 2 times fewer threads. A thread with one segment emits it as the
//   head and an empty tail (-0.0, the exact additive identity) of the same group.
// The last level has one thread: every segment it sees is final. The order of every addition
// depends only on the plan: bitwise identical results on every run.

struct LevelParams {
    len: u32,       // level 1: members; above: (head, tail) pairs of the level below
    threads: u32,
    top: u32,       // 1 on the last level: every segment is final
    mean: u32,
    fold_x: u32,
    total_wg: u32,
    _pad0: u32,
    _pad1: u32,
}

const NONE: u32 = 0xffffffffu;
const NEG_ZERO: u32 = 0x80000000u;
// Entries each thread walks.
const ENTRIES: u32 = 32u;

@group(0) @binding(0) var<uniform> p: LevelParams;
// offsets[g] .. offsets[g + 1]: group g's members (for means).
@group(0) @binding(1) var<storage, read> offsets: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
// Per thread: (head sum bits, head group, tail sum bits, tail group).
@group(0) @binding(3) var<storage, read_write> pairs_out: array<vec4<u32>>;

struct Walk {
    group: u32,  // the open segment's group (NONE before the first entry)
    run: f32,    // the open segment's sum
    closed: u32, // segments closed so far
    head_group: u32,
    head: f32,
}

fn new_walk() -> Walk {
    return Walk(NONE, 0.0, 0u, NONE, 0.0);
}

fn thread_index(wg: vec3<u32>, lid: u32) -> u32 {
    return (wg.x + wg.y * p.fold_x) * 256u + lid;
}

fn finish(g: u32, total: f32) -> f32 {
    if (p.mean != 0u) {
        return total / f32(offsets[g + 1u] - offsets[g]);
    }
    return total;
}

// Adds entry (v, g). Selects rather than branches: software drivers run both sides of a
// branch whenever any lane takes it; the one store is the only conditional work.
fn step(w: ptr<function, Walk>, v: f32, g: u32) {
    let change = g != (*w).group;
    let close = change && (*w).group != NONE;
    let to_head = close && (*w).closed == 0u && p.top == 0u;
    if (close && !to_head) {
        out[(*w).group] = finish((*w).group, (*w).run);
    }
    (*w).head_group = select((*w).head_group, (*w).group, to_head);
    (*w).head = select((*w).head, (*w).run, to_head);
    (*w).closed += select(0u, 1u, close);
    (*w).run = select((*w).run, bitcast<f32>(NEG_ZERO), change) + v;
    (*w).group = g;
}

// Adds four entries: at once when they continue the open segment (the same additions, in
// the same order, as four steps).
fn step4(w: ptr<function, Walk>, v: vec4<f32>, g: vec4<u32>) {
    if (all(g == vec4<u32>((*w).group))) {
        (*w).run = (((*w).run + v.x) + v.y) + v.z + v.w;
    } else {
        step(w, v.x, g.x);
        step(w, v.y, g.y);
        step(w, v.z, g.z);
        step(w, v.w, g.w);
    }
}

// After the thread's last entry: the open segment is final on the last level, else the
// thread's tail (and head, when it is the only segment).
fn end_walk(w: Walk, t: u32) {
    if (p.top != 0u) {
        // (No group when nothing is tied: the empty-groups pass writes every group.)
        if (w.group != NONE) {
            out[w.group] = finish(w.group, w.run);
        }
        return;
    }
    if (w.closed == 0u) {
        pairs_out[t] = vec4<u32>(bitcast<u32>(w.run), w.group, NEG_ZERO, w.group);
    } else {
        pairs_out[t] = vec4<u32>(bitcast<u32>(w.head), w.head_group, bitcast<u32>(w.run), w.group);
    }
}
