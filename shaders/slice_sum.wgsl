// The fixed-order sum of `slices` slices of the module's `partials`, `stride` apart, at
// element i: partials[i] + partials[stride + i] + ... (split-K partials, window partials).
fn sum_of_slices(i: u32, slices: u32, stride: u32) -> f32 {
    var s = 0.0;
    for (var k = 0u; k < slices; k++) {
        s += partials[k * stride + i];
    }
    return s;
}
