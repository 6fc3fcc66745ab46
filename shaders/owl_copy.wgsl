// Moves every kept vertex of the input level to the output level: slot s of the input belongs
// to node upper_bound(offsets_in, s) - 1 (binary search); left nodes keep indices <= i, right
// nodes keep indices >= j, shifted after the left part.
@group(0) @binding(1) var<storage, read> verts_in: array<u32>;
@group(0) @binding(2) var<storage, read> offsets_in: array<u32>;
@group(0) @binding(3) var<storage, read> bridges: array<u32>;
@group(0) @binding(4) var<storage, read> offsets_out: array<u32>;
@group(0) @binding(5) var<storage, read_write> verts_out: array<u32>;

fn stage(s: u32) {
    if (s >= offsets_in[p.nodes_in]) { return; }
    // Last node whose offset is <= s.
    var l = 0u;
    var r = p.nodes_in - 1u;
    while (l < r) {
        let mid = (l + r + 1u) / 2u;
        if (offsets_in[mid] <= s) {
            l = mid;
        } else {
            r = mid - 1u;
        }
    }
    let node = l;
    let local = s - offsets_in[node];
    let m = node / 2u;
    let i = bridges[2u * m];
    if (node % 2u == 0u) {
        if (local <= i) {
            verts_out[offsets_out[m] + local] = verts_in[s];
        }
    } else {
        let j = bridges[2u * m + 1u];
        if (local >= j) {
            verts_out[offsets_out[m] + i + 1u + local - j] = verts_in[s];
        }
    }
}
