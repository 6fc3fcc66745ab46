// Packs the chunk hulls: offsets = exclusive scan of the sizes (chunks + 1 entries).
@group(0) @binding(1) var<storage, read> hull_cap: array<u32>;
@group(0) @binding(2) var<storage, read> offsets: array<u32>;
@group(0) @binding(3) var<storage, read_write> verts: array<u32>;

fn stage(s: u32) {
    let c = s / CHUNK;
    if (c >= p.chunks) { return; }
    let t = s - c * CHUNK;
    if (t < offsets[c + 1u] - offsets[c]) {
        verts[offsets[c] + t] = hull_cap[s];
    }
}
