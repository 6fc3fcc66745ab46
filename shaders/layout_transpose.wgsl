// Batched 2D transpose: dst[b][c][r] = src[b][r][c] for a [batch][rows][cols] source.
// NCHW -> NHWC is rows = C, cols = H*W; NHWC -> NCHW is rows = H*W, cols = C.
// 32x8 threads move a 32x32 tile through workgroup memory (padded against bank conflicts),
// so both the read and the write are coalesced.

struct TransposeParams {
    batch: u32,
    rows: u32,
    cols: u32,
    tiles_r: u32,
    tiles_c: u32,
    fold_x: u32,
    total_wg: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: TransposeParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

var<workgroup> tile: array<f32, 1056>; // 32 x 33

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let wid = wg.x + wg.y * p.fold_x;
    if (wid >= p.total_wg) {
        return;
    }
    let tc = wid % p.tiles_c;
    let rest = wid / p.tiles_c;
    let tr = rest % p.tiles_r;
    let b = rest / p.tiles_r;
    let lx = lid % 32u;
    let ly = lid / 32u;
    let base = b * p.rows * p.cols;
    for (var j = ly; j < 32u; j += 8u) {
        let r = tr * 32u + j;
        let c = tc * 32u + lx;
        if (r < p.rows && c < p.cols) {
            tile[j * 33u + lx] = src[base + r * p.cols + c];
        }
    }
    workgroupBarrier();
    for (var j = ly; j < 32u; j += 8u) {
        let c = tc * 32u + j;
        let r = tr * 32u + lx;
        if (r < p.rows && c < p.cols) {
            dst[base + c * p.rows + r] = tile[lx * 33u + j];
        }
    }
}
