// Common part of the OWL prox stages (each stage is this file followed by one owl_*.wgsl).
//
// The OWL prox on the GPU, around the radix sort:
//   owl_prepare   keys = |v|, payload = index                       (then: sort descending)
//   owl_make_z    z_k = sorted_k - w_k as an exact 64-bit fixed-point integer
//   owl_scan      inclusive 64-bit integer scan of z: S_{k+1} = z_0 + ... + z_k (reduce-then-scan)
//   owl_leaf      upper hull of the points P_k = (k, S_k), S_0 = 0, per chunk of 256 points
//   owl_compact   packs the chunk hulls (after a u32 scan of their sizes)
//   owl_bridge    per pair of neighbouring hulls, their upper common tangent (nested binary
//                 search: O(log^2) steps, no cascades), and the merged size
//   owl_copy      keeps the left hull up to the bridge and the right hull from it
//   owl_finish    y_k = max(slope of the final hull over (k, k + 1), 0), written to position
//                 payload_k with the sign of v; or the segment index: the PAV block id
//
// The non-increasing isotonic regression of z is the sequence of slopes of the least concave
// majorant of the points P_k (their upper hull): pool-adjacent-violators computed by merging
// hulls, so every invocation does bounded work whatever the data (at most 3 * 256 steps in a
// leaf hull, O(log^2 n) per bridge), even for one block of 1e7 equal values.
//
// Accuracy: magnitudes and weights are quantised to fixed point with 2^30 steps below the
// largest of them (the first sorted key, or w_0), so z and its prefix sums are exact 64-bit
// integers: block means are accurate to about 1e-9 of the largest magnitude at any n, and the
// sums do not depend on the order of additions. (Float error-free transformations such as
// two-sum are not safe here: some drivers simplify them away as real-number algebra.)

struct OwlParams {
    n: u32,
    points: u32,
    len: u32,
    nodes_in: u32,
    fold_x: u32,
    total_wg: u32,
    chunks: u32,
    _pad: u32,
}

const CHUNK: u32 = 256u;

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

// The fixed-point scale: a power of two putting the largest magnitude or weight `m` below
// 2^30 (so a difference of two quantised values fits an i32).
fn fixed_scale(m: f32) -> f32 {
    if (m <= 0.0) {
        return 1.0;
    }
    let e = i32((bitcast<u32>(m) >> 23u) & 0xffu) - 127;
    return exp2(f32(clamp(29 - e, -126, 126)));
}

fn thread_id(wg: vec3<u32>, lid: u32) -> u32 {
    return (wg.x + wg.y * p.fold_x) * 256u + lid;
}
