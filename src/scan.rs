//! Multi-pass (reduce-then-scan) prefix sums over one buffer, level by level: each level
//! scans blocks of 4096 values and writes the block totals, which the next level scans; the
//! totals are then added back down. No spin-waiting. One WGSL scan, `shaders/scan.wgsl`,
//! compiled with two preludes: u32 exclusive (`shaders/scan_u32.wgsl`) and block-scaled
//! fixed-point inclusive (`shaders/owl_scan.wgsl`, the OWL prox's suffix sums; its addition
//! rounds to the coarser grid, so its results depend on the tree, which depends only on the
//! length); binding layout: uniform `p`, `data`, `totals`. Kernels: `scan_u32_block`,
//! `scan_u32_add` here; the OWL prox declares its own pair.

use crate::dispatch::{self, Grid, Kernel, KernelDecl, Recording};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::wgsl;

/// Values one scan workgroup owns (`SCAN_BLOCK` in WGSL).
pub(crate) const SCAN_BLOCK: u32 = 4096;

/// The generic scan, after a prelude declaring its element and uniform.
pub(crate) const SCAN_PART: dispatch::Part = wgsl!("scan");

crate::module!(SCAN_U32 = "scan_u32", [ScanParams], constants: &[("SCAN_BLOCK", SCAN_BLOCK)],
    parts: ["scan_u32", SCAN_PART]);

crate::uniform_struct! {
    /// The uniform block of `shaders/scan_u32.wgsl`.
    struct ScanParams {
        len: u32,
        blocks: u32,
        fold_x: u32,
        total_wg: u32,
    }
}

crate::bindings! {
    /// The exclusive u32 scan's buffers: `data` scanned in place, `totals` one per block.
    struct ScanU32Bindings {
        p @ 0: uniform(ScanParams),
        data @ 1: read_write,
        totals @ 2: read_write,
    }
}

crate::kernel! {
    /// Scans blocks in place and writes their totals.
    SCAN_U32_BLOCK = "scan_u32_block", SCAN_U32, ScanU32Bindings, entry: "scan_block"
}

crate::kernel! {
    /// Adds the scanned totals of earlier blocks.
    SCAN_U32_ADD = "scan_u32_add", SCAN_U32, ScanU32Bindings, entry: "add_block"
}

/// The scan's kernels, for the kernel table.
pub(crate) static KERNELS: &[&KernelDecl] = &[&SCAN_U32_BLOCK, &SCAN_U32_ADD];

/// Binds one level: (uniform, data, totals).
pub(crate) type BindLevel =
    fn(&Kernel, &wgpu::Device, &wgpu::Buffer, &wgpu::Buffer, &wgpu::Buffer) -> wgpu::BindGroup;

/// The two kernels of a scan: `block` (scan blocks, write totals) and `add` (add scanned
/// totals of earlier blocks), and how a level binds its buffers.
#[derive(Debug)]
pub(crate) struct ScanKernels {
    pub(crate) block: Kernel,
    pub(crate) add: Kernel,
    pub(crate) bind: BindLevel,
}

/// The [`ScanKernels`] on `gpu` of the pipelines `block` and `add` (two [`KernelDecl`]s of
/// one scan module), bound as the bindings struct `Bindings { p, data, totals }`:
/// `scan_kernels!(gpu, BLOCK, ADD, Bindings)`.
macro_rules! scan_kernels {
    ($gpu:expr, $block:expr, $add:expr, $Bindings:ident) => {{
        fn bind(
            k: &$crate::dispatch::Kernel,
            device: &wgpu::Device,
            p: &wgpu::Buffer,
            data: &wgpu::Buffer,
            totals: &wgpu::Buffer,
        ) -> wgpu::BindGroup {
            use $crate::dispatch::whole;
            let b = $Bindings {
                p: whole(p),
                data: whole(data),
                totals: whole(totals),
            };
            k.bind(device, &b)
        }
        $crate::scan::ScanKernels {
            block: $gpu.kernel(&$block, 0),
            add: $gpu.kernel(&$add, 0),
            bind,
        }
    }};
}
pub(crate) use scan_kernels;

impl ScanKernels {
    /// The exclusive u32 scan (`shaders/scan.wgsl` after `shaders/scan_u32.wgsl`).
    pub(crate) fn exclusive_u32(gpu: &Gpu) -> Self {
        scan_kernels!(gpu, SCAN_U32_BLOCK, SCAN_U32_ADD, ScanU32Bindings)
    }
}

#[derive(Debug)]
struct Level {
    grid: Grid,
    /// (uniform, this level's data, its totals) for the `block` and the `add` kernel.
    block: wgpu::BindGroup,
    add: wgpu::BindGroup,
}

/// The levels of the in-place scan of one plan-owned buffer of `len` values of `elem_bytes`
/// bytes, bound once: recording costs only the dispatches.
#[derive(Debug)]
pub(crate) struct ScanPlan {
    levels: Vec<Level>,
}

impl ScanPlan {
    /// `uniform(len, blocks, grid)` makes a level's uniform buffer.
    pub(crate) fn new(
        gpu: &Gpu,
        kernels: &ScanKernels,
        data: &wgpu::Buffer,
        len: u32,
        elem_bytes: u64,
        uniform: impl Fn(u32, u32, Grid) -> wgpu::Buffer,
    ) -> Result<Self> {
        let device = gpu.device();
        let mut levels = Vec::new();
        let mut level_len = len;
        let mut level_data = data.clone();
        loop {
            let blocks = level_len.div_ceil(SCAN_BLOCK).max(1);
            let grid = Grid::for_workgroups(gpu, u64::from(blocks))?;
            let totals = dispatch::scratch(
                gpu,
                "scan totals",
                u64::from(blocks) * elem_bytes,
                wgpu::BufferUsages::empty(),
            );
            let params = uniform(level_len, blocks, grid);
            levels.push(Level {
                grid,
                block: (kernels.bind)(&kernels.block, device, &params, &level_data, &totals),
                add: (kernels.bind)(&kernels.add, device, &params, &level_data, &totals),
            });
            if blocks <= 1 {
                break;
            }
            level_len = blocks;
            level_data = totals;
        }
        Ok(Self { levels })
    }

    /// The levels of the exclusive u32 scan ([`ScanKernels::exclusive_u32`]) of `len` values.
    pub(crate) fn exclusive_u32(
        gpu: &Gpu,
        kernels: &ScanKernels,
        data: &wgpu::Buffer,
        len: u32,
    ) -> Result<Self> {
        Self::new(gpu, kernels, data, len, 4, |len, blocks, g| {
            let params = ScanParams {
                len,
                blocks,
                fold_x: g.fold_x(),
                total_wg: g.total,
            };
            dispatch::uniform(gpu, "scan params", &params)
        })
    }

    /// Records the scan in place (with the kernels the plan was made with).
    pub(crate) fn record(&self, kernels: &ScanKernels, rec: &mut Recording) {
        for level in &self.levels {
            rec.dispatch(&kernels.block, level.block.clone(), level.grid);
        }
        for level in self.levels.iter().rev().skip(1) {
            rec.dispatch(&kernels.add, level.add.clone(), level.grid);
        }
    }
}
