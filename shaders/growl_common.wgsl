// GrOWL prox of a weight tensor viewed as [outer][groups][inner] (rows: outer = 1; columns of
// [out, in]: inner = 1; conv input channels: outer = c_out, inner = kh * kw):
//   growl_norms    r_g = ||group g||_2 (0 below the plan's threshold), copied to v for the OWL prox
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
    group_base: u32, // a window's first group (row tensors larger than a binding)
    // growl_norms over windows of outer slabs (interleaved tensors larger than a binding):
    // bit 0 combines the partial norm earlier windows left in `norms` (a scaled hypot); bit 1
    // finishes (threshold, new norms). A window of whole groups has only bit 1.
    norms_role: u32,
    // growl_norms: norms below this are zero (the plan's `GrowlOptions::zero_below`).
    zero_below: f32,
    // growl_rescale_quads.wgsl: 256 quads step (g, i / 4) by these; its grid.
    quad_step_g: u32,
    quad_step_i: u32,
    quad_total_wg: u32,
}

const NORMS_ACCUMULATE: u32 = 1u;
const NORMS_FINISH: u32 = 2u;

@group(0) @binding(0) var<uniform> p: GrowlParams;
