// GrOWL prox of a weight tensor viewed as [outer][groups][inner] (rows: outer = 1; columns of
// [out, in]: inner = 1; conv input channels: outer = c_out, inner = kh * kw):
//   growl_norms    r_g = ||group g||_2 (0 below f32 epsilon), copied to v for the OWL prox
//   (the OWL prox of v, in place: owl_*.wgsl)
//   growl_rescale  every element of group g times v_g / r_g (zero groups stay zero)
// Both walk their elements 256 apart. Stepping 256 elements moves (o, i) by
// (step_o, step_i) = divmod(256, inner) plus a carry, so indices advance with additions and
// compares only: an integer division per element would dominate on GPUs without a divider.

struct GrowlParams {
    outer: u32,
    groups: u32,
    inner: u32,
    len: u32,
    fold_x: u32,
    total_wg: u32,
    group_len: u32,
    step_o: u32,    // 256 / inner
    step_i: u32,    // 256 % inner
    step_g: u32,    // (256 / inner) % groups
    group_base: u32, // a window's first group (tensors larger than a binding: rows)
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: GrowlParams;
