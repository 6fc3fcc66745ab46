// Level 1 of the scalar tied reduction (see tie_reduce_walk.wgsl): the members, sorted by
// group on the host (a stable counting sort), position `pos` holding parameter perm[pos] of
// group groups[pos]. Thread t walks positions 32t .. 32t + 31, four at a time.
//
// IDENTITY (pipeline constant): the permutation is the identity (groups already contiguous in
// the tensor), so `quads` is a vec4 view of the tensor's bits and the values load four at a
// time; otherwise `quads` holds the parameter indices (four per element) and the values are
// gathered from `src`. A staged plan (see `Staging` in src/tying/mod.rs) binds its staged
// copy as `src` and the members' slots in it as `quads`.

override IDENTITY: bool = false;

@group(0) @binding(4) var<storage, read> quads: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read> src: array<f32>;
// The members' groups, four per element.
@group(0) @binding(6) var<storage, read> groups: array<vec4<u32>>;

fn group_quad(q: u32) -> vec4<u32> {
    return groups[q];
}

fn value_quad(q: u32) -> vec4<f32> {
    if (IDENTITY) {
        return bitcast<vec4<f32>>(quads[q]);
    }
    let at = quads[q];
    return vec4<f32>(src[at.x], src[at.y], src[at.z], src[at.w]);
}

fn value_at(pos: u32) -> f32 {
    if (IDENTITY) {
        return src[pos];
    }
    return src[quads[pos / 4u][pos % 4u]];
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
