// Source of tie_reduce_runs.wgsl read directly, position by position: level 1 of a map read
// in place (the tensor itself), and every later level (the partials of the level below).

@group(0) @binding(2) var<storage, read> src: array<f32>;
// `src` four values at a time (the same buffer).
@group(0) @binding(6) var<storage, read> src_quads: array<vec4<f32>>;

fn value(pos: u32) -> f32 {
    return src[pos];
}

fn quad(q: u32) -> vec4<f32> {
    return src_quads[q];
}
