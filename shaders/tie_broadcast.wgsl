// Tied groups: write each group's value back to its members. The tensor is viewed as
// [outer][rows][inner] with one group id per row; element (o, r, i) of a tied row takes
// values[ids[r]][o * inner + i]; untied rows (id UNTIED) are left as they are.
// Three entry points:
// - `blocks` (row, column and conv-channel ties whose inner extent is not whole quads; the
//   others go four at a time, tie_broadcast_quads.wgsl): workgroup w covers elements
//   [w * WORKGROUP_SIZE * BLOCKS_PER_THREAD, (w + 1) * WORKGROUP_SIZE * BLOCKS_PER_THREAD),
//   thread t the ones t apart by WORKGROUP_SIZE (coalesced), stepping its position with
//   view_cursor.wgsl (no division per element);
// - `scalar`: elements first .. len one per thread, ids[e] per element: the last 1-3
//   parameters of scalar ties, after tie_broadcast_quads.wgsl;
// - `runs`: scalar maps read in place (groups in stretches of neighbouring parameters), the
//   runs that are not whole quads (those go through `runs` of tie_broadcast_quads.wgsl):
//   `run_table` holds runs of at most REDUCE_RUN neighbouring parameters of one group, (first,
//   length, group, 0) four elements each (p.len runs), and thread i writes run i's group value
//   over it, four parameters a step, with no id per parameter.
// Group g's value vector starts at values_offset + g * values_stride (see `BroadcastParams`).

@group(0) @binding(0) var<uniform> p: BroadcastParams;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> values: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;
@group(0) @binding(4) var<storage, read> run_table: array<u32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn scalar(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let e = p.first + linear_thread(wg, lid, p.fold_x);
    if (e < p.len) {
        let g = ids[e];
        if (g != UNTIED) {
            dst[e] = values[g];
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn blocks(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let wid = linear_workgroup(wg, p.fold_x);
    if (wid >= p.total_wg) { return; }
    var e = wid * WORKGROUP_SIZE * BLOCKS_PER_THREAD + lid;
    var c = cursor_at(e, p.rows, p.inner);
    let step = vec3<u32>(p.step_o, p.step_r, p.step_i);
    for (var k = 0u; k < BLOCKS_PER_THREAD; k++) {
        if (e >= p.len) {
            break;
        }
        let g = ids[c.r];
        if (g != UNTIED) {
            dst[e] = values[p.values_offset + g * p.values_stride + c.o * p.inner + c.i];
        }
        e += WORKGROUP_SIZE;
        c = cursor_advance(c, step, p.rows, p.inner);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn runs(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_thread(wg, lid, p.fold_x);
    if (i >= p.len) { return; }
    let first = run_table[4u * i];
    let last = first + run_table[4u * i + 1u] - 1u;
    let v = values[p.values_offset + run_table[4u * i + 2u] * p.values_stride];
    // Past the run's end the stores repeat its last parameter (the same value).
    for (var at = first; at <= last; at += 4u) {
        dst[at] = v;
        dst[min(at + 1u, last)] = v;
        dst[min(at + 2u, last)] = v;
        dst[min(at + 3u, last)] = v;
    }
}
