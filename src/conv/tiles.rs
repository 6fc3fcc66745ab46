//! The GEMM tiles of the conv kernels and the K split bounds: which tile a launch runs, its
//! override constants (`WG_M`, `WG_N`, `KT` in `shaders/conv_gemm_common.wgsl`), and which
//! declared kernel and variant that is.

use crate::dispatch::WORKGROUP_SIZE;

/// Longest K range one workgroup walks: bounds every loop far below the 65,535 iterations
/// software drivers allow per invocation.
pub(super) const MAX_K_CHUNK: u32 = 16384;
/// Shortest K range worth a split of its own.
pub(super) const MIN_K_CHUNK: u32 = 256;
/// Most splits the reduction pass adds per element.
pub(super) const MAX_SPLITS: u32 = 4096;
/// K steps a skinny or narrow tile stages per round (`SKINNY_K` in WGSL): one per thread.
pub(super) const SKINNY_K: u32 = WORKGROUP_SIZE;

/// Workgroups a launch aims for before it splits K to fill the device (a few per compute
/// unit on large GPUs; CPU "GPUs" have a handful of cores and only pay for extra splits).
pub(super) fn target_workgroups(device_type: wgpu::DeviceType) -> u32 {
    match device_type {
        wgpu::DeviceType::Cpu => 16,
        _ => 1024,
    }
}

/// K steps per chunk when `k` is cut into `splits` chunks: whole 16s, at least 16.
pub(super) fn chunk_of(k: u32, splits: u32) -> u32 {
    k.max(1).div_ceil(splits).div_ceil(16) * 16
}

/// (WG_M, WG_N, KT, CPT) of each [`Tile`], in declaration order. A tile has 4 * WG_M rows
/// and 4 * WG_N columns; register tiles (the pointwise ones included) have WG_M x WG_N
/// threads and K depth KT, skinny ones (`skinny` entry point, WG_M = 1) ignore KT and give
/// each thread CPT columns.
const TILE_SHAPES: [(u32, u32, u32, u32); 16] = [
    (16, 16, 16, 1),
    (4, 64, 8, 1),
    (64, 4, 8, 1),
    (1, 64, 8, 1),
    (1, 4, 8, 1),
    (8, 32, 16, 1),
    (32, 8, 16, 1),
    (1, 16, 8, 1),
    (1, 32, 8, 1),
    (1, 128, 8, 2),
    (1, 256, 8, 4),
    (16, 16, 16, 1),
    (4, 64, 8, 1),
    (64, 4, 8, 1),
    (16, 32, 16, 1),
    (16, 64, 8, 1),
];

// Register tiles fill the workgroup, and their loaders need KT to divide it; skinny tiles
// have one row of threads, 4 * WG_N columns dividing the workgroup into a power-of-two count
// of slices (their tree halves it).
const _: () = {
    let mut i = 0;
    while i < TILE_SHAPES.len() {
        let (wm, wn, kt, cpt) = TILE_SHAPES[i];
        assert!(WORKGROUP_SIZE.is_multiple_of(kt));
        // Pointwise K tiles must not cross a K block (whole 16s; see `pointwise.rs`).
        assert!(16 % kt == 0);
        if Tile::EVERY[i].is_skinny() {
            // Several columns per thread only with one slice (no tree), at most 4.
            assert!(cpt == 1 || (cpt <= 4 && 4 * wn == cpt * WORKGROUP_SIZE));
            assert!(wm == 1 && WORKGROUP_SIZE.is_multiple_of(4 * wn / cpt));
            assert!((WORKGROUP_SIZE / (4 * wn / cpt)).is_power_of_two());
        } else {
            // A thread owns bm x bn register blocks; the A and B tiles fit WebGPU's 16 KiB of
            // workgroup memory (with the 4-byte non-finite mark).
            let (bm, bn) = Tile::EVERY[i].blocks();
            assert!(wm * wn == WORKGROUP_SIZE * bm * bn && cpt == 1);
            assert!(wm.is_multiple_of(bm) && wn.is_multiple_of(bn));
            assert!((kt * wm + kt * wn) * 16 + 4 <= 16384);
        }
        assert!(Tile::EVERY[i] as usize == i);
        i += 1;
    }
};

/// The tile shapes of the conv GEMMs. [`Conv2d::plan`](super::Conv2d::plan) picks one of the
/// first five per launch, the one that wastes the least padding, or for a pointwise shape
/// (see [`Tile::POINTWISE`]) a pointwise tile where it costs less; a tuned plan
/// ([`Tuning`](super::Tuning)) may run any of them. Every tile gives the same result up to
/// the order of additions; register tiles (`Square`, `Wide`, `Tall`, `HalfWide`,
/// `HalfTall`, and the pointwise ones) and the one-slice skinny tiles (`Skinny`, `SkinnyX2`,
/// `SkinnyX4`) add K in order, so at equal K splits they give the same bits (a pointwise
/// weight gradient whose positions per image are not a multiple of 16 cuts its K splits
/// elsewhere, see [`Tile::POINTWISE`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tile {
    /// 64 x 64, a 4 x 4 register block per thread, K depth 16.
    Square,
    /// 16 rows x 256 columns (few output channels), K depth 8.
    Wide,
    /// 256 rows x 16 columns (few columns, e.g. a fully connected layer), K depth 8.
    Tall,
    /// 4 rows x 256 columns, one column per thread (`conv_gemm_skinny.wgsl`): GEMMs of at
    /// most 4 rows, such as the input gradient of 1-4 input channels or a depthwise conv.
    Skinny,
    /// 4 rows x 16 columns, 16 threads per column splitting K (`conv_gemm_skinny.wgsl`):
    /// GEMMs of few columns and long K, such as a depthwise weight gradient.
    Narrow,
    /// 32 rows x 128 columns, K depth 16: between `Square` and `Wide`.
    HalfWide,
    /// 128 rows x 32 columns, K depth 16: between `Square` and `Tall`.
    HalfTall,
    /// 4 rows x 64 columns, 4 threads per column splitting K: between `Narrow` and `Skinny`.
    Slim,
    /// 4 rows x 128 columns, 2 threads per column splitting K.
    HalfSkinny,
    /// 4 rows x 512 columns, two columns per thread: each staged K step's weights and tap
    /// feed two columns.
    SkinnyX2,
    /// 4 rows x 1,024 columns, four columns per thread.
    SkinnyX4,
    /// 64 x 64 as `Square`, on the plain-GEMM kernel of pointwise shapes
    /// (`conv_gemm_pointwise.wgsl`).
    Pointwise,
    /// 16 x 256 as `Wide`, on the plain-GEMM kernel.
    PointwiseWide,
    /// 256 x 16 as `Tall`, on the plain-GEMM kernel.
    PointwiseTall,
    /// 64 x 128, K depth 16, on the plain-GEMM kernel: 4 x 8 outputs per thread (two register
    /// blocks side by side), so each K step loads 3 vec4 for 32 FMAs.
    PointwiseX2,
    /// 64 x 256, K depth 8, on the plain-GEMM kernel: 8 x 8 outputs per thread (2 x 2
    /// register blocks), 4 vec4 loads for 64 FMAs per K step.
    PointwiseX4,
}

/// The tiles of the register-tile entry point `main`, in the order of its variants.
pub(super) const MAIN_TILES: [Tile; 5] = [
    Tile::Square,
    Tile::Wide,
    Tile::Tall,
    Tile::HalfWide,
    Tile::HalfTall,
];
/// The tiles of the `skinny` entry point, in the order of its variants.
pub(super) const SKINNY_TILES: [Tile; 6] = [
    Tile::Skinny,
    Tile::Narrow,
    Tile::Slim,
    Tile::HalfSkinny,
    Tile::SkinnyX2,
    Tile::SkinnyX4,
];

/// The override sets of the plain-GEMM kernel's variants ([`Tile::POINTWISE`] order); it has
/// no `CPT`.
pub(super) static POINTWISE_VARIANTS: [&[(&str, f64)]; 5] = [
    &Tile::POINTWISE[0].pointwise_constants(),
    &Tile::POINTWISE[1].pointwise_constants(),
    &Tile::POINTWISE[2].pointwise_constants(),
    &Tile::POINTWISE[3].pointwise_constants(),
    &Tile::POINTWISE[4].pointwise_constants(),
];
/// The override sets of `main`'s variants ([`MAIN_TILES`] order).
pub(super) static MAIN_VARIANTS: [&[(&str, f64)]; 5] = [
    &MAIN_TILES[0].constants(),
    &MAIN_TILES[1].constants(),
    &MAIN_TILES[2].constants(),
    &MAIN_TILES[3].constants(),
    &MAIN_TILES[4].constants(),
];
/// The override sets of `skinny`'s variants ([`SKINNY_TILES`] order).
pub(super) static SKINNY_VARIANTS: [&[(&str, f64)]; 6] = [
    &SKINNY_TILES[0].constants(),
    &SKINNY_TILES[1].constants(),
    &SKINNY_TILES[2].constants(),
    &SKINNY_TILES[3].constants(),
    &SKINNY_TILES[4].constants(),
    &SKINNY_TILES[5].constants(),
];

impl Tile {
    /// Every tile that runs on any shape, in declaration order (the implicit-GEMM kernels).
    pub const ALL: [Tile; 11] = [
        Tile::Square,
        Tile::Wide,
        Tile::Tall,
        Tile::Skinny,
        Tile::Narrow,
        Tile::HalfWide,
        Tile::HalfTall,
        Tile::Slim,
        Tile::HalfSkinny,
        Tile::SkinnyX2,
        Tile::SkinnyX4,
    ];

    /// The tiles of the plain-GEMM kernel (`conv_gemm_pointwise.wgsl`), which runs only
    /// pointwise shapes: a 1 x 1 kernel, stride 1, no padding, one group (1 x 1 convs and
    /// dense layers, [`crate::train::Linear`]). A plan forced to run one on another shape
    /// fails with [`Error::Shape`](crate::Error::Shape).
    pub const POINTWISE: [Tile; 5] = [
        Tile::Pointwise,
        Tile::PointwiseWide,
        Tile::PointwiseTall,
        Tile::PointwiseX2,
        Tile::PointwiseX4,
    ];

    /// Every tile, in declaration order: [`Tile::ALL`] then [`Tile::POINTWISE`].
    const EVERY: [Tile; 16] = {
        let mut every = [Tile::Square; 16];
        let mut i = 0;
        while i < every.len() {
            every[i] = if i < Tile::ALL.len() {
                Tile::ALL[i]
            } else {
                Tile::POINTWISE[i - Tile::ALL.len()]
            };
            i += 1;
        }
        every
    };

    /// The tiles the untuned heuristic ([`Tile::pick`]) chooses from.
    const HEURISTIC: [Tile; 5] = [
        Tile::Square,
        Tile::Wide,
        Tile::Tall,
        Tile::Skinny,
        Tile::Narrow,
    ];

    /// (WG_M, WG_N, KT, CPT): see [`TILE_SHAPES`].
    const fn dims(self) -> (u32, u32, u32, u32) {
        TILE_SHAPES[self as usize]
    }

    /// The pipeline constants of this tile in `conv_gemm_common.wgsl` and
    /// `conv_gemm_skinny.wgsl`.
    pub(super) const fn constants(self) -> [(&'static str, f64); 4] {
        let [wm, wn, kt] = self.register_constants();
        [wm, wn, kt, ("CPT", self.dims().3 as f64)]
    }

    /// The pipeline constants of this tile in `conv_gemm_common.wgsl` alone (the plain-GEMM
    /// kernel, which has no `CPT`).
    const fn register_constants(self) -> [(&'static str, f64); 3] {
        let (wm, wn, kt, _) = self.dims();
        [("WG_M", wm as f64), ("WG_N", wn as f64), ("KT", kt as f64)]
    }

    /// Register blocks (4 x 4 each) per thread, rows x columns (`BLK_M`, `BLK_N` in
    /// `conv_gemm_pointwise.wgsl`).
    pub(super) const fn blocks(self) -> (u32, u32) {
        match self {
            Tile::PointwiseX2 => (1, 2),
            Tile::PointwiseX4 => (2, 2),
            _ => (1, 1),
        }
    }

    /// The pipeline constants of a pointwise tile (`conv_gemm_pointwise.wgsl`).
    const fn pointwise_constants(self) -> [(&'static str, f64); 5] {
        let [wm, wn, kt] = self.register_constants();
        let (bm, bn) = self.blocks();
        [wm, wn, kt, ("BLK_M", bm as f64), ("BLK_N", bn as f64)]
    }

    /// Whether this tile runs the plain-GEMM kernel of pointwise shapes.
    pub fn is_pointwise(self) -> bool {
        matches!(
            self,
            Tile::Pointwise
                | Tile::PointwiseWide
                | Tile::PointwiseTall
                | Tile::PointwiseX2
                | Tile::PointwiseX4
        )
    }

    /// Rows of C one workgroup computes.
    pub fn rows(self) -> u32 {
        4 * self.dims().0
    }

    /// Columns of C one workgroup computes.
    pub fn cols(self) -> u32 {
        4 * self.dims().1
    }

    /// Rows x columns this tile computes for an `m x n` GEMM (whole tiles).
    pub(super) fn padded_area(self, m: u32, n: u32) -> u64 {
        let whole = |v: u32, t: u32| u64::from(v).div_ceil(u64::from(t)) * u64::from(t);
        whole(m, self.rows()) * whole(n, self.cols())
    }

    /// Whether this tile runs the `skinny` entry point (else the register-tile `main`).
    pub(super) const fn is_skinny(self) -> bool {
        matches!(
            self,
            Tile::Skinny
                | Tile::Narrow
                | Tile::Slim
                | Tile::HalfSkinny
                | Tile::SkinnyX2
                | Tile::SkinnyX4
        )
    }

    /// Whether several threads share a column, splitting its K steps (tiles of the `skinny`
    /// entry point narrower than the workgroup).
    // Used by the measuring tuner, which is native only.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(super) fn splits_k_across_threads(self) -> bool {
        self.is_skinny() && self.cols() / self.dims().3 < WORKGROUP_SIZE
    }

    /// The index of this tile among its entry point's variants.
    pub(super) fn variant(self) -> usize {
        let family: &[Tile] = if self.is_skinny() {
            &SKINNY_TILES
        } else if self.is_pointwise() {
            &Tile::POINTWISE
        } else {
            &MAIN_TILES
        };
        family.iter().position(|&t| t == self).unwrap_or(0)
    }

    /// The name [`Conv2dPlan::tiles`](super::Conv2dPlan::tiles) reports (and the tuning
    /// cache's text uses): `square`, `wide`, `tall`, `skinny`, `narrow`, `half_wide`,
    /// `half_tall`, `slim`, `half_skinny`, `skinny_x2`, `skinny_x4`, `pointwise`,
    /// `pointwise_wide`, `pointwise_tall`, `pointwise_x2`, `pointwise_x4`.
    pub fn name(self) -> &'static str {
        match self {
            Tile::Square => "square",
            Tile::Wide => "wide",
            Tile::Tall => "tall",
            Tile::Skinny => "skinny",
            Tile::Narrow => "narrow",
            Tile::HalfWide => "half_wide",
            Tile::HalfTall => "half_tall",
            Tile::Slim => "slim",
            Tile::HalfSkinny => "half_skinny",
            Tile::SkinnyX2 => "skinny_x2",
            Tile::SkinnyX4 => "skinny_x4",
            Tile::Pointwise => "pointwise",
            Tile::PointwiseWide => "pointwise_wide",
            Tile::PointwiseTall => "pointwise_tall",
            Tile::PointwiseX2 => "pointwise_x2",
            Tile::PointwiseX4 => "pointwise_x4",
        }
    }

    /// The tile named `name` ([`Tile::name`]).
    pub fn from_name(name: &str) -> Option<Tile> {
        Tile::EVERY.into_iter().find(|t| t.name() == name)
    }

    /// The tile that wastes least: padded area (rows x columns computed), doubled for
    /// skinny tiles, whose threads reuse each loaded value 4 times instead of 16, and tripled
    /// for narrow ones, which also stage every K step per 16 columns and add a tree. Narrow
    /// tiles need a total K of one staged round ([`SKINNY_K`]) or more. Register tiles win
    /// ties.
    pub(super) fn pick(m: u32, n: u32, k: u32) -> Tile {
        let cost = |t: Tile| {
            let area = t.padded_area(m, n);
            match t {
                Tile::Skinny => 2 * area,
                Tile::Narrow if k >= SKINNY_K => 3 * area,
                Tile::Narrow => u64::MAX,
                _ => area,
            }
        };
        Tile::HEURISTIC
            .into_iter()
            .min_by_key(|&t| cost(t))
            .unwrap_or(Tile::Square)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The variant a plan picks for a tile holds that tile's constants.
    #[test]
    fn each_tile_maps_to_its_variant() {
        for t in Tile::EVERY {
            if t.is_pointwise() {
                let constants = t.pointwise_constants();
                assert_eq!(POINTWISE_VARIANTS[t.variant()], &constants, "{t:?}");
                continue;
            }
            let sets: &[&[(&str, f64)]] = if t.is_skinny() {
                &SKINNY_VARIANTS
            } else {
                &MAIN_VARIANTS
            };
            assert_eq!(sets[t.variant()], &t.constants()[..], "{t:?}");
        }
    }
}
