//! CPU twins of the conv kernels: readable direct loops with f64 accumulation.
//!
//! Same layouts as the GPU ops (see [`Conv2dShape`]). Used by the tests, and as the baseline
//! in the benches and the report. The `_f64` variants take and return f64 (finite-difference
//! checks); the plain ones take f32 and round the f64 result once.
//!
//! The shape must be valid ([`Conv2dShape::validate`]) and slices of the right length; these
//! functions panic otherwise (they are references, not a public GPU path).

use super::Conv2dShape;

struct Dims {
    n: usize,
    cin: usize,
    cout: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    kh: usize,
    kw: usize,
    cig: usize,
    cog: usize,
}

fn dims(s: &Conv2dShape) -> Dims {
    let [oh, ow] = s.validate().expect("cpu twin: invalid shape");
    Dims {
        n: s.batch as usize,
        cin: s.in_channels as usize,
        cout: s.out_channels as usize,
        h: s.in_size[0] as usize,
        w: s.in_size[1] as usize,
        oh: oh as usize,
        ow: ow as usize,
        kh: s.kernel[0] as usize,
        kw: s.kernel[1] as usize,
        cig: s.in_per_group() as usize,
        cog: s.out_per_group() as usize,
    }
}

/// Visits every (output position, input position, weight index) triple of the convolution:
/// `f(out_index, in_index, weight_index)`. All three ops are sums over these triples.
fn for_each_tap(s: &Conv2dShape, mut f: impl FnMut(usize, usize, usize)) {
    let d = dims(s);
    let (sh, sw) = (s.stride[0] as isize, s.stride[1] as isize);
    let (ph, pw) = (s.padding[0] as isize, s.padding[1] as isize);
    let (dh, dw) = (s.dilation[0] as isize, s.dilation[1] as isize);
    for b in 0..d.n {
        for co in 0..d.cout {
            let g = co / d.cog;
            for oy in 0..d.oh {
                for ox in 0..d.ow {
                    let out_i = ((b * d.cout + co) * d.oh + oy) * d.ow + ox;
                    for ci in 0..d.cig {
                        let c = g * d.cig + ci;
                        for ky in 0..d.kh {
                            let y = oy as isize * sh - ph + ky as isize * dh;
                            if y < 0 || y >= d.h as isize {
                                continue;
                            }
                            for kx in 0..d.kw {
                                let x = ox as isize * sw - pw + kx as isize * dw;
                                if x < 0 || x >= d.w as isize {
                                    continue;
                                }
                                let in_i = ((b * d.cin + c) * d.h + y as usize) * d.w + x as usize;
                                let w_i = ((co * d.cig + ci) * d.kh + ky) * d.kw + kx;
                                f(out_i, in_i, w_i);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Forward pass in f64: `output = conv(input, weight) + bias`.
pub fn forward_f64(
    s: &Conv2dShape,
    input: &[f64],
    weight: &[f64],
    bias: Option<&[f64]>,
) -> Vec<f64> {
    let d = dims(s);
    let plane = d.oh * d.ow;
    let mut out = vec![0.0; s.output_len()];
    for_each_tap(s, |o, i, w| out[o] += input[i] * weight[w]);
    if let Some(bias) = bias {
        for (o, v) in out.iter_mut().enumerate() {
            *v += bias[(o / plane) % d.cout];
        }
    }
    out
}

/// Input gradient in f64: `grad_input[i] = sum over taps of grad_output[o] * weight[w]`.
pub fn backward_data_f64(s: &Conv2dShape, grad_output: &[f64], weight: &[f64]) -> Vec<f64> {
    let mut gi = vec![0.0; s.input_len()];
    for_each_tap(s, |o, i, w| gi[i] += grad_output[o] * weight[w]);
    gi
}

/// Weight gradient in f64: `grad_weight[w] = sum over batch and positions of grad_output[o] * input[i]`.
pub fn backward_weight_f64(s: &Conv2dShape, grad_output: &[f64], input: &[f64]) -> Vec<f64> {
    let mut gw = vec![0.0; s.weight_len()];
    for_each_tap(s, |o, i, w| gw[w] += grad_output[o] * input[i]);
    gw
}

/// Bias gradient in f64: the sum of `grad_output` over batch and positions, per channel.
pub fn backward_bias_f64(s: &Conv2dShape, grad_output: &[f64]) -> Vec<f64> {
    let d = dims(s);
    let plane = d.oh * d.ow;
    let mut gb = vec![0.0; d.cout];
    for (o, v) in grad_output.iter().enumerate() {
        gb[(o / plane) % d.cout] += v;
    }
    gb
}

fn widen(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| f64::from(v)).collect()
}

fn narrow(x: Vec<f64>) -> Vec<f32> {
    x.into_iter().map(|v| v as f32).collect()
}

/// Forward pass (f32 in and out, f64 accumulation).
pub fn forward(s: &Conv2dShape, input: &[f32], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let b = bias.map(widen);
    narrow(forward_f64(s, &widen(input), &widen(weight), b.as_deref()))
}

/// Input gradient (f32 in and out, f64 accumulation).
pub fn backward_data(s: &Conv2dShape, grad_output: &[f32], weight: &[f32]) -> Vec<f32> {
    narrow(backward_data_f64(s, &widen(grad_output), &widen(weight)))
}

/// Weight gradient (f32 in and out, f64 accumulation).
pub fn backward_weight(s: &Conv2dShape, grad_output: &[f32], input: &[f32]) -> Vec<f32> {
    narrow(backward_weight_f64(s, &widen(grad_output), &widen(input)))
}

/// Bias gradient (f32 in and out, f64 accumulation).
pub fn backward_bias(s: &Conv2dShape, grad_output: &[f32]) -> Vec<f32> {
    narrow(backward_bias_f64(s, &widen(grad_output)))
}

/// NCHW -> NHWC on the host.
pub fn nchw_to_nhwc(x: &[f32], n: usize, c: usize, h: usize, w: usize) -> Vec<f32> {
    let mut y = vec![0.0; x.len()];
    for b in 0..n {
        for ch in 0..c {
            for p in 0..h * w {
                y[(b * h * w + p) * c + ch] = x[(b * c + ch) * h * w + p];
            }
        }
    }
    y
}
