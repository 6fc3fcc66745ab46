// Tied groups, scalar granularity: every group's sum (or mean), in levels, with no barriers, no
// workgroup memory and no atomics.
//
// On level 1 the runs read the members: in group order through `at` (position pos holds
// parameter at[pos], or its slot in a staged copy: tie_reduce_runs_gather.wgsl), or in place
// (the tensor itself, when the groups lie in stretches of neighbouring parameters:
// tie_reduce_runs_direct.wgsl); on later levels the partial sums of the level below, in group
// order (direct as well). The part before this one declares the source and defines `value(pos)`
// and `quad(q)`. The plan (`run_levels` in src/tying/runs.rs) cuts each group's stretches into
// runs of at most REDUCE_RUN values, and thread i adds run i's values in order:
// - a group of one run is done: its sum (or mean) goes to out[group];
// - a group of several runs leaves its run sums, in order, in `partials`, where the next
//   level cuts them again.
// A group of n members is done after about log_REDUCE_RUN(n) levels. Runs of whole quads
// (`quads`; a long stretch is cut at quad edges) load four values at a time; the others
// (`values`) load one at a time, four a step. The loops are short (at most REDUCE_RUN / 4
// steps), there is no branch per value, and the plan lists a level's runs longest first, so
// neighbouring threads loop alike. The order of every addition depends only on the plan:
// bitwise identical results on every run.

const NEG_ZERO: u32 = 0x80000000u;

@group(0) @binding(0) var<uniform> p: RunParams;
// Per run: (first, length, destination, the group's member count), first and length in
// values (1..=REDUCE_RUN of them) or, for `quads`, in quads; a count of 0 marks a partial run,
// whose destination is its slot in `partials`, else the destination is the group.
@group(0) @binding(1) var<storage, read> runs: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> partials: array<f32>;

// The value at `pos` up to `last`; past it -0.0, the exact additive identity (and no load
// outside the run).
fn value_upto(pos: u32, last: u32) -> f32 {
    return select(bitcast<f32>(NEG_ZERO), value(min(pos, last)), pos <= last);
}

fn finish(c: vec4<u32>, sum: f32) {
    if (c.w == 0u) {
        partials[c.z] = sum;
    } else {
        out[c.z] = select(sum, sum / f32(c.w), p.mean != 0u);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn quads(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_thread(wg, lid, p.fold_x);
    if (i >= p.runs) { return; }
    let c = runs[i];
    var sum = bitcast<f32>(NEG_ZERO);
    for (var q = c.x; q < c.x + c.y; q++) {
        let v = quad(q);
        sum = (((sum + v.x) + v.y) + v.z) + v.w;
    }
    finish(c, sum);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn values(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_thread(wg, lid, p.fold_x);
    if (i >= p.runs) { return; }
    let c = runs[i];
    let last = c.x + c.y - 1u;
    var sum = bitcast<f32>(NEG_ZERO);
    // Four values a step: software drivers pay a loop's bookkeeping per step, not per value.
    for (var k = 0u; k < c.y; k += 4u) {
        let pos = c.x + k;
        sum = (((sum + value(pos)) + value_upto(pos + 1u, last)) + value_upto(pos + 2u, last))
            + value_upto(pos + 3u, last);
    }
    finish(c, sum);
}
