// Tied groups over a tensor cut into windows (each fitting one binding): adds the windows'
// group partials in window order, values[i] = sum_w partials[w * slot_stride + i], and for
// means divides by the group's total member count (empty groups stay 0). One thread per
// value (the entry point is elementwise.wgsl's).

@group(0) @binding(0) var<uniform> p: CombineParams;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read> sizes: array<u32>;
@group(0) @binding(3) var<storage, read_write> values: array<f32>;

fn apply(i: u32) {
    var s = sum_of_slices(i, p.windows, p.slot_stride);
    if (p.mean != 0u) {
        let size = sizes[i / p.unit_len];
        if (size > 0u) {
            s = s / f32(size);
        }
    }
    values[i] = s;
}
