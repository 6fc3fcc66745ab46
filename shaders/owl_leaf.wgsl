// One thread per chunk of CHUNK points: monotone-chain upper hull, vertices (point indices)
// in hull_cap[c * CHUNK ..], vertex count in sizes[c].
@group(0) @binding(2) var<storage, read_write> hull_cap: array<u32>;
@group(0) @binding(3) var<storage, read_write> sizes: array<u32>;

fn stage(c: u32) {
    if (c >= p.chunks) { return; }
    let start = c * CHUNK;
    let end = min(start + CHUNK, p.points);
    var top = 0u;
    for (var k = start; k < end; k++) {
        // Each point is pushed once and popped at most once: at most 3 * CHUNK steps in all.
        loop {
            if (top < 2u) {
                break;
            }
            if (turn(hull_cap[start + top - 2u], hull_cap[start + top - 1u], k) >= 0.0) {
                top -= 1u;
            } else {
                break;
            }
        }
        hull_cap[start + top] = k;
        top += 1u;
    }
    sizes[c] = top;
}
