// Common part of the elementwise training kernels (train_relu_*, train_sgd, train_mask_*):
// one thread per element over a folded 1D grid, and the group of an element under a GrOWL /
// tie layout. The entry point is here: each kernel's file defines `fn apply(i: u32)`, what
// thread i does for element i < p.len.

// EltParams (the uniform of every elementwise kernel) comes from the host.
@group(0) @binding(0) var<uniform> p: EltParams;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = grid_element(wg, lid, p.fold_x, p.total_wg, p.len);
    if (i < p.len) {
        apply(i);
    }
}

// The group of element e under the layout (`group_kind`, `inner`, `groups`).
fn group_of(e: u32) -> u32 {
    switch p.group_kind {
        case 0u: {
            return e / p.inner;
        }
        case 1u: {
            return e % p.groups;
        }
        default: {
            return (e / p.inner) % p.groups;
        }
    }
}
