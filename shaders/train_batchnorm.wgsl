// BatchNorm1d over x [batch, features] (row-major), per feature f:
//   mean_f = sum_b x[b, f] / batch, var_f = sum_b (x[b, f] - mean_f)^2 / batch (biased, as
//   TensorFlow's batch_norm normalises), inv_std_f = 1 / sqrt(var_f + eps),
//   y = gamma_f * (x - mean_f) * inv_std_f + beta_f.
// A workgroup owns SLICES features; its SLICES slices of SLICES threads walk the batch (slice s
// takes rows s, s + SLICES, ...) and meet in a fixed-order tree, so every sum is
// deterministic. Each thread walks at most 3 * batch / SLICES rows (the host bounds the batch
// below the loop limiter).
// affine = [gamma; beta], saved = [mean; inv_std], running = [mean; var] (each 2 x features).

// BnParams (uniform) and SLICES (features per workgroup, and slices of the batch; SLICES *
// SLICES == WORKGROUP_SIZE) come from the host.
@group(0) @binding(0) var<uniform> p: BnParams;

var<workgroup> part: array<f32, WORKGROUP_SIZE>;
var<workgroup> part2: array<f32, WORKGROUP_SIZE>;

struct Lane {
    f: u32,
    slice: u32,
    // First row this thread walks; batch when the feature is out of range.
    first: u32,
    valid: bool,
}

fn lane(wg: vec3<u32>, lid: u32) -> Lane {
    let wid = linear_workgroup(wg, p.fold_x);
    var l: Lane;
    l.f = wid * SLICES + lid % SLICES;
    l.slice = lid / SLICES;
    l.valid = wid < p.total_wg && l.f < p.features;
    l.first = select(p.batch, l.slice, l.valid);
    return l;
}

// The entry point of the three kernels (train_batchnorm_*.wgsl each define `fn run(l: Lane,
// lid: u32)`): the grid's padding workgroups leave as a whole, so the kernels' barriers stay
// in uniform control flow.
@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    if (linear_workgroup(wg, p.fold_x) >= p.total_wg) { return; }
    run(lane(wg, lid), lid);
}

// Adds the slices' partials (part, part2) of each feature in a fixed tree; afterwards
// part[lid % SLICES] and part2[lid % SLICES] hold the totals. Uniform control flow.
fn slice_tree(lid: u32) {
    workgroupBarrier();
    for (var half = SLICES / 2u; half > 0u; half /= 2u) {
        if (lid / SLICES < half) {
            part[lid] += part[lid + half * SLICES];
            part2[lid] += part2[lid + half * SLICES];
        }
        workgroupBarrier();
    }
}
