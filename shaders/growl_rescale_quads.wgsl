// growl_rescale `main` for tensors whose inner extent is whole quads (a quad never straddles
// two groups): quad q, in group (q / (inner / 4)) % groups, is multiplied by that group's
// factor. Workgroup w covers quads [w * WORKGROUP_SIZE * PER_THREAD, (w + 1) * WORKGROUP_SIZE *
// PER_THREAD), thread t the ones t apart by WORKGROUP_SIZE (coalesced vec4s), stepping its
// position with view_cursor.wgsl. `PER_THREAD` comes from the host.
@group(0) @binding(1) var<storage, read_write> matrix: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> factor: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let wid = linear_workgroup(wg, p.fold_x);
    if (wid >= p.quad_total_wg) { return; }
    let quads = p.len / 4u;
    let inner4 = p.inner / 4u;
    var q = wid * WORKGROUP_SIZE * PER_THREAD + lid;
    var c = cursor_at(q, p.groups, inner4);
    // The group is the cursor's row; the outer index is never needed, so it does not step.
    let step = vec3<u32>(0u, p.quad_step_g, p.quad_step_i);
    for (var k = 0u; k < PER_THREAD; k++) {
        if (q >= quads) {
            break;
        }
        matrix[q] = matrix[q] * factor[p.group_base + c.r];
        q += WORKGROUP_SIZE;
        c = cursor_advance(c, step, p.groups, inner4);
    }
}
