@group(0) @binding(1) var<storage, read> v: array<f32>;
@group(0) @binding(2) var<storage, read_write> keys: array<f32>;
@group(0) @binding(3) var<storage, read_write> payload: array<u32>;

fn stage(i: u32) {
    if (i < p.n) {
        keys[i] = abs(v[i]);
        payload[i] = i;
    }
}
