// Batched 2D transpose: dst[b][c][r] = src[b][r][c] for a [batch][rows][cols] source.
// NCHW -> NHWC is rows = C, cols = H*W; NHWC -> NCHW is rows = H*W, cols = C.
// TRANSPOSE_TILE x (WORKGROUP_SIZE / TRANSPOSE_TILE) threads move a square tile of
// TRANSPOSE_TILE (32, from the host) through workgroup memory (padded against bank
// conflicts), so both the read and the write are coalesced. `TransposeParams` comes from the
// host.

const TILE_ROWS: u32 = WORKGROUP_SIZE / TRANSPOSE_TILE;
const TILE_STRIDE: u32 = TRANSPOSE_TILE + 1u;

@group(0) @binding(0) var<uniform> p: TransposeParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

var<workgroup> tile: array<f32, TRANSPOSE_TILE * TILE_STRIDE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let wid = linear_workgroup(wg, p.fold_x);
    if (wid >= p.total_wg) { return; }
    let tc = wid % p.tiles_c;
    let rest = wid / p.tiles_c;
    let tr = rest % p.tiles_r;
    let b = rest / p.tiles_r;
    let lx = lid % TRANSPOSE_TILE;
    let ly = lid / TRANSPOSE_TILE;
    let base = b * p.rows * p.cols;
    for (var j = ly; j < TRANSPOSE_TILE; j += TILE_ROWS) {
        let r = tr * TRANSPOSE_TILE + j;
        let c = tc * TRANSPOSE_TILE + lx;
        if (r < p.rows && c < p.cols) {
            tile[j * TILE_STRIDE + lx] = src[base + r * p.cols + c];
        }
    }
    workgroupBarrier();
    for (var j = ly; j < TRANSPOSE_TILE; j += TILE_ROWS) {
        let c = tc * TRANSPOSE_TILE + j;
        let r = tr * TRANSPOSE_TILE + lx;
        if (r < p.rows && c < p.cols) {
            dst[base + c * p.rows + r] = tile[lx * TILE_STRIDE + j];
        }
    }
}
