// Tied groups: gathers four elements at a time (ids padded with UNTIED to whole quads).
// - `main`, scalar ties: quad q of the tensor takes values[ids[q]] lane by lane; untied lanes
//   (id UNTIED) keep their value (the quad is read back only when it has one). Each thread
//   handles QUADS_PER_THREAD quads strided by the grid, so the ids and the tensor move as
//   coalesced vec4s; the group values are a small, cached gather. The last 1-3 parameters
//   past the last whole quad go through `scalar` of tie_broadcast.wgsl.
// - `blocks`, ties of [outer][rows][inner] with inner a multiple of 4: as `blocks` of
//   tie_broadcast.wgsl, in quads (a quad never straddles two rows), BLOCK_QUADS_PER_THREAD
//   quads per thread.
// - `runs`, scalar maps read in place (groups in stretches of neighbouring parameters):
//   `run_table` holds runs of at most REDUCE_RUN / 4 whole quads of one group, (first quad,
//   quads, group, 0) (p.quads runs), and thread i writes run i's group value over it, a quad
//   at a time, with no id per parameter (group values of scalar ties are dense: group g's at
//   values[g]). The plan's other runs go through `runs` of tie_broadcast.wgsl.
// - `stage`, the staging gather of a scalar reduction whose members lie scattered over the
//   tensor (see `Staging` in src/tying/staging.rs): staged quad q takes src[base + ids[q]]
//   lane by lane, where `ids` holds each staged slot's offset inside its chunk of STAGE_CHUNK
//   parameters and `base` is that chunk's first parameter. `values` is the source tensor,
//   `dst` the staged copy. Every read stays inside one chunk (64 KiB), so it hits the cache.

@group(0) @binding(0) var<uniform> p: QuadParams;
@group(0) @binding(1) var<storage, read> ids: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> values: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> run_table: array<vec4<u32>>;

// The quad of the k-th of QUADS_PER_THREAD grid-strided steps of `main` and `stage`; p.quads
// (past the end) in the folded grid's spare workgroups.
fn strided_quad(wg: vec3<u32>, lid: u32, k: u32) -> u32 {
    let wid = linear_workgroup(wg, p.fold_x);
    return select(p.quads, k * p.stride + wid * WORKGROUP_SIZE + lid, wid < p.total_wg);
}

fn gather4(at: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(values[at.x], values[at.y], values[at.z], values[at.w]);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    for (var k = 0u; k < QUADS_PER_THREAD; k++) {
        let q = strided_quad(wg, lid, k);
        if (q < p.quads) {
            let g = ids[q];
            let untied = g == vec4<u32>(UNTIED);
            var v = gather4(select(g, vec4<u32>(0u), untied));
            if (any(untied)) {
                v = select(v, dst[q], untied);
            }
            dst[q] = v;
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn blocks(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let wid = linear_workgroup(wg, p.fold_x);
    if (wid >= p.total_wg) { return; }
    var q = wid * WORKGROUP_SIZE * BLOCK_QUADS_PER_THREAD + lid;
    var c = cursor_at(q, p.rows, p.inner4);
    let step = vec3<u32>(p.step_o, p.step_r, p.step_i);
    for (var k = 0u; k < BLOCK_QUADS_PER_THREAD; k++) {
        if (q >= p.quads) {
            break;
        }
        let g = ids[c.r / 4u][c.r % 4u];
        if (g != UNTIED) {
            let at = 4u * (p.values_offset4 + g * p.values_stride4 + c.o * p.inner4 + c.i);
            dst[q] = vec4<f32>(values[at], values[at + 1u], values[at + 2u], values[at + 3u]);
        }
        q += WORKGROUP_SIZE;
        c = cursor_advance(c, step, p.rows, p.inner4);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn stage(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    for (var k = 0u; k < QUADS_PER_THREAD; k++) {
        let q = strided_quad(wg, lid, k);
        if (q < p.quads) {
            // A chunk is whole quads: the four slots share it.
            dst[q] = gather4(vec4<u32>(q / (STAGE_CHUNK / 4u) * STAGE_CHUNK) + ids[q]);
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn runs(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_thread(wg, lid, p.fold_x);
    if (i >= p.quads) { return; }
    let run = run_table[i];
    let v = vec4<f32>(values[run.z]);
    for (var q = run.x; q < run.x + run.y; q++) {
        dst[q] = v;
    }
}
