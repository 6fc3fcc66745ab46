// Adds one batch's per-sample losses and correct predictions to running totals, in one
// workgroup: thread t sums samples t, t + WORKGROUP_SIZE, ... in order, then a fixed tree.
// The totals (stats[0]: loss sum as f32 bits, stats[1]: correct, stats[2]: samples) grow by
// one batch per dispatch, in submission order: deterministic. Zero them to start an epoch.

// StatsParams comes from the host.
@group(0) @binding(0) var<uniform> p: StatsParams;
@group(0) @binding(1) var<storage, read> per_sample: array<u32>;
@group(0) @binding(2) var<storage, read_write> stats: array<u32>;

var<workgroup> loss: array<f32, WORKGROUP_SIZE>;
var<workgroup> correct: array<u32, WORKGROUP_SIZE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(local_invocation_index) lid: u32) {
    var l = 0.0;
    var c = 0u;
    for (var b = lid; b < p.batch; b += WORKGROUP_SIZE) {
        l += bitcast<f32>(per_sample[2u * b]);
        c += per_sample[2u * b + 1u];
    }
    loss[lid] = l;
    correct[lid] = c;
    workgroupBarrier();
    for (var half = WORKGROUP_SIZE / 2u; half > 0u; half /= 2u) {
        if (lid < half) {
            loss[lid] += loss[lid + half];
            correct[lid] += correct[lid + half];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        stats[0] = bitcast<u32>(bitcast<f32>(stats[0]) + loss[0]);
        stats[1] = stats[1] + correct[0];
        stats[2] = stats[2] + p.batch;
    }
}
