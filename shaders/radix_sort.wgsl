// Multi-pass radix sort (see radix_common.wgsl), one pass of 4-bit digits per dispatch triple:
// `histogram` counts digits per workgroup of 4096 keys, scan.wgsl turns the [digit][workgroup]
// counts into scatter offsets, `scatter` moves keys and payloads. Reduce-then-scan: no
// spin-waiting, so no forward-progress assumption.
//
// Keys past one storage binding are cut into windows of whole workgroup blocks: `histogram`
// runs once per input window, `scatter` once per (input window, output window) pair and writes
// only the keys whose destination falls in its output window. With one window (every tensor
// that fits a binding) that is one dispatch each, as before.

@group(0) @binding(1) var<storage, read> keys_in: array<u32>;
@group(0) @binding(2) var<storage, read> vals_in: array<u32>;
@group(0) @binding(3) var<storage, read_write> offsets: array<u32>;
@group(0) @binding(4) var<storage, read_write> keys_out: array<u32>;
@group(0) @binding(5) var<storage, read_write> vals_out: array<u32>;
@group(0) @binding(6) var<uniform> win: SortWindow;

fn digit_of(k: u32) -> u32 {
    return (k >> p.shift) & 15u;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn histogram(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    // `local` counts workgroups within the window, `wid` within the whole sort.
    let local = linear_workgroup(wg, p.fold_x);
    if (local >= win.in_workgroups) { return; }
    let wid = win.in_first_wg + local;
    // Keys of this window still in the sort.
    let valid = p.len - win.in_first_wg * SORT_BLOCK;
    // Each thread counts its 16 keys in packed counters, then one scan adds them up.
    var mine = array<vec4<u32>, 2>(vec4<u32>(0u), vec4<u32>(0u));
    for (var t = 0u; t < PER_THREAD; t++) {
        let i = local * SORT_BLOCK + t * WORKGROUP_SIZE + lid;
        if (i < valid) {
            count_digit(&mine, digit_of(ordered(keys_in[i], p.first_pass != 0u)));
        }
    }
    scan_packed(lid, mine);
    if (lid < DIGITS) {
        offsets[lid * p.workgroups + wid] = counter(tile_lo, tile_hi, lid);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn scatter(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let local = linear_workgroup(wg, p.fold_x);
    if (local >= win.in_workgroups) { return; }
    let wid = win.in_first_wg + local;
    let valid = p.len - win.in_first_wg * SORT_BLOCK;
    if (lid < DIGITS) {
        running[lid] = offsets[lid * p.workgroups + wid];
    }
    let first_pass = p.first_pass != 0u;
    let last_pass = p.last_pass != 0u;
    // Each thread holds PER_THREAD consecutive keys, so ranks follow positions (stable).
    let first = local * SORT_BLOCK + lid * PER_THREAD;
    var held: Held;
    var mine = array<vec4<u32>, 2>(vec4<u32>(0u), vec4<u32>(0u));
    for (var e = 0u; e < PER_THREAD; e++) {
        let i = first + e;
        if (i < valid) {
            held.keys[e] = ordered(keys_in[i], first_pass);
            if (p.with_values != 0u) {
                held.vals[e] = vals_in[i];
            }
            held.digits[e] = digit_of(held.keys[e]);
            count_digit(&mine, held.digits[e]);
        }
    }
    var before = scan_packed(lid, mine);
    for (var e = 0u; e < PER_THREAD; e++) {
        if (first + e < valid) {
            let d = held.digits[e];
            // Wraps below the window's start, so one comparison tests both ends.
            let dst = running[d] + counter(before[0], before[1], d) - win.out_first;
            if (dst < win.out_len) {
                keys_out[dst] = unordered(held.keys[e], last_pass);
                if (p.with_values != 0u) {
                    vals_out[dst] = held.vals[e];
                }
            }
            count_digit(&before, d);
        }
    }
}
