// Tied groups over a tensor cut into windows (each fitting one binding): adds the windows'
// group partials in window order, values[i] = sum_w partials[w * slot_stride + i], and for
// means divides by the group's total member count (empty groups stay 0).

@group(0) @binding(0) var<uniform> p: CombineParams;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read> sizes: array<u32>;
@group(0) @binding(3) var<storage, read_write> values: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_thread(wg, lid, p.fold_x);
    if (i >= p.len) { return; }
    var s = 0.0;
    for (var w = 0u; w < p.windows; w++) {
        s += partials[w * p.slot_stride + i];
    }
    if (p.mean != 0u) {
        let size = sizes[i / p.unit_len];
        if (size > 0u) {
            s = s / f32(size);
        }
    }
    values[i] = s;
}
