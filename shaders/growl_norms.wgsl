// One workgroup per group: thread t adds the squares of elements t, t + 256, ... of the group
// (in order), then a fixed-shape tree. The host keeps group_len <= 256 * 60000.
@group(0) @binding(1) var<storage, read> matrix: array<f32>;
@group(0) @binding(2) var<storage, read_write> norms: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;

var<workgroup> tree: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = wg.x + wg.y * p.fold_x;
    if (g >= p.groups) {
        return;
    }
    var s = 0.0;
    for (var j = lid; j < p.group_len; j += 256u) {
        let o = j / p.inner;
        let i = j - o * p.inner;
        let x = matrix[(o * p.groups + g) * p.inner + i];
        s = fma(x, x, s);
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
        var r = sqrt(tree[0]);
        if (r < 1.1920929e-7) {
            r = 0.0;
        }
        norms[g] = r;
        v[g] = r;
    }
}
