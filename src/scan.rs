//! Multi-pass (reduce-then-scan) prefix sums over one buffer, level by level: each level
//! scans blocks of 4096 values and writes the block totals, which the next level scans; the
//! totals are then added back down. No spin-waiting. One WGSL scan, `shaders/scan.wgsl`,
//! compiled with two preludes: u32 exclusive (`shaders/scan_u32.wgsl`) and block-scaled
//! fixed-point inclusive (`shaders/owl_scan.wgsl`, the OWL prox's suffix sums; its addition
//! rounds to the coarser grid, so its results depend on the tree, which depends only on the
//! length); binding layout: uniform, data, totals.

use crate::dispatch::{self, Binding, Grid, Kernel, Recording};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::shaders;

/// Values one scan workgroup owns.
pub(crate) const SCAN_BLOCK: u32 = 4096;

/// The two kernels of a scan: `block` (scan blocks, write totals) and `add` (add scanned
/// totals of earlier blocks).
#[derive(Debug)]
pub(crate) struct ScanKernels {
    pub(crate) block: Kernel,
    pub(crate) add: Kernel,
}

impl ScanKernels {
    /// The `scan_block` and `add_block` entry points of `module`, named `name` (binding
    /// layout: uniform, data, totals).
    pub(crate) fn new(
        device: &wgpu::Device,
        name: &'static str,
        module: &wgpu::ShaderModule,
    ) -> Self {
        use Binding::{ReadWrite, Uniform};
        let bindings = [Uniform, ReadWrite, ReadWrite];
        Self {
            block: Kernel::new(device, name, module, "scan_block", &bindings, &[]),
            add: Kernel::new(device, name, module, "add_block", &bindings, &[]),
        }
    }

    /// The exclusive u32 scan (`shaders/scan.wgsl` after `shaders/scan_u32.wgsl`).
    pub(crate) fn exclusive_u32(device: &wgpu::Device) -> Self {
        Self::new(
            device,
            "scan",
            &dispatch::shader(device, "scan", &shaders::scan_u32()),
        )
    }
}

/// The uniform block of `shaders/scan_u32.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct ScanParams {
    len: u32,
    blocks: u32,
    fold_x: u32,
    total_wg: u32,
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
        let max_dim = device.limits().max_compute_workgroups_per_dimension;
        let mut levels = Vec::new();
        let mut level_len = len;
        let mut level_data = data.clone();
        loop {
            let blocks = level_len.div_ceil(SCAN_BLOCK).max(1);
            let grid = Grid::fold(u64::from(blocks), max_dim)?;
            let totals = dispatch::scratch(
                gpu,
                "scan totals",
                u64::from(blocks) * elem_bytes,
                wgpu::BufferUsages::empty(),
            );
            let bufs = [&uniform(level_len, blocks, grid), &level_data, &totals];
            levels.push(Level {
                grid,
                block: kernels.block.bind(device, &bufs),
                add: kernels.add.bind(device, &bufs),
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
                fold_x: g.x.max(1),
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
