// The entry point of the kernels of one thread per element: the module's uniform `p` has
// `len` elements, `fold_x` and `total_wg` (its folded grid, `Grid::for_items` on the host),
// and the kernel's file defines `fn apply(i: u32)`, what thread i does for element i < p.len.

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = grid_element(wg, lid, p.fold_x, p.total_wg, p.len);
    if (i < p.len) {
        apply(i);
    }
}
