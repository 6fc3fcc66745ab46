// The paper's similarity from the gram matrix of row-normalised groups (tied::share::similarity).
//
// Group i was scaled on the host by 2^-e[i] so that its norm lies in [0.5, 2): u_i = w_i 2^-e_i,
// and gram = U U^T (the conv GEMM). Then
//   S_ij = <w_i, w_j> / max(|w_i|^2, |w_j|^2)
//        = gram_ij 2^(e_i + e_j) / max(gram_ii 2^(2 e_i), gram_jj 2^(2 e_j)),
// computed with d = e_i - e_j >= 0 (else swapped) as
//   ldexp(gram_ij, -d) / max(gram_ii, ldexp(gram_jj, -2 d)),
// where every exponent is <= 0 and the denominator is at least gram_ii (about 0.25 or more):
// no overflow, no division by zero, over the whole f32 range of the weights. The diagonal is
// exactly 1. One thread per element of the m x m output; the grid is folded past 65,535.

@group(0) @binding(0) var<uniform> p: SimilarityParams;
@group(0) @binding(1) var<storage, read> gram: array<f32>;
@group(0) @binding(2) var<storage, read> exps: array<i32>;
@group(0) @binding(3) var<storage, read_write> s: array<f32>;

// x 2^e for e <= 0; 0 below the f32 exponent range (ldexp is indeterminate there).
fn scale_down(x: f32, e: i32) -> f32 {
    let ok = e >= -126;
    return select(0.0, ldexp(x, max(e, -126)), ok);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let k = linear_thread(wg, lid, p.fold_x);
    if k >= p.len { return; }
    let m = p.m;
    let i = k / m;
    let j = k - i * m;
    let d = exps[i] - exps[j];
    // a: the larger-exponent group, b: the other.
    let a = select(j, i, d >= 0);
    let b = select(i, j, d >= 0);
    let ad = abs(d);
    let num = scale_down(gram[k], -ad);
    let den = max(gram[a * m + a], scale_down(gram[b * m + b], -2 * ad));
    s[k] = select(num / den, 1.0, i == j);
}
