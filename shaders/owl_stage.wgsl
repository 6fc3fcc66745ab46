// The entry point of the OWL stages (owl_prepare, owl_make_z, owl_leaf, owl_compact,
// owl_bridge, owl_copy, owl_finish): thread t of the folded grid runs the stage's
// `fn stage(t: u32)`, which leaves when t has no work.
@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    stage(linear_thread(wg, lid, p.fold_x));
}
