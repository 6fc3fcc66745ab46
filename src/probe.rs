//! Device probes: what this device does at best, so every kernel can be stated as a fraction.
//!
//! - [`Probes::copy`]: copy bandwidth in GB/s, counting bytes read plus bytes written, of a
//!   coalesced vec4 copy kernel (`shaders/probe_copy.wgsl`).
//! - [`Probes::fma`]: FP32 FMA throughput in GFLOP/s (2 FLOP per FMA) of independent vec4
//!   FMA chains (`shaders/probe_fma.wgsl`).

use crate::dispatch::{self, whole, Grid, Kernel, KernelDecl, WORKGROUP_SIZE};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::timing::{time_gpu, Timing};

crate::uniform_struct! {
    /// `probe_copy`: `len4` vec4 elements, each thread copying `COPY_PER_THREAD` of them
    /// `stride4` apart.
    struct CopyParams {
        len4: u32,
        fold_x: u32,
        total_wg: u32,
        stride4: u32,
    }
}

crate::uniform_struct! {
    /// `probe_fma`: `iters` steps of 8 vec4 FMAs per thread.
    struct FmaParams {
        iters: u32,
        fold_x: u32,
        total_wg: u32,
        pad: u32,
    }
}

crate::bindings! {
    struct CopyBindings {
        p @ 0: uniform(CopyParams),
        src @ 1: read,
        dst @ 2: read_write,
    }
}

crate::bindings! {
    struct FmaBindings {
        p @ 0: uniform(FmaParams),
        out @ 1: read_write,
    }
}

crate::module!(PROBE_COPY_MODULE = "probe_copy", [CopyParams], constants: &[("COPY_PER_THREAD", COPY_PER_THREAD as u32)]);

crate::module!(PROBE_FMA_MODULE = "probe_fma", [FmaParams]);

crate::kernel!(PROBE_COPY = "probe_copy", PROBE_COPY_MODULE, CopyBindings);

crate::kernel!(PROBE_FMA = "probe_fma", PROBE_FMA_MODULE, FmaBindings);

/// The probes' kernels, for the kernel table.
pub(crate) static KERNELS: &[&KernelDecl] = &[&PROBE_COPY, &PROBE_FMA];

/// vec4 elements each copy thread moves.
const COPY_PER_THREAD: u64 = 4;

/// One probe's result.
#[derive(Clone, Copy, Debug)]
pub struct ProbeResult {
    /// GB/s (copy) or GFLOP/s (fma).
    pub rate: f64,
    /// Bytes moved (copy) or FLOPs done (fma) per run.
    pub work: f64,
    /// The time per run.
    pub timing: Timing,
}

/// The probe pipelines of one device.
#[derive(Debug)]
pub struct Probes {
    gpu: Gpu,
    copy: Kernel,
    fma: Kernel,
}

impl Probes {
    /// Compiles the probes.
    ///
    /// # Errors
    /// Errors captured while creating the pipelines.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        gpu.scoped(|| {
            let copy = gpu.kernel(&PROBE_COPY, 0);
            let fma = gpu.kernel(&PROBE_FMA, 0);
            Ok(Self {
                gpu: gpu.clone(),
                copy,
                fma,
            })
        })
    }

    /// Copies `bytes` (rounded down to 16, capped by the binding limit and 2^32 quads) device
    /// to device.
    /// The rate counts read + write bytes.
    ///
    /// # Errors
    /// Errors captured while running.
    pub fn copy(&self, bytes: u64, reps: u32) -> Result<ProbeResult> {
        let device = self.gpu.device();
        let limits = device.limits();
        let bytes = bytes
            .min(limits.max_storage_buffer_binding_size)
            .min(limits.max_buffer_size)
            .min(u64::from(u32::MAX) * 16)
            / 16
            * 16;
        let len4 = (bytes / 16).max(1);
        let threads = len4.div_ceil(COPY_PER_THREAD);
        let grid = Grid::for_items(&self.gpu, threads, u64::from(WORKGROUP_SIZE))?;
        let params = CopyParams {
            len4: len4 as u32,
            fold_x: grid.fold_x(),
            total_wg: grid.total,
            stride4: grid.total * WORKGROUP_SIZE,
        };
        let bg = self.gpu.scoped(|| {
            let mk =
                |label| dispatch::scratch(&self.gpu, label, len4 * 16, wgpu::BufferUsages::empty());
            let uniform = dispatch::uniform(&self.gpu, "probe_copy params", &params);
            let (src, dst) = (mk("probe src"), mk("probe dst"));
            let buffers = CopyBindings {
                p: whole(&uniform),
                src: whole(&src),
                dst: whole(&dst),
            };
            Ok(self.copy.bind(device, &buffers))
        })?;
        self.rate(&self.copy, &bg, grid, reps, 2.0 * (len4 * 16) as f64)
    }

    /// Runs `workgroups` x `WORKGROUP_SIZE` threads of `iters` steps of 8 vec4 FMAs.
    ///
    /// # Errors
    /// Errors captured while running.
    pub fn fma(&self, workgroups: u32, iters: u32, reps: u32) -> Result<ProbeResult> {
        let device = self.gpu.device();
        // Keep each invocation's loop well under software drivers' 65,535-iteration limit.
        let iters = iters.min(60_000);
        let grid = Grid::for_workgroups(&self.gpu, u64::from(workgroups))?;
        let params = FmaParams {
            iters,
            fold_x: grid.fold_x(),
            total_wg: grid.total,
            pad: 0,
        };
        let out_len = u64::from(workgroups) * u64::from(WORKGROUP_SIZE);
        dispatch::check_binding_size(&self.gpu, "probe_fma out", out_len * 4)?;
        let bg = self.gpu.scoped(|| {
            let uniform = dispatch::uniform(&self.gpu, "probe_fma params", &params);
            let out = dispatch::zeros(&self.gpu, "probe_fma out", out_len as usize);
            let buffers = FmaBindings {
                p: whole(&uniform),
                out: whole(&out),
            };
            Ok(self.fma.bind(device, &buffers))
        })?;
        let work = f64::from(workgroups) * f64::from(WORKGROUP_SIZE) * f64::from(iters) * 64.0;
        self.rate(&self.fma, &bg, grid, reps, work)
    }

    /// Times `reps` runs of `kernel` on `bg` over `grid` ([`time_gpu`], 3 rounds) and rates
    /// `work` per run (bytes or FLOPs) in G per second.
    fn rate(
        &self,
        kernel: &Kernel,
        bg: &wgpu::BindGroup,
        grid: Grid,
        reps: u32,
        work: f64,
    ) -> Result<ProbeResult> {
        let timing = time_gpu(&self.gpu, reps, 3, |enc| {
            kernel.record(enc, bg, grid);
            Ok(())
        })?;
        Ok(ProbeResult {
            rate: work / (timing.ms * 1e-3) / 1e9,
            work,
            timing,
        })
    }
}
