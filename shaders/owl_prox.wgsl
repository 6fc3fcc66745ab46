// Common part of the OWL prox stages (each stage is this file followed by one owl_*.wgsl).
//
// The OWL prox on the GPU, around the radix sort:
//   owl_prepare   keys = |v|, payload = index                       (then: sort descending)
//   owl_make_z    z_k = sorted_k - w_k as an exact double-f32 (hi, lo) pair
//   owl_scan      inclusive double-f32 scan of z: S_{k+1} = z_0 + ... + z_k (reduce-then-scan)
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
// leaf hull, O(log^2 n) per bridge), even for one block of 1e7 equal values. Cumulative sums
// are double-f32 (about 48 bits), so block means stay accurate at 1e7 and beyond.

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

// Knuth's two-sum: s + err == a + b exactly. No multiplications, so no FMA contraction.
fn two_sum(a: f32, b: f32) -> vec2<f32> {
    let s = a + b;
    let bb = s - a;
    let err = (a - (s - bb)) + (b - bb);
    return vec2<f32>(s, err);
}

// Double-f32 addition (hi, lo).
fn df_add(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    let s = two_sum(a.x, b.x);
    let t = two_sum(a.y, b.y);
    let u = two_sum(s.x, s.y + t.x);
    return two_sum(u.x, u.y + t.y);
}

fn df_sub(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    return df_add(a, vec2<f32>(-b.x, -b.y));
}

fn thread_id(wg: vec3<u32>, lid: u32) -> u32 {
    return (wg.x + wg.y * p.fold_x) * 256u + lid;
}
