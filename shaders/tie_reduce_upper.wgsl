// Levels 2 and up of the scalar tied reduction (see tie_reduce_walk.wgsl): thread t walks
// the (head, tail) pairs of threads 16t .. 16t + 15 of the level below.
//
// `empty_groups`: out[g] = 0 for the groups with no members, listed four per element of
// `pairs_in` (p.len of them).

@group(0) @binding(4) var<storage, read> pairs_in: array<vec4<u32>>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = thread_index(wg, lid);
    if (t >= p.threads) {
        return;
    }
    var w = new_walk();
    for (var k = 0u; k < ENTRIES / 2u; k++) {
        let i = t * (ENTRIES / 2u) + k;
        if (i < p.len) {
            let e = pairs_in[i];
            step(&w, bitcast<f32>(e.x), e.y);
            step(&w, bitcast<f32>(e.z), e.w);
        }
    }
    end_walk(w, t);
}

@compute @workgroup_size(256)
fn empty_groups(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wg, lid);
    if (i < p.len) {
        out[pairs_in[i / 4u][i % 4u]] = 0.0;
    }
}
