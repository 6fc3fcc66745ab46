// ReLU: y = x where x > 0 or x is NaN, else +0 (negative values and both zeros). Decided on
// the bits, so drivers that assume no NaN (WGSL allows it for float comparisons) agree.
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

fn apply(i: u32) {
    let bits = bitcast<u32>(x[i]);
    let nan = (bits & 0x7fffffffu) > 0x7f800000u;
    let keep = nan || ((bits >> 31u) == 0u && bits != 0u);
    y[i] = bitcast<f32>(select(0u, bits, keep));
}
