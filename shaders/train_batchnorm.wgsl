// BatchNorm1d over x [batch, features] (row-major), per feature f:
//   mean_f = sum_b x[b, f] / batch, var_f = sum_b (x[b, f] - mean_f)^2 / batch (biased, as
//   TensorFlow's batch_norm normalises), inv_std_f = 1 / sqrt(var_f + eps),
//   y = gamma_f * (x - mean_f) * inv_std_f + beta_f.
// A workgroup owns 16 features; its 16 slices of 16 threads walk the batch (slice s takes rows
// s, s + 16, ...) and meet in a fixed-order tree, so every sum is deterministic. Each thread
// walks at most 3 * batch / 16 rows (the host bounds the batch below the loop limiter).
// affine = [gamma; beta], saved = [mean; inv_std], running = [mean; var] (each 2 x features).

struct BnParams {
    batch: u32,
    features: u32,
    fold_x: u32,
    total_wg: u32,
    eps: f32,
    // Running statistics: running = momentum * running + (1 - momentum) * batch statistic.
    momentum: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: BnParams;

const SLICES: u32 = 16u;

var<workgroup> part: array<f32, 256>;
var<workgroup> part2: array<f32, 256>;

struct Lane {
    f: u32,
    slice: u32,
    // First row this thread walks; batch when the feature is out of range.
    first: u32,
    valid: bool,
}

fn lane(wg: vec3<u32>, lid: u32) -> Lane {
    let wid = wg.x + wg.y * p.fold_x;
    var l: Lane;
    l.f = wid * SLICES + lid % SLICES;
    l.slice = lid / SLICES;
    l.valid = wid < p.total_wg && l.f < p.features;
    l.first = select(p.batch, l.slice, l.valid);
    return l;
}

// Adds the slices' partials (part, part2) of each feature in a fixed tree; afterwards
// part[lid % 16] and part2[lid % 16] hold the totals. Uniform control flow.
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
