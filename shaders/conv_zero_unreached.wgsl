// The input-gradient positions that no kernel tap reaches have a zero gradient: their row lies
// in a stride phase that no tap of the kernel's height meets, or their column in one that no
// tap of its width meets. This writes those zeros after the reached phases' GEMMs (and their
// split reduction), so unreached phases cost one pass in all rather than a launch, a uniform
// and a table each. reached[r] (r < res_h) is 1 when rows ih with ih % stride_h == r are
// reached, reached[res_h + r] the same for columns. One thread per element (the entry point is
// elementwise.wgsl's). `ZeroParams` comes from the host.

@group(0) @binding(0) var<uniform> p: ZeroParams;
@group(0) @binding(1) var<storage, read> reached: array<u32>;
@group(0) @binding(2) var<storage, read_write> grad_in: array<f32>;

fn apply(i: u32) {
    let pix = i % (p.in_h * p.in_w);
    let ih = pix / p.in_w;
    let iw = pix - ih * p.in_w;
    if (reached[ih % p.stride_h] == 0u || reached[p.res_h + iw % p.stride_w] == 0u) {
        grad_in[i] = 0.0;
    }
}
