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
// Workgroup w owns elements [w * 4096, (w + 1) * 4096) in 16 tiles of 256; every loop is
// bounded by the tile count.

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

@group(0) @binding(0) var<uniform> p: SortParams;
@group(0) @binding(1) var<storage, read> keys_in: array<u32>;
@group(0) @binding(2) var<storage, read> vals_in: array<u32>;
@group(0) @binding(3) var<storage, read_write> offsets: array<u32>;
@group(0) @binding(4) var<storage, read_write> keys_out: array<u32>;
@group(0) @binding(5) var<storage, read_write> vals_out: array<u32>;

var<workgroup> counts: array<atomic<u32>, 16>;
// Per thread: 16 digit counters of 16 bits packed in 8 words.
var<workgroup> packed: array<array<u32, 8>, 256>;
var<workgroup> rake: array<array<u32, 8>, 16>;
var<workgroup> running: array<u32, 16>;
var<workgroup> tile_totals: array<u32, 8>;

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

@compute @workgroup_size(256)
fn histogram(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let wid = wg.x + wg.y * p.fold_x;
    if (wid >= p.workgroups) {
        return;
    }
    if (lid < DIGITS) {
        atomicStore(&counts[lid], 0u);
    }
    workgroupBarrier();
    for (var t = 0u; t < TILES; t++) {
        let i = (wid * TILES + t) * TILE + lid;
        if (i < p.len) {
            atomicAdd(&counts[digit_of(ordered(keys_in[i]))], 1u);
        }
    }
    workgroupBarrier();
    if (lid < DIGITS) {
        offsets[lid * p.workgroups + wid] = atomicLoad(&counts[lid]);
    }
}

fn add8(a: array<u32, 8>, b: array<u32, 8>) -> array<u32, 8> {
    var r: array<u32, 8>;
    for (var j = 0u; j < 8u; j++) {
        r[j] = a[j] + b[j];
    }
    return r;
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
    for (var t = 0u; t < TILES; t++) {
        let i = (wid * TILES + t) * TILE + lid;
        let valid = i < p.len;
        var key = 0u;
        var val = 0u;
        var d = 0u;
        var mine: array<u32, 8>;
        if (valid) {
            key = ordered(keys_in[i]);
            if (p.with_values != 0u) {
                val = vals_in[i];
            }
            d = digit_of(key);
            mine[d / 2u] = 1u << ((d % 2u) * 16u);
        }
        packed[lid] = mine;
        workgroupBarrier();
        // Raking exclusive scan of the packed counters over the tile's 256 threads.
        if (lid < 16u) {
            var run: array<u32, 8>;
            for (var j = 0u; j < 16u; j++) {
                let v = packed[lid * 16u + j];
                packed[lid * 16u + j] = run;
                run = add8(run, v);
            }
            rake[lid] = run;
        }
        workgroupBarrier();
        if (lid == 0u) {
            var run: array<u32, 8>;
            for (var j = 0u; j < 16u; j++) {
                let v = rake[j];
                rake[j] = run;
                run = add8(run, v);
            }
            tile_totals = run;
        }
        workgroupBarrier();
        if (valid) {
            let before = add8(packed[lid], rake[lid / 16u]);
            let rank = (before[d / 2u] >> ((d % 2u) * 16u)) & 0xffffu;
            let dst = running[d] + rank;
            keys_out[dst] = unordered(key);
            if (p.with_values != 0u) {
                vals_out[dst] = val;
            }
        }
        workgroupBarrier();
        if (lid < DIGITS) {
            running[lid] += (tile_totals[lid / 2u] >> ((lid % 2u) * 16u)) & 0xffffu;
        }
        workgroupBarrier();
    }
}
