// Level 1 of the scalar tied reduction (see tie_reduce_walk.wgsl): the members, sorted by
// group on the host (a stable counting sort), position `pos` holding parameter perm[pos] of
// group groups[pos]. Thread t walks positions 32t .. 32t + 31, four at a time.
//
// IDENTITY (pipeline constant): the permutation is the identity (groups already contiguous in
// the tensor), so `grouped` holds only the group quads and the values load as vec4; otherwise
// `grouped` interleaves (group quad, parameter quad) and the values are gathered.

override IDENTITY: bool = false;

@group(0) @binding(4) var<storage, read> src4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> src: array<f32>;
@group(0) @binding(6) var<storage, read> grouped: array<vec4<u32>>;

fn group_quad(q: u32) -> vec4<u32> {
    if (IDENTITY) {
        return grouped[q];
    }
    return grouped[2u * q];
}

fn value_quad(q: u32) -> vec4<f32> {
    if (IDENTITY) {
        return src4[q];
    }
    let at = grouped[2u * q + 1u];
    return vec4<f32>(src[at.x], src[at.y], src[at.z], src[at.w]);
}

fn value_at(pos: u32) -> f32 {
    if (IDENTITY) {
        return src[pos];
    }
    return src[grouped[2u * (pos / 4u) + 1u][pos % 4u]];
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = thread_index(wg, lid);
    if (t >= p.threads) {
        return;
    }
    var w = new_walk();
    let full_quads = p.len / 4u;
    for (var k = 0u; k < ENTRIES / 4u; k++) {
        let q = t * (ENTRIES / 4u) + k;
        if (q < full_quads) {
            step4(&w, value_quad(q), group_quad(q));
        }
    }
    // The last 1-3 members, past the last whole quad, belong to the last thread.
    if (t + 1u == p.threads) {
        for (var pos = full_quads * 4u; pos < p.len; pos++) {
            step(&w, value_at(pos), group_quad(pos / 4u)[pos % 4u]);
        }
    }
    end_walk(w, t);
}
