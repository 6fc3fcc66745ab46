// One-workgroup radix sort of at most 4096 keys (see radix_common.wgsl): all 8 passes in one
// dispatch, ping-ponging between the caller's buffers and scratch with storage barriers.
// The multi-pass path needs 3 dispatches per pass; small sorts (GrOWL norms of a few hundred
// groups, say) are all overhead there.

@group(0) @binding(1) var<storage, read_write> keys_a: array<u32>;
@group(0) @binding(2) var<storage, read_write> vals_a: array<u32>;
@group(0) @binding(3) var<storage, read_write> keys_b: array<u32>;
@group(0) @binding(4) var<storage, read_write> vals_b: array<u32>;

fn load_key(pass_: u32, i: u32) -> u32 {
    if (pass_ % 2u == 0u) {
        return ordered(keys_a[i], pass_ == 0u);
    }
    return keys_b[i];
}

fn load_val(pass_: u32, i: u32) -> u32 {
    if (p.with_values == 0u) {
        return 0u;
    }
    if (pass_ % 2u == 0u) {
        return vals_a[i];
    }
    return vals_b[i];
}

fn store(pass_: u32, i: u32, key: u32, val: u32) {
    if (pass_ % 2u == 0u) {
        keys_b[i] = key;
        if (p.with_values != 0u) {
            vals_b[i] = val;
        }
    } else {
        keys_a[i] = unordered(key, pass_ == 7u);
        if (p.with_values != 0u) {
            vals_a[i] = val;
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn sort_small(@builtin(local_invocation_index) lid: u32) {
    for (var pass_ = 0u; pass_ < 8u; pass_++) {
        let shift = pass_ * 4u;
        // Each thread holds PER_THREAD consecutive keys (ranks follow positions: stable);
        // one scan gives each thread its prefix and the digit totals (tile_lo / tile_hi).
        let first = lid * PER_THREAD;
        var held: Held;
        var mine = array<vec4<u32>, 2>(vec4<u32>(0u), vec4<u32>(0u));
        for (var e = 0u; e < PER_THREAD; e++) {
            let i = first + e;
            if (i < p.len) {
                held.keys[e] = load_key(pass_, i);
                held.vals[e] = load_val(pass_, i);
                held.digits[e] = (held.keys[e] >> shift) & 15u;
                count_digit(&mine, held.digits[e]);
            }
        }
        var before = scan_packed(lid, mine);
        // Thread 0 only; a loop bound, not a branch (see scan.wgsl).
        var acc = 0u;
        for (var d = 0u; d < select(0u, DIGITS, lid == 0u); d++) {
            running[d] = acc;
            acc += counter(tile_lo, tile_hi, d);
        }
        workgroupBarrier();
        for (var e = 0u; e < PER_THREAD; e++) {
            if (first + e < p.len) {
                let d = held.digits[e];
                store(pass_, running[d] + counter(before[0], before[1], d), held.keys[e], held.vals[e]);
                count_digit(&before, d);
            }
        }
        storageBarrier();
        workgroupBarrier();
    }
}
