// Common part of the elementwise training kernels (train_relu_*, train_sgd, train_mask_*):
// one thread per element over a folded 1D grid, and the group of an element under a GrOWL /
// tie layout.

struct EltParams {
    len: u32,
    fold_x: u32,
    total_wg: u32,
    // The group of element e: 0 rows (e / inner), 1 columns (e % groups), 2 conv input
    // channels ((e / inner) % groups).
    group_kind: u32,
    inner: u32,
    groups: u32,
    has_mask: u32,
    _pad: u32,
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    threshold: f32,
}

@group(0) @binding(0) var<uniform> p: EltParams;

// The element of this invocation, or p.len when it has none.
fn element(wg: vec3<u32>, lid: u32) -> u32 {
    let wid = wg.x + wg.y * p.fold_x;
    let i = wid * 256u + lid;
    return select(p.len, i, wid < p.total_wg && i < p.len);
}

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
