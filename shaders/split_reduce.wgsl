// Adds split-K partial sums in a fixed order (split 0, 1, 2, ...) and an optional
// per-channel bias: out[i] = sum_s partials[s * split_stride + i] + bias[(i / inner) % channels].
// One thread per output element (the entry point is elementwise.wgsl's); the loop runs
// `splits` times (the host keeps it <= 4096). `SplitParams` comes from the host.

@group(0) @binding(0) var<uniform> p: SplitParams;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn apply(i: u32) {
    var s = sum_of_slices(i, p.splits, p.split_stride);
    if (p.has_bias != 0u) {
        s += bias[(i / p.inner) % p.channels];
    }
    out[i] = s;
}
