// Adds split-K partial sums in a fixed order (split 0, 1, 2, ...) and an optional
// per-channel bias: out[i] = sum_s partials[s * split_stride + i] + bias[(i / inner) % channels].
// One thread per output element; the loop runs `splits` times (the host keeps it <= 4096).
// `SplitParams` comes from the host.

@group(0) @binding(0) var<uniform> p: SplitParams;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = grid_element(wg, lid, p.fold_x, p.total_wg, p.len);
    if (i >= p.len) { return; }
    var s = 0.0;
    for (var k = 0u; k < p.splits; k++) {
        s += partials[k * p.split_stride + i];
    }
    if (p.has_bias != 0u) {
        s += bias[(i / p.inner) % p.channels];
    }
    out[i] = s;
}
