// The gather half of the columns path of the input gradient (src/conv/col2im.rs): the
// columns GEMM has written cols[b][(ci * k_h + kh) * k_w + kw][oh][ow] = sum_co
// w[co][ci][kh][kw] dy[b][co][oh][ow], and input-gradient element (b, ci, ih, iw) adds, in
// the fixed order kh then kw, the columns of the taps that reach it from inside the output:
// oh = (ih + pad_h - kh * dil_h) / stride_h when that divides exactly and lands in
// [0, out_h), the same for the width. One thread per input-gradient element; neighbouring
// threads (iw) read neighbouring columns (ow) at stride 1, so the loads coalesce. The loop
// runs k_h * k_w times (the host keeps that <= MAX_COL2IM_TAPS). `ConvParams` (the shape's
// values, and the gather's grid in fold_x and total_wg) comes from the host.

@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<storage, read> cols: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad_in: array<f32>;

// The output coordinate of input coordinate `i` under tap `k` along one axis, or -1 when the
// tap does not reach `i` from inside the output.
fn reaching(i: u32, k: u32, pad: u32, dil: u32, stride: u32, out_len: u32) -> i32 {
    let at = i32(i + pad) - i32(k * dil);
    let o = at / i32(stride);
    return select(-1, o, at >= 0 && o * i32(stride) == at && o < i32(out_len));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let len = p.batch * p.c_in * p.in_h * p.in_w;
    let i = grid_element(wg, lid, p.fold_x, p.total_wg, len);
    if (i >= len) { return; }
    let iw = i % p.in_w;
    let rest = i / p.in_w;
    let ih = rest % p.in_h;
    // (b * c_in + ci): its k_h * k_w column rows start at this plane.
    let image_channel = rest / p.in_h;
    let plane = p.out_h * p.out_w;
    let first_row = image_channel * p.k_h * p.k_w;
    var s = 0.0;
    for (var kh = 0u; kh < p.k_h; kh++) {
        let oh = reaching(ih, kh, p.pad_h, p.dil_h, p.stride_h, p.out_h);
        for (var kw = 0u; kw < p.k_w; kw++) {
            let ow = reaching(iw, kw, p.pad_w, p.dil_w, p.stride_w, p.out_w);
            if (oh >= 0 && ow >= 0) {
                let row = first_row + kh * p.k_w + kw;
                s += cols[row * plane + u32(oh) * p.out_w + u32(ow)];
            }
        }
    }
    grad_in[i] = s;
}
