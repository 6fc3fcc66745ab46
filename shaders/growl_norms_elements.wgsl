// Element loader of growl_norms.wgsl: thread t adds the scaled squares of elements t,
// t + WORKGROUP_SIZE, ... of group g.
@group(0) @binding(1) var<storage, read> matrix: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = linear_workgroup(wg, p.fold_x);
    if (g >= p.groups) { return; }
    // Element j of the group is (o, i) = divmod(j, inner), at (o * groups + g) * inner + i.
    var o = lid / p.inner;
    var i = lid - o * p.inner;
    let row = p.groups * p.inner;
    var at = o * row + g * p.inner + i;
    var s = 0.0;
    var code = CODE_LO;
    var factor = code_factor(code);
    var bound = code_bound(code);
    for (var j = lid; j < p.group_len; j += WORKGROUP_SIZE) {
        let x = matrix[at];
        if (abs(x) >= bound) {
            let c = code_of(x);
            s = rescale_squares(s, code, c);
            code = c;
            factor = code_factor(c);
            bound = code_bound(c);
        }
        let y = x * factor;
        s = fma(y, y, s);
        i += p.step_i;
        var carry = 0u;
        if (i >= p.inner) {
            i -= p.inner;
            carry = 1u;
        }
        at += (p.step_o + carry) * row + p.step_i - carry * p.inner;
    }
    store_norm(g, s, code, lid);
}
