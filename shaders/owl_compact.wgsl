// Packs the chunk hulls: offsets = exclusive scan of the sizes (chunks + 1 entries).
@group(0) @binding(1) var<storage, read> hull_cap: array<u32>;
@group(0) @binding(2) var<storage, read> offsets: array<u32>;
@group(0) @binding(3) var<storage, read_write> verts: array<u32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let s = thread_id(wg, lid);
    let c = s / CHUNK;
    if (c >= p.chunks) {
        return;
    }
    let t = s - c * CHUNK;
    if (t < offsets[c + 1u] - offsets[c]) {
        verts[offsets[c] + t] = hull_cap[s];
    }
}
