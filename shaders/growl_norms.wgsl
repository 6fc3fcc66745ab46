// One workgroup per group: thread t adds the squares of elements t, t + 256, ... of the group
// (in order), then a fixed-order raking reduction. The host keeps group_len <= 256 * 60000.
// Over windows of outer slabs, the partial sums of squares add up in window order
// (`norms_role`): still a fixed order, so still deterministic.
@group(0) @binding(1) var<storage, read> matrix: array<f32>;
@group(0) @binding(2) var<storage, read_write> norms: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;

var<workgroup> tree: array<f32, 256>;
var<workgroup> rake: array<f32, 16>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = wg.x + wg.y * p.fold_x;
    if (g >= p.groups) {
        return;
    }
    // Element j of the group is (o, i) = divmod(j, inner), at (o * groups + g) * inner + i.
    var o = lid / p.inner;
    var i = lid - o * p.inner;
    let row = p.groups * p.inner;
    var at = o * row + g * p.inner + i;
    var s = 0.0;
    for (var j = lid; j < p.group_len; j += 256u) {
        let x = matrix[at];
        s = fma(x, x, s);
        i += p.step_i;
        var carry = 0u;
        if (i >= p.inner) {
            i -= p.inner;
            carry = 1u;
        }
        at += (p.step_o + carry) * row + p.step_i - carry * p.inner;
    }
    // Fixed-order raking: 16 threads add 16 partials each, then one adds the 16 (2 barriers).
    tree[lid] = s;
    workgroupBarrier();
    if (lid < 16u) {
        var t = 0.0;
        for (var k = 0u; k < 16u; k++) {
            t += tree[lid * 16u + k];
        }
        rake[lid] = t;
    }
    workgroupBarrier();
    if (lid == 0u) {
        var total = 0.0;
        for (var k = 0u; k < 16u; k++) {
            total += rake[k];
        }
        if ((p.norms_role & NORMS_ACCUMULATE) != 0u) {
            total = norms[p.group_base + g] + total;
        }
        if ((p.norms_role & NORMS_FINISH) == 0u) {
            norms[p.group_base + g] = total;
            return;
        }
        var r = sqrt(total);
        if (r < 1.1920929e-7) {
            r = 0.0;
        }
        norms[p.group_base + g] = r;
        v[p.group_base + g] = r;
    }
}
