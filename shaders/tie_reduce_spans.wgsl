// Tied groups, scalar granularity, pass 2: groups that cross chunk edges (and empty groups).
// Entry (g, c_first, c_last): out[g] = partials of chunks c_first .. c_last. The first chunk
// contributes its last segment, the last chunk its first segment, chunks between are whole.
// Empty groups have c_first > c_last and get 0.
//
// Two entry points over the same bindings, so the many short spans cost one thread each and
// the few long ones a workgroup:
// - `short`: one thread per entry adds its (at most SHORT_SPAN) chunks in order;
// - `long`: one workgroup per entry; thread t adds chunks c_first + t, c_first + t + 256, ...
//   in order, then a fixed-shape tree in workgroup memory.

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

fn chunk_part(c: u32, first: u32, last: u32) -> f32 {
    if (c == last && c != first) {
        return partials[2u * c];
    }
    return partials[2u * c + 1u];
}

fn store(g: u32, total: f32) {
    let size = offsets[g + 1u] - offsets[g];
    if (p.mean != 0u && size > 0u) {
        out[g] = total / f32(size);
    } else {
        out[g] = total;
    }
}

@compute @workgroup_size(256)
fn short_spans(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * p.fold_x) * 256u + lid;
    if (i >= p.entries) {
        return;
    }
    let span = spans[i];
    var s = 0.0;
    // The host puts spans of at most SHORT_SPAN chunks here.
    for (var c = span.y; c <= span.z; c++) {
        s += chunk_part(c, span.y, span.z);
    }
    store(span.x, s);
}

@compute @workgroup_size(256)
fn long_spans(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let wid = wg.x + wg.y * p.fold_x;
    if (wid >= p.total_wg) {
        return;
    }
    let span = spans[wid];
    var s = 0.0;
    // At most (chunks / 256) steps per invocation: far below the loop limiter.
    for (var c = span.y + lid; c <= span.z; c += 256u) {
        s += chunk_part(c, span.y, span.z);
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
        store(span.x, tree[0]);
    }
}
