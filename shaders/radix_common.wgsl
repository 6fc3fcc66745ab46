// LSD radix sort of f32 keys with u32 payloads: 8 passes of 4-bit digits. Shared part of the
// multi-pass kernels (radix_sort.wgsl) and the one-workgroup sort of small inputs
// (radix_small.wgsl).
//
// Stable (a key's rank among equal digits follows its position), so equal keys keep their
// input order and the permutation is deterministic. Keys are ordered like f32::total_cmp: the
// bits are mapped to an unsigned order (negatives: all bits flipped; others: sign bit set), so
// -NaN < -inf < ... < -0 < +0 < ... < +inf < +NaN. Pass 0 maps the raw f32 bits; the last pass
// maps them back. Descending order sorts the complemented mapping (equal keys keep their input
// order).
//
// Ranks come from 16 digit counters of 16 bits per thread, packed two per u32 (digits 0-7 in
// `lo`: component c holds digits 2c and 2c + 1; digits 8-15 in `hi`), scanned across the 256
// threads with a raking scan: no atomics, 3 barriers per tile of 4096 keys (16 per thread).

const DIGITS: u32 = 16u;
// Keys per thread in a tile, consecutive, so ranks follow positions (stable). A workgroup
// owns SORT_BLOCK = 4096 keys (from the host): one tile of WORKGROUP_SIZE threads.
const PER_THREAD: u32 = SORT_BLOCK / WORKGROUP_SIZE;

@group(0) @binding(0) var<uniform> p: SortParams;

// The threads' packed counters, then (from RAKE) the 16 rakers' totals.
const RAKE: u32 = WORKGROUP_SIZE;
var<workgroup> packed_lo: array<vec4<u32>, RAKE + 16u>;
var<workgroup> packed_hi: array<vec4<u32>, RAKE + 16u>;
var<workgroup> running: array<u32, 16>;
var<workgroup> tile_lo: vec4<u32>;
var<workgroup> tile_hi: vec4<u32>;

// The keys a thread holds in a tile (PER_THREAD consecutive ones), their payloads and digits.
struct Held {
    keys: array<u32, PER_THREAD>,
    vals: array<u32, PER_THREAD>,
    digits: array<u32, PER_THREAD>,
}

fn ordered(bits: u32, first: bool) -> u32 {
    var k = bits;
    if (first) {
        if ((k & 0x80000000u) != 0u) {
            k = ~k;
        } else {
            k = k | 0x80000000u;
        }
        if (p.descending != 0u) {
            k = ~k;
        }
    }
    return k;
}

fn unordered(k: u32, last: bool) -> u32 {
    var u = k;
    if (last) {
        if (p.descending != 0u) {
            u = ~u;
        }
        if ((u & 0x80000000u) != 0u) {
            u = u & 0x7fffffffu;
        } else {
            u = ~u;
        }
    }
    return u;
}

// The packed one-hot counter of digit d.
fn one_hot(d: u32) -> vec4<u32> {
    return select(
        vec4<u32>(0u),
        vec4<u32>(1u << ((d % 2u) * 16u)),
        vec4<u32>(0u, 1u, 2u, 3u) == vec4<u32>((d % 8u) / 2u),
    );
}

// The 16-bit counter of digit d in a packed (lo, hi) pair.
fn counter(lo: vec4<u32>, hi: vec4<u32>, d: u32) -> u32 {
    var word = lo[(d % 8u) / 2u];
    if (d >= 8u) {
        word = hi[(d % 8u) / 2u];
    }
    return (word >> ((d % 2u) * 16u)) & 0xffffu;
}

// Adds digit d to a packed pair.
fn count_digit(pair: ptr<function, array<vec4<u32>, 2>>, d: u32) {
    if (d < 8u) {
        (*pair)[0] += one_hot(d);
    } else {
        (*pair)[1] += one_hot(d);
    }
}

// Exclusive scan, in place, of the packed counters first .. first + steps; returns their
// total.
fn rake(first: u32, steps: u32) -> array<vec4<u32>, 2> {
    var run_lo = vec4<u32>(0u);
    var run_hi = vec4<u32>(0u);
    for (var j = 0u; j < steps; j++) {
        let k = first + j;
        let vl = packed_lo[k];
        let vh = packed_hi[k];
        packed_lo[k] = run_lo;
        packed_hi[k] = run_hi;
        run_lo += vl;
        run_hi += vh;
    }
    return array<vec4<u32>, 2>(run_lo, run_hi);
}

// Exclusive scan of the 256 threads' packed counters: returns this thread's prefix; the
// tile's totals are left in tile_lo / tile_hi. Contains barriers: call from uniform control
// flow.
fn scan_packed(lid: u32, mine: array<vec4<u32>, 2>) -> array<vec4<u32>, 2> {
    packed_lo[lid] = mine[0];
    packed_hi[lid] = mine[1];
    workgroupBarrier();
    // Threads 0-15 rake 16 counters each, then thread 0 scans the rakers' totals; the thread
    // tests are loop bounds, not branches (see scan.wgsl).
    let raked = rake(lid * 16u, select(0u, 16u, lid < 16u));
    if (lid < 16u) {
        packed_lo[RAKE + lid] = raked[0];
        packed_hi[RAKE + lid] = raked[1];
    }
    workgroupBarrier();
    let total = rake(RAKE, select(0u, 16u, lid == 0u));
    if (lid == 0u) {
        tile_lo = total[0];
        tile_hi = total[1];
    }
    workgroupBarrier();
    let r = RAKE + lid / 16u;
    return array<vec4<u32>, 2>(packed_lo[lid] + packed_lo[r], packed_hi[lid] + packed_hi[r]);
}
