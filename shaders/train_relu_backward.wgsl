// ReLU backward from the forward's output: dx = dy where y > 0, else 0.
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

fn apply(i: u32) {
    dx[i] = select(0.0, dy[i], y[i] > 0.0);
}
