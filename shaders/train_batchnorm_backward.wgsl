// Backward of the training forward, from its saved statistics (xhat = (x - mean) * inv_std):
//   dbeta = sum_b dy, dgamma = sum_b dy * xhat,
//   dx = gamma * inv_std / batch * (batch * dy - dbeta - xhat * dgamma).
// daffine = [dgamma; dbeta] (overwritten).
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> affine: array<f32>;
@group(0) @binding(4) var<storage, read> saved: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<storage, read_write> daffine: array<f32>;

fn run(l: Lane, lid: u32) {
    let fl = lid % SLICES;
    let f = min(l.f, p.features - 1u);
    let mean = saved[f];
    let inv_std = saved[p.features + f];
    var s_dy = 0.0;
    var s_dyx = 0.0;
    for (var b = l.first; b < p.batch; b += SLICES) {
        let i = b * p.features + l.f;
        let g = dy[i];
        s_dy += g;
        s_dyx += g * (x[i] - mean) * inv_std;
    }
    part[lid] = s_dy;
    part2[lid] = s_dyx;
    slice_tree(lid);
    let dbeta = part[fl];
    let dgamma = part2[fl];
    if (!l.valid) { return; }
    let k = affine[l.f] * inv_std / f32(p.batch);
    let n = f32(p.batch);
    for (var b = l.first; b < p.batch; b += SLICES) {
        let i = b * p.features + l.f;
        let xhat = (x[i] - mean) * inv_std;
        dx[i] = k * (n * dy[i] - dbeta - xhat * dgamma);
    }
    if (l.slice == 0u) {
        daffine[l.f] = dgamma;
        daffine[p.features + l.f] = dbeta;
    }
}
