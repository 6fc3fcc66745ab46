// Group norms, one workgroup per group: each thread adds the squares of its share of the
// group in order (growl_norms_elements.wgsl: elements t, t + 256, ...; growl_norms_quads.wgsl:
// rows of whole quads, quads t, t + 256, ...), then `store_norm` adds the 256 partials in a
// fixed-order raking reduction. The host keeps group_len <= 256 * 60000.
// Over windows of outer slabs, the partial sums of squares add up in window order
// (`norms_role`): still a fixed order, so still deterministic.
@group(0) @binding(2) var<storage, read_write> norms: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;

var<workgroup> tree: array<f32, 256>;
var<workgroup> rake: array<f32, 16>;

// Adds the 256 threads' partial sums of squares of group g (fixed-order raking: 16 threads
// add 16 partials each, then one adds the 16; 2 barriers) and stores the norm. Call from
// uniform control flow.
fn store_norm(g: u32, s: f32, lid: u32) {
    tree[lid] = s;
    workgroupBarrier();
    // The thread tests are loop bounds, not branches (see scan.wgsl).
    {
        var t = 0.0;
        for (var k = 0u; k < select(0u, 16u, lid < 16u); k++) {
            t += tree[lid * 16u + k];
        }
        if (lid < 16u) {
            rake[lid] = t;
        }
    }
    workgroupBarrier();
    var total = 0.0;
    for (var k = 0u; k < select(0u, 16u, lid == 0u); k++) {
        total += rake[k];
    }
    if (lid == 0u) {
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
