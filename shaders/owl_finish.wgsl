// y_k = max(slope of the final hull over [k, k + 1], 0) for the k-th largest magnitude,
// written to position payload[k] with the sign of v there (zeros stay zero). The hull is
// verts[0 .. offsets[1]) (its first vertex is P_0, its last P_n).
@group(0) @binding(2) var<storage, read> verts: array<u32>;
@group(0) @binding(3) var<storage, read> offsets: array<u32>;
@group(0) @binding(4) var<storage, read> payload: array<u32>;
@group(0) @binding(5) var<storage, read_write> v_out: array<f32>;

// The hull segment [verts[t], verts[t + 1]] containing [k, k + 1].
fn segment_of(k: u32) -> u32 {
    var l = 0u;
    var r = offsets[1] - 2u;
    while (l < r) {
        let mid = (l + r + 1u) / 2u;
        if (verts[mid] <= k) {
            l = mid;
        } else {
            r = mid - 1u;
        }
    }
    return l;
}

fn stage(k: u32) {
    if (k >= p.n) { return; }
    let t = segment_of(k);
    let a = verts[t];
    let b = verts[t + 1u];
    let d = rise(a, b);
    let slope = scale2(i64_to_f32(d.m) / f32(b - a), i32(d.code) - 155);
    let i = payload[k];
    // In place: v_out holds the input v on entry.
    v_out[i] = sign(v_out[i]) * max(slope, 0.0);
}

// The PAV block id of the k-th largest magnitude, at its position.
@compute @workgroup_size(WORKGROUP_SIZE)
fn blocks(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let k = linear_thread(wg, lid, p.fold_x);
    if (k >= p.n) { return; }
    v_out[payload[k]] = bitcast<f32>(segment_of(k));
}
