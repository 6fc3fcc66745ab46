// Tied groups, scalar granularity, pass 2: groups that cross chunk edges (and empty groups).
// Entry (g, c_first, c_last): out[g] = partials of chunks c_first .. c_last in a fixed tree:
// thread t adds chunks c_first + t, c_first + t + 256, ... in order, then a fixed-shape tree
// in workgroup memory. The first chunk contributes its last segment, the last chunk its first
// segment, chunks between are whole. Empty groups have c_first > c_last and get 0.

struct SpanParams {
    entries: u32,
    mean: u32,
    fold_x: u32,
    total_wg: u32,
}

@group(0) @binding(0) var<uniform> p: SpanParams;
@group(0) @binding(1) var<storage, read> spans: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> partials: array<f32>;
@group(0) @binding(3) var<storage, read> offsets: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

var<workgroup> tree: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let wid = wg.x + wg.y * p.fold_x;
    if (wid >= p.total_wg) {
        return;
    }
    let span = spans[wid];
    let g = span.x;
    let first = span.y;
    let last = span.z;
    var s = 0.0;
    // At most (chunks / 256) steps per invocation: far below the loop limiter.
    for (var c = first + lid; c <= last; c += 256u) {
        var part = partials[2u * c + 1u];
        if (c == last && c != first) {
            part = partials[2u * c];
        }
        s += part;
    }
    tree[lid] = s;
    workgroupBarrier();
    for (var w = 128u; w > 0u; w = w / 2u) {
        if (lid < w) {
            tree[lid] += tree[lid + w];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        var total = tree[0];
        let size = offsets[g + 1u] - offsets[g];
        if (p.mean != 0u && size > 0u) {
            total = total / f32(size);
        }
        out[g] = total;
    }
}
