// Group norms, one workgroup per group: each thread adds the squares of its share of the
// group in order (growl_norms_elements.wgsl: elements t, t + WORKGROUP_SIZE, ...;
// growl_norms_quads.wgsl: rows of whole quads, quads t, t + WORKGROUP_SIZE, ...), then
// `store_norm` adds the WORKGROUP_SIZE partials in a fixed-order raking reduction. The host
// keeps group_len <= WORKGROUP_SIZE * 60000 (`MAX_GROUP_LEN`: under the loop limiter).
//
// The squares are of x * 2^(127 - code), code a power-of-two scale each thread raises when a
// larger element comes (rescaling its sum by the exact power of two), so squares neither
// overflow nor underflow whatever the group's magnitude: norms cover the f32 range (elements
// far below the largest, by 2^60 and more, round away as they would in any f32 sum). The
// threads' (sum, scale) pairs merge in a fixed order, each on the larger of the two scales.
// Over windows of outer slabs, the partial norms combine in window order (`norms_role`, a
// scaled hypot): still a fixed order, so still deterministic.
@group(0) @binding(2) var<storage, read_write> norms: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;

var<workgroup> tree: array<f32, WORKGROUP_SIZE>;
var<workgroup> rake: array<f32, 16>;
var<workgroup> codes: array<u32, WORKGROUP_SIZE>;
var<workgroup> rake_codes: array<u32, 16>;

// Scale codes: 2^(127 - code) is the factor of elements whose f32 exponent field is `code`
// (clamped to [1, 253] so that every factor and bound below is a normal f32).
const CODE_LO: u32 = 1u;
const CODE_HI: u32 = 253u;

fn code_of(x: f32) -> u32 {
    return clamp((bitcast<u32>(x) >> 23u) & 0xffu, CODE_LO, CODE_HI);
}

// 2^(127 - code): elements x below `code_bound(code)` have |x * factor| < 2 (< 4 at CODE_HI).
fn code_factor(code: u32) -> f32 {
    return bitcast<f32>((254u - code) << 23u);
}

// 2^(code - 126): the magnitude from which an element needs a larger code.
fn code_bound(code: u32) -> f32 {
    return bitcast<f32>((code + 1u) << 23u);
}

// A sum of squares of values scaled by code_factor(code), moved to the larger code `to`
// (times 2^(2 (code - to)), exact unless it falls below the f32 range, where it is negligible).
fn rescale_squares(s: f32, code: u32, to: u32) -> f32 {
    let d = to - code;
    var r = 0.0;
    if (d < 127u) {
        r = bitcast<f32>((127u - d) << 23u);
    }
    return s * r * r;
}

// sqrt(a^2 + b^2) for a, b >= 0, scaled by a power of two so that the squares stay in range.
fn scaled_hypot(a: f32, b: f32) -> f32 {
    let m = max(a, b);
    if (m == 0.0) {
        return 0.0;
    }
    let c = code_of(m);
    let f = code_factor(c);
    let x = a * f;
    let y = b * f;
    return ldexp(sqrt(fma(x, x, y * y)), i32(c) - 127);
}

// A scaled sum of squares: the squares of values times code_factor(code).
struct Squares {
    s: f32,
    code: u32,
}

// a + b on the larger of their scales.
fn merge_squares(a: Squares, b: Squares) -> Squares {
    let code = max(a.code, b.code);
    return Squares(rescale_squares(a.s, a.code, code) + rescale_squares(b.s, b.code, code), code);
}

// Adds the WORKGROUP_SIZE threads' partial sums of squares of group g (`s` scaled by
// code_factor(code); fixed-order raking on (sum, scale) pairs: 16 threads merge 16 partials
// each, 16 x 16 = WORKGROUP_SIZE, then one merges the 16; 2 barriers) and stores the norm. Call from uniform control flow.
fn store_norm(g: u32, s: f32, code: u32, lid: u32) {
    tree[lid] = s;
    codes[lid] = code;
    workgroupBarrier();
    // The thread tests are loop bounds, not branches (see scan.wgsl).
    {
        var t = Squares(0.0, CODE_LO);
        for (var k = 0u; k < select(0u, 16u, lid < 16u); k++) {
            t = merge_squares(t, Squares(tree[lid * 16u + k], codes[lid * 16u + k]));
        }
        if (lid < 16u) {
            rake[lid] = t.s;
            rake_codes[lid] = t.code;
        }
    }
    workgroupBarrier();
    var all = Squares(0.0, CODE_LO);
    for (var k = 0u; k < select(0u, 16u, lid == 0u); k++) {
        all = merge_squares(all, Squares(rake[k], rake_codes[k]));
    }
    let total = all.s;
    let top = all.code;
    if (lid == 0u) {
        // This window's share of the norm (the whole norm when the window has whole groups).
        var r = ldexp(sqrt(total), i32(top) - 127);
        if ((p.norms_role & NORMS_ACCUMULATE) != 0u) {
            r = scaled_hypot(norms[p.group_base + g], r);
        }
        if ((p.norms_role & NORMS_FINISH) == 0u) {
            norms[p.group_base + g] = r;
            return;
        }
        if (r < p.zero_below) {
            r = 0.0;
        }
        norms[p.group_base + g] = r;
        v[p.group_base + g] = r;
    }
}
