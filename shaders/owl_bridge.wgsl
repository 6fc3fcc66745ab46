// One thread per output node m: the upper common tangent of input hulls 2m and 2m + 1
// (vertices verts[offsets[node] .. offsets[node + 1])). Keeps left vertices 0 ..= i and right
// vertices j ..; writes (i, j) to bridges[2m], bridges[2m + 1] and the merged size to
// sizes_out[m]. A node without a right neighbour passes through.
@group(0) @binding(2) var<storage, read> verts: array<u32>;
@group(0) @binding(3) var<storage, read> offsets: array<u32>;
@group(0) @binding(4) var<storage, read_write> bridges: array<u32>;
@group(0) @binding(5) var<storage, read_write> sizes_out: array<u32>;

// The vertex of hull [lo, hi) touched by the tangent from P_q (q right of the hull): the first
// i whose edge (v_i, v_{i+1}) has P_q on or above its line; the last vertex if none.
fn tangent_to(lo: u32, hi: u32, q: u32) -> u32 {
    var l = lo;
    var r = hi - 1u;
    while (l < r) {
        let mid = (l + r) / 2u;
        if (turn(verts[mid], verts[mid + 1u], q) >= 0.0) {
            r = mid;
        } else {
            l = mid + 1u;
        }
    }
    return l;
}

fn stage(m: u32) {
    if (m >= (p.nodes_in + 1u) / 2u) { return; }
    let l0 = offsets[2u * m];
    let l1 = offsets[2u * m + 1u];
    if (2u * m + 1u >= p.nodes_in) {
        bridges[2u * m] = l1 - l0 - 1u;
        bridges[2u * m + 1u] = 0u;
        sizes_out[m] = l1 - l0;
        return;
    }
    let r0 = l1;
    let r1 = offsets[2u * m + 2u];
    // The first right vertex whose successor is not above the tangent line from it.
    var l = r0;
    var r = r1 - 1u;
    while (l < r) {
        let mid = (l + r) / 2u;
        let t = tangent_to(l0, l1, verts[mid]);
        if (turn(verts[t], verts[mid], verts[mid + 1u]) >= 0.0) {
            l = mid + 1u;
        } else {
            r = mid;
        }
    }
    let i = tangent_to(l0, l1, verts[l]);
    bridges[2u * m] = i - l0;
    bridges[2u * m + 1u] = l - r0;
    sizes_out[m] = (i - l0 + 1u) + (r1 - l);
}
