// Common part of the OWL prox stages (each stage is this file followed by one owl_*.wgsl).
//
// The OWL prox on the GPU, around the radix sort:
//   owl_prepare   keys = |v|, payload = index                       (then: sort descending)
//   owl_make_z    z_k = sorted_k - w_k in block-scaled fixed point, stored at n - 1 - k
//   owl_scan      inclusive scan of the reversed z: the suffix sums T_k = z_k + ... + z_{n-1}
//   owl_leaf      upper hull of the points P_k = (k, -T_k), T_n = 0, per chunk of CHUNK points
//   owl_compact   packs the chunk hulls (after a u32 scan of their sizes)
//   owl_bridge    per pair of neighbouring hulls, their upper common tangent (nested binary
//                 search: O(log^2) steps, no cascades), and the merged size
//   owl_copy      keeps the left hull up to the bridge and the right hull from it
//   owl_finish    y_k = max(slope of the final hull over (k, k + 1), 0), written to position
//                 payload_k with the sign of v; or the segment index: the PAV block id
//
// The non-increasing isotonic regression of z is the sequence of slopes of the least concave
// majorant of the points (k, S_k), S_k = z_0 + ... + z_{k-1} (their upper hull):
// pool-adjacent-violators computed by merging hulls, so every invocation does bounded work
// whatever the data (at most 3 * CHUNK steps in a leaf hull, O(log^2 n) per bridge), even for
// one block of 1e7 equal values. The points (k, -T_k) are those points shifted down by the
// total, so they have the same hull and the same slopes: (S_b - S_a) / (b - a) =
// (T_a - T_b) / (b - a).
//
// Accuracy: block-scaled fixed point. Position k has its own grid 2^(c_k - 155), a power of
// two set by the f32 exponent code c_k = max(biased exponent of max(sorted_k, w_k), 1), so
// sorted_k and w_k are below 2^29 units of it and z_k is an integer of at most 2^29 units.
// Both sequences are non-increasing, so the grids are too, and a suffix sum T_k only holds
// elements whose grids are at most c_k's: T_k is kept on grid c_k, a 56-bit integer there
// (|T_k| <= n * 2^29 units, n < 2^26). Adding two sums rounds the one on the finer grid to
// the coarser (round half up, integer shifts) and adds exactly: it loses at most half a unit
// of the result's grid, only where two grids differ. Every operation is integer arithmetic
// and the scan's addition tree depends only on n, so the results are the same bits on every
// run and every device; block means are accurate relative to the block's own largest
// magnitude or weight (about 2^-28 of it per rounding on the sums' paths), not to the
// vector's largest. (Float error-free transformations such as two-sum are not safe here: some
// drivers simplify them away as real-number algebra.)
//
// A sum is packed in a vec2<u32>: the low word, then the high 24 bits of the 56-bit two's
// complement mantissa with the grid code in the top 8 bits.

// `CHUNK` (points per leaf hull) and the uniform struct `OwlParams` come from the host.

@group(0) @binding(0) var<uniform> p: OwlParams;

// Two's-complement 64-bit integers as (low word, high word).
fn i64_add(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let lo = a.x + b.x;
    return vec2<u32>(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}

fn i64_neg(a: vec2<u32>) -> vec2<u32> {
    return i64_add(vec2<u32>(~a.x, ~a.y), vec2<u32>(1u, 0u));
}

fn i64_sub(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    return i64_add(a, i64_neg(b));
}

fn i64_from_i32(x: i32) -> vec2<u32> {
    return vec2<u32>(bitcast<u32>(x), select(0u, 0xffffffffu, x < 0));
}

// Nearest-ish f32 of a 64-bit integer (sign and magnitude, so small negatives stay exact).
fn i64_to_f32(a: vec2<u32>) -> f32 {
    if ((a.y & 0x80000000u) != 0u) {
        let m = i64_neg(a);
        return -(f32(m.y) * 4294967296.0 + f32(m.x));
    }
    return f32(a.y) * 4294967296.0 + f32(a.x);
}

// x * 2^k for any k in [-253, 254], in two halves so that no power of two leaves the normal
// range (some backends lower ldexp to x * exp2(k)); a result below the f32 range may flush to 0.
fn scale2(x: f32, k: i32) -> f32 {
    let h = k / 2;
    return ldexp(ldexp(x, h), k - h);
}

// round(a / 2^s) with halves rounded up, for |a| < 2^59 and any s (WGSL masks shift amounts
// to 0..31, so the 64-bit shift is spelled out).
fn i64_shr_round(a: vec2<u32>, s: u32) -> vec2<u32> {
    if (s == 0u) {
        return a;
    }
    if (s >= 60u) {
        return vec2<u32>(0u, 0u);
    }
    var half = vec2<u32>(0u, 1u << (s - 33u));
    if (s <= 32u) {
        half = vec2<u32>(1u << (s - 1u), 0u);
    }
    let r = i64_add(a, half);
    let hi = bitcast<i32>(r.y);
    if (s < 32u) {
        return vec2<u32>((r.x >> s) | (r.y << (32u - s)), bitcast<u32>(hi >> s));
    }
    return vec2<u32>(bitcast<u32>(hi >> (s - 32u)), bitcast<u32>(hi >> 31u));
}

// A block-scaled number: the integer m (i64 as (low, high)) on the grid 2^(code - 155).
struct Scaled {
    m: vec2<u32>,
    code: u32,
}

// The lowest grid code: zero is 0 there, so adding it changes nothing.
const CODE_MIN: u32 = 1u;

fn sc_unpack(a: vec2<u32>) -> Scaled {
    // Sign-extend the 56-bit mantissa.
    return Scaled(vec2<u32>(a.x, bitcast<u32>(bitcast<i32>(a.y << 8u) >> 8u)), a.y >> 24u);
}

fn sc_pack(a: Scaled) -> vec2<u32> {
    return vec2<u32>(a.m.x, (a.m.y & 0x00ffffffu) | (a.code << 24u));
}

// a - b on the coarser of their grids: the finer one rounded to it, then exact.
fn sc_sub(a: Scaled, b: Scaled) -> Scaled {
    let c = max(a.code, b.code);
    return Scaled(i64_sub(i64_shr_round(a.m, c - a.code), i64_shr_round(b.m, c - b.code)), c);
}

// a + b on the coarser of their grids (the scan's addition; packed in and out).
fn sc_add_packed(pa: vec2<u32>, pb: vec2<u32>) -> vec2<u32> {
    let a = sc_unpack(pa);
    let b = sc_unpack(pb);
    let c = max(a.code, b.code);
    let m = i64_add(i64_shr_round(a.m, c - a.code), i64_shr_round(b.m, c - b.code));
    return sc_pack(Scaled(m, c));
}

// The grid code of an element whose magnitude and weight are at most `m` (>= 0).
fn grid_code(m: f32) -> u32 {
    return max((bitcast<u32>(m) >> 23u) & 0xffu, CODE_MIN);
}
