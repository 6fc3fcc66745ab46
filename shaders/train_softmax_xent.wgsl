// Fused softmax cross-entropy over logits [batch, classes] and labels [batch] (u32), one
// thread per sample:
//   loss_b = log(sum_c exp(z_bc - max_b)) + max_b - z_b,label
//   dlogits_bc = scale * (softmax_bc - [c == label])       (scale = 1 / batch for a mean loss)
//   correct_b = 1 when the first largest logit is the label's.
// A label >= classes gives a NaN loss, no correct prediction and the softmax as gradient.
// The loop over classes is bounded by the host (classes <= MAX_CLASSES in src/train/xent.rs).

// XentParams comes from the host.
@group(0) @binding(0) var<uniform> p: XentParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;
// Per sample: loss (f32 bits) at 2b, correct (0 or 1) at 2b + 1.
@group(0) @binding(4) var<storage, read_write> per_sample: array<u32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let b = grid_element(wg, lid, p.fold_x, p.total_wg, p.batch);
    if (b >= p.batch) { return; }
    let row = b * p.classes;
    var best = logits[row];
    var arg = 0u;
    for (var c = 1u; c < p.classes; c++) {
        let z = logits[row + c];
        if (z > best) {
            best = z;
            arg = c;
        }
    }
    var sum = 0.0;
    for (var c = 0u; c < p.classes; c++) {
        sum += exp(logits[row + c] - best);
    }
    let label = labels[b];
    let in_range = label < p.classes;
    let z_label = select(bitcast<f32>(0x7fc00000u), logits[row + min(label, p.classes - 1u)], in_range);
    let loss = log(sum) + best - z_label;
    for (var c = 0u; c < p.classes; c++) {
        let soft = exp(logits[row + c] - best) / sum;
        dlogits[row + c] = p.scale * (soft - select(0.0, 1.0, c == label));
    }
    per_sample[2u * b] = bitcast<u32>(loss);
    per_sample[2u * b + 1u] = select(0u, 1u, in_range && arg == label);
}
