// Training forward: batch statistics, normalisation, saved statistics for the backward, and
// the running statistics' update.
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> affine: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> saved: array<f32>;
@group(0) @binding(5) var<storage, read_write> running: array<f32>;

fn run(l: Lane, lid: u32) {
    let fl = lid % SLICES;
    var s = 0.0;
    for (var b = l.first; b < p.batch; b += SLICES) {
        s += x[b * p.features + l.f];
    }
    part[lid] = s;
    part2[lid] = 0.0;
    slice_tree(lid);
    let mean = part[fl] / f32(p.batch);
    workgroupBarrier();
    var s2 = 0.0;
    for (var b = l.first; b < p.batch; b += SLICES) {
        let d = x[b * p.features + l.f] - mean;
        s2 += d * d;
    }
    part[lid] = 0.0;
    part2[lid] = s2;
    slice_tree(lid);
    let var_b = part2[fl] / f32(p.batch);
    let inv_std = 1.0 / sqrt(var_b + p.eps);
    if (!l.valid) { return; }
    let gamma = affine[l.f];
    let beta = affine[p.features + l.f];
    for (var b = l.first; b < p.batch; b += SLICES) {
        let i = b * p.features + l.f;
        y[i] = gamma * (x[i] - mean) * inv_std + beta;
    }
    if (l.slice == 0u) {
        saved[l.f] = mean;
        saved[p.features + l.f] = inv_std;
        let m = p.momentum;
        running[l.f] = m * running[l.f] + (1.0 - m) * mean;
        running[p.features + l.f] = m * running[p.features + l.f] + (1.0 - m) * var_b;
    }
}
