// Source of tie_reduce_runs.wgsl gathered through `at`: level 1 of a map not read in place,
// position pos holds src[at[pos]] (`at` holds the members' parameter indices in group order,
// or their slots in a staged copy, see `Staging` in src/tying/staging.rs).
//
// Also `empty_groups`: out[g] = 0 for the groups with no members, listed in `at` (p.runs of
// them).

@group(0) @binding(2) var<storage, read> src: array<f32>;
// Four indices per element.
@group(0) @binding(3) var<storage, read> at: array<vec4<u32>>;

fn value(pos: u32) -> f32 {
    return src[at[pos / 4u][pos % 4u]];
}

fn quad(q: u32) -> vec4<f32> {
    let i = at[q];
    return vec4<f32>(src[i.x], src[i.y], src[i.z], src[i.w]);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn empty_groups(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_thread(wg, lid, p.fold_x);
    if (i < p.runs) {
        out[at[i / 4u][i % 4u]] = 0.0;
    }
}
