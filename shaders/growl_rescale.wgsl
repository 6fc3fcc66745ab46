// growl_rescale, two entry points over the same bindings:
// - `factors`: one thread per group, factor_g = new_norm_g / norm_g (0 for a zero group),
//   written over the old norms;
// - `main`: element e of group g = (e / inner) % groups is multiplied by factor_g.
//   Workgroup w covers elements [w * WORKGROUP_SIZE * PER_THREAD, (w + 1) * WORKGROUP_SIZE *
//   PER_THREAD), thread t the ones t apart by WORKGROUP_SIZE (coalesced), stepping its
//   position with view_cursor.wgsl. `PER_THREAD` comes from the host.
@group(0) @binding(1) var<storage, read_write> matrix: array<f32>;
@group(0) @binding(2) var<storage, read_write> factor: array<f32>;
@group(0) @binding(3) var<storage, read> new_norms: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn factors(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = linear_thread(wg, lid, p.fold_x);
    if (g >= p.groups) { return; }
    let r = factor[g];
    var f = 0.0;
    if (r > 0.0) {
        f = new_norms[g] / r;
    }
    factor[g] = f;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let wid = linear_workgroup(wg, p.fold_x);
    if (wid >= p.total_wg) { return; }
    var e = wid * WORKGROUP_SIZE * PER_THREAD + lid;
    var c = cursor_at(e, p.groups, p.inner);
    // The group is the cursor's row; the outer index is never needed, so it does not step.
    let step = vec3<u32>(0u, p.step_g, p.step_i);
    for (var k = 0u; k < PER_THREAD; k++) {
        if (e >= p.len) {
            break;
        }
        matrix[e] = matrix[e] * factor[p.group_base + c.r];
        e += WORKGROUP_SIZE;
        c = cursor_advance(c, step, p.groups, p.inner);
    }
}
