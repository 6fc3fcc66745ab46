// Masks for good the groups whose norm is at most the threshold: mask[g] = 0 when
// norms[g] <= threshold (or is NaN); a masked group stays masked. One thread per group.
@group(0) @binding(1) var<storage, read> norms: array<f32>;
@group(0) @binding(2) var<storage, read_write> mask: array<u32>;

fn apply(g: u32) {
    let alive = norms[g] > p.threshold;
    mask[g] = select(0u, mask[g], alive);
}
