// Momentum SGD with weight decay and a group mask, TensorFlow's form:
//   g' = g + weight_decay * w          (the gradient of 0.5 * weight_decay * |w|^2 added)
//   v  = momentum * v + g'
//   w  = w - lr * v
// and, with a mask, w = v = 0 in the groups whose mask is 0 (they stay zero for good).
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<u32>;
@group(0) @binding(3) var<storage, read_write> weight: array<f32>;
@group(0) @binding(4) var<storage, read_write> velocity: array<f32>;

fn apply(i: u32) {
    let w = weight[i];
    let v = p.momentum * velocity[i] + (grad[i] + p.weight_decay * w);
    let w_new = w - p.lr * v;
    let keep = p.has_mask == 0u || mask[group_of(i)] != 0u;
    weight[i] = select(0.0, w_new, keep);
    velocity[i] = select(0.0, v, keep);
}
