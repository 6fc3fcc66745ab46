// Common part of the elementwise training kernels (train_relu_*, train_sgd, train_mask_*),
// after elementwise.wgsl (the entry point; each kernel's file defines `fn apply(i: u32)`):
// their uniform, and the group of an element under a GrOWL / tie layout.

// EltParams (the uniform of every elementwise kernel) comes from the host.
@group(0) @binding(0) var<uniform> p: EltParams;

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
