// Re-zeroes the masked groups of a tensor: t = 0 where mask[group] == 0 (NaN too).
@group(0) @binding(1) var<storage, read> mask: array<u32>;
@group(0) @binding(2) var<storage, read_write> tensor: array<f32>;

fn apply(i: u32) {
    if (mask[group_of(i)] == 0u) {
        tensor[i] = 0.0;
    }
}
