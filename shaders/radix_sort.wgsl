// LSD radix sort of f32 keys with u32 payloads: 8 passes of 4-bit digits, each a
// reduce-then-scan (no spin-waiting): `histogram` counts digits per workgroup, scan.wgsl turns
// the [digit][workgroup] counts into scatter offsets, `scatter` moves keys and payloads.
// Stable (a key's rank among equal digits follows its position), so equal keys keep their
// input order and the permutation is deterministic.
//
// Keys are ordered like f32::total_cmp: the bits are mapped to an unsigned order (negatives:
// all bits flipped; others: sign bit set), so -NaN < -inf < ... < -0 < +0 < ... < +inf < +NaN.
// Pass 0 reads raw f32 bits and maps them; the last pass maps them back. Descending order sorts
// the complemented mapping (still stable: equal keys keep their input order).
//
// Workgroup w owns elements [w * 4096, (w + 1) * 4096); every loop is bounded by the tile
// count.

struct SortParams {
    len: u32,
    shift: u32,
    first_pass: u32,
    last_pass: u32,
    descending: u32,
    workgroups: u32,
    fold_x: u32,
    with_values: u32,
}

const TILE: u32 = 256u;
const TILES: u32 = 16u;
const DIGITS: u32 = 16u;
const SCATTER_TILE: u32 = 1024u;
const SCATTER_TILES: u32 = 4u;

@group(0) @binding(0) var<uniform> p: SortParams;
@group(0) @binding(1) var<storage, read> keys_in: array<u32>;
@group(0) @binding(2) var<storage, read> vals_in: array<u32>;
@group(0) @binding(3) var<storage, read_write> offsets: array<u32>;
@group(0) @binding(4) var<storage, read_write> keys_out: array<u32>;
@group(0) @binding(5) var<storage, read_write> vals_out: array<u32>;

// Per thread: 16 digit counters of 16 bits, packed two per u32: digits 0-7 in `lo`
// (component c holds digits 2c and 2c + 1), digits 8-15 in `hi`.
var<workgroup> packed_lo: array<vec4<u32>, 256>;
var<workgroup> packed_hi: array<vec4<u32>, 256>;
var<workgroup> rake_lo: array<vec4<u32>, 16>;
var<workgroup> rake_hi: array<vec4<u32>, 16>;
var<workgroup> running: array<u32, 16>;
var<workgroup> tile_lo: vec4<u32>;
var<workgroup> tile_hi: vec4<u32>;

fn ordered(bits: u32) -> u32 {
    var k = bits;
    if (p.first_pass != 0u) {
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

fn unordered(k: u32) -> u32 {
    var u = k;
    if (p.last_pass != 0u) {
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

fn digit_of(k: u32) -> u32 {
    return (k >> p.shift) & 15u;
}

// The packed one-hot counter of digit d (see `packed_lo`).
fn one_hot(d: u32) -> vec4<u32> {
    return select(
        vec4<u32>(0u),
        vec4<u32>(1u << ((d % 2u) * 16u)),
        vec4<u32>(0u, 1u, 2u, 3u) == vec4<u32>((d % 8u) / 2u),
    );
}

@compute @workgroup_size(256)
fn histogram(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let wid = wg.x + wg.y * p.fold_x;
    if (wid >= p.workgroups) {
        return;
    }
    // Each thread counts its 16 keys in packed 16-bit counters (no atomics), then a fixed
    // two-level reduction adds the 256 threads' counters.
    var lo = vec4<u32>(0u);
    var hi = vec4<u32>(0u);
    for (var t = 0u; t < TILES; t++) {
        let i = (wid * TILES + t) * TILE + lid;
        if (i < p.len) {
            let d = digit_of(ordered(keys_in[i]));
            if (d < 8u) {
                lo += one_hot(d);
            } else {
                hi += one_hot(d);
            }
        }
    }
    packed_lo[lid] = lo;
    packed_hi[lid] = hi;
    workgroupBarrier();
    if (lid < 16u) {
        var sum_lo = vec4<u32>(0u);
        var sum_hi = vec4<u32>(0u);
        for (var j = 0u; j < 16u; j++) {
            sum_lo += packed_lo[lid * 16u + j];
            sum_hi += packed_hi[lid * 16u + j];
        }
        rake_lo[lid] = sum_lo;
        rake_hi[lid] = sum_hi;
    }
    workgroupBarrier();
    if (lid < DIGITS) {
        var sum_lo = vec4<u32>(0u);
        var sum_hi = vec4<u32>(0u);
        for (var j = 0u; j < 16u; j++) {
            sum_lo += rake_lo[j];
            sum_hi += rake_hi[j];
        }
        offsets[lid * p.workgroups + wid] = counter(sum_lo, sum_hi, lid);
    }
}

// The 16-bit counter of digit d in a packed (lo, hi) pair.
fn counter(lo: vec4<u32>, hi: vec4<u32>, d: u32) -> u32 {
    var word = lo[(d % 8u) / 2u];
    if (d >= 8u) {
        word = hi[(d % 8u) / 2u];
    }
    return (word >> ((d % 2u) * 16u)) & 0xffffu;
}

@compute @workgroup_size(256)
fn scatter(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let wid = wg.x + wg.y * p.fold_x;
    if (wid >= p.workgroups) {
        return;
    }
    if (lid < DIGITS) {
        running[lid] = offsets[lid * p.workgroups + wid];
    }
    // 4 tiles of 1024 keys; each thread holds 4 consecutive keys of a tile, so ranks follow
    // positions (stable) and a tile costs 5 barriers.
    for (var t = 0u; t < SCATTER_TILES; t++) {
        let first = (wid * SCATTER_TILES + t) * SCATTER_TILE + lid * 4u;
        var keys = vec4<u32>(0u);
        var vals = vec4<u32>(0u);
        var digits = vec4<u32>(0u);
        var lo = vec4<u32>(0u);
        var hi = vec4<u32>(0u);
        for (var e = 0u; e < 4u; e++) {
            let i = first + e;
            if (i < p.len) {
                keys[e] = ordered(keys_in[i]);
                if (p.with_values != 0u) {
                    vals[e] = vals_in[i];
                }
                let d = digit_of(keys[e]);
                digits[e] = d;
                if (d < 8u) {
                    lo += one_hot(d);
                } else {
                    hi += one_hot(d);
                }
            }
        }
        packed_lo[lid] = lo;
        packed_hi[lid] = hi;
        workgroupBarrier();
        // Raking exclusive scan of the packed counters over the 256 threads.
        if (lid < 16u) {
            var run_lo = vec4<u32>(0u);
            var run_hi = vec4<u32>(0u);
            for (var j = 0u; j < 16u; j++) {
                let k = lid * 16u + j;
                let vl = packed_lo[k];
                let vh = packed_hi[k];
                packed_lo[k] = run_lo;
                packed_hi[k] = run_hi;
                run_lo += vl;
                run_hi += vh;
            }
            rake_lo[lid] = run_lo;
            rake_hi[lid] = run_hi;
        }
        workgroupBarrier();
        if (lid == 0u) {
            var run_lo = vec4<u32>(0u);
            var run_hi = vec4<u32>(0u);
            for (var j = 0u; j < 16u; j++) {
                let vl = rake_lo[j];
                let vh = rake_hi[j];
                rake_lo[j] = run_lo;
                rake_hi[j] = run_hi;
                run_lo += vl;
                run_hi += vh;
            }
            tile_lo = run_lo;
            tile_hi = run_hi;
        }
        workgroupBarrier();
        var before_lo = packed_lo[lid] + rake_lo[lid / 16u];
        var before_hi = packed_hi[lid] + rake_hi[lid / 16u];
        for (var e = 0u; e < 4u; e++) {
            if (first + e < p.len) {
                let d = digits[e];
                let dst = running[d] + counter(before_lo, before_hi, d);
                keys_out[dst] = unordered(keys[e]);
                if (p.with_values != 0u) {
                    vals_out[dst] = vals[e];
                }
                if (d < 8u) {
                    before_lo += one_hot(d);
                } else {
                    before_hi += one_hot(d);
                }
            }
        }
        workgroupBarrier();
        if (lid < DIGITS) {
            running[lid] += counter(tile_lo, tile_hi, lid);
        }
        workgroupBarrier();
    }
}
