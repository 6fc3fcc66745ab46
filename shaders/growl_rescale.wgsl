// growl_rescale, two entry points over the same bindings:
// - `factors`: one thread per group, factor_g = new_norm_g / norm_g (0 for a zero group),
//   written over the old norms;
// - `main`: element e of group g = (e / inner) % groups is multiplied by factor_g.
//   Workgroup w covers elements [w * 256 * PER_THREAD, (w + 1) * 256 * PER_THREAD), thread t
//   the ones t apart by 256 (coalesced); one division per thread, then additions.
@group(0) @binding(1) var<storage, read_write> matrix: array<f32>;
@group(0) @binding(2) var<storage, read_write> factor: array<f32>;
@group(0) @binding(3) var<storage, read> new_norms: array<f32>;

const PER_THREAD: u32 = 8u;

@compute @workgroup_size(256)
fn factors(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = (wg.x + wg.y * p.fold_x) * 256u + lid;
    if (g >= p.groups) {
        return;
    }
    let r = factor[g];
    var f = 0.0;
    if (r > 0.0) {
        f = new_norms[g] / r;
    }
    factor[g] = f;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let wid = wg.x + wg.y * p.fold_x;
    if (wid >= p.total_wg) {
        return;
    }
    var e = wid * 256u * PER_THREAD + lid;
    var q = e / p.inner;
    var i = e - q * p.inner;
    var g = q % p.groups;
    for (var k = 0u; k < PER_THREAD; k++) {
        if (e >= p.len) {
            break;
        }
        matrix[e] = matrix[e] * factor[p.group_base + g];
        e += 256u;
        i += p.step_i;
        var carry = 0u;
        if (i >= p.inner) {
            i -= p.inner;
            carry = 1u;
        }
        g += p.step_g + carry;
        if (g >= p.groups) {
            g -= p.groups;
        }
    }
}
