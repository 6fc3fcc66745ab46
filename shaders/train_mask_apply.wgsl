// Re-zeroes the masked groups of a tensor: t = 0 where mask[group] == 0 (NaN too).
@group(0) @binding(1) var<storage, read> mask: array<u32>;
@group(0) @binding(2) var<storage, read_write> tensor: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = element(wg, lid);
    if (i >= p.len) {
        return;
    }
    if (mask[group_of(i)] == 0u) {
        tensor[i] = 0.0;
    }
}
