// GrOWL prox of a weight tensor viewed as [outer][groups][inner] (rows: outer = 1; columns of
// [out, in]: inner = 1; conv input channels: outer = c_out, inner = kh * kw):
//   growl_norms    r_g = ||group g||_2 (0 below the plan's threshold), copied to v for the OWL prox
//   (the OWL prox of v, in place: owl_*.wgsl)
//   growl_rescale  every element of group g times v_g / r_g (zero groups stay zero)
// Both walk their elements WORKGROUP_SIZE apart. Stepping WORKGROUP_SIZE elements moves
// (o, i) by (step_o, step_i) = divmod(WORKGROUP_SIZE, inner) plus a carry, so indices advance
// with additions and compares only: an integer division per element would dominate on GPUs
// without a divider.

// The uniform struct `GrowlParams` (its fields documented on the Rust side) and the
// `norms_role` bits NORMS_ACCUMULATE and NORMS_FINISH come from the host.

@group(0) @binding(0) var<uniform> p: GrowlParams;
