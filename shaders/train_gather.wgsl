// Gathers one batch from a u8 data set uploaded once: samples perm[first + b] (b < batch),
// each `dim` bytes, as f32 times `scale` (1/255 for pixels in [0, 1]), and their u8 labels.
// Bytes are packed four to a u32, little-endian. One thread per output value; threads with
// j == 0 also write the label.

// GatherParams comes from the host.
@group(0) @binding(0) var<uniform> p: GatherParams;
@group(0) @binding(1) var<storage, read> data: array<u32>;
@group(0) @binding(2) var<storage, read> label_data: array<u32>;
@group(0) @binding(3) var<storage, read> perm: array<u32>;
@group(0) @binding(4) var<storage, read_write> x: array<f32>;
@group(0) @binding(5) var<storage, read_write> labels: array<u32>;

fn byte_at(i: u32) -> u32 {
    return (data[i / 4u] >> (8u * (i % 4u))) & 0xffu;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = grid_element(wg, lid, p.fold_x, p.total_wg, p.batch * p.dim);
    if (i >= p.batch * p.dim) { return; }
    let b = i / p.dim;
    let j = i - b * p.dim;
    let sample = perm[p.first + b];
    x[i] = f32(byte_at(sample * p.dim + j)) * p.scale;
    if (j == 0u) {
        labels[b] = (label_data[sample / 4u] >> (8u * (sample % 4u))) & 0xffu;
    }
}
