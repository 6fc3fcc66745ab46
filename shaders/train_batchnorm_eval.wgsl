// Inference forward: y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta.
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> affine: array<f32>;
@group(0) @binding(3) var<storage, read> running: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

fn run(l: Lane, lid: u32) {
    if (!l.valid) { return; }
    let inv_std = 1.0 / sqrt(running[p.features + l.f] + p.eps);
    let mean = running[l.f];
    let gamma = affine[l.f];
    let beta = affine[p.features + l.f];
    for (var b = l.first; b < p.batch; b += SLICES) {
        let i = b * p.features + l.f;
        y[i] = gamma * (x[i] - mean) * inv_std + beta;
    }
}
