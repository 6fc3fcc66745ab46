//! The OWL prox on the GPU: radix sort of magnitudes, block-scaled fixed-point suffix sums,
//! pool adjacent violators as an upper-hull merge, and the scatter back (`shaders/owl_*.wgsl`).
//!
//! The prox is computed in place on the caller's vector. Every invocation does bounded work
//! (a 256-point leaf hull, O(log^2 n) binary searches per merge), with no spin-waiting, so it
//! is portable and safe from software drivers' loop limiter at any size.

use std::sync::Arc;

use crate::dispatch::legacy::{Binding, Kernel};
use crate::dispatch::{self, check_buffer, check_distinct, range, whole, Grid, Recording};
use crate::dispatch::{KernelDecl, ModuleDecl};
use crate::error::{check_len, Error, Result};
use crate::gpu::Gpu;
use crate::scan::{ScanKernels, ScanPlan};
use crate::shaders;
use crate::sort::{RadixSort, SortOrder, SortPlan};
use crate::wgsl;

use super::{GroupLayout, GrowlOptions};

/// Points per leaf hull (`CHUNK` in the shaders).
const CHUNK: u32 = 256;

/// Longest vector of the OWL prox: a suffix sum of at most this many elements of at most 2^29
/// units each (plus a rounding unit per addition) stays inside the 56-bit signed mantissa.
const MAX_OWL_LEN: u64 = (1 << 26) - 1;

/// (Transitional, for `shaders::owl_stage`.)
pub(crate) fn owl_params_wgsl() -> String {
    OwlParams::LAYOUT.wgsl()
}

crate::uniform_struct! {
    /// The uniform block of every OWL stage (`shaders/owl_prox.wgsl`).
    struct OwlParams {
        n: u32,
        points: u32,
        len: u32,
        nodes_in: u32,
        fold_x: u32,
        total_wg: u32,
        chunks: u32,
        pad: u32,
    }
}

static OWL_SCAN_MODULE: ModuleDecl = ModuleDecl {
    name: "owl_scan",
    constants: &[("SCAN_BLOCK", crate::scan::SCAN_BLOCK)],
    uniforms: &[&OwlParams::LAYOUT],
    header: "",
    parts: &[wgsl!("owl_prox"), wgsl!("owl_scan"), crate::scan::SCAN_PART],
};

crate::bindings! {
    /// The OWL suffix-sum scan's buffers.
    struct OwlScanBindings {
        p @ 0: uniform(OwlParams),
        data @ 1: read_write,
        totals @ 2: read_write,
    }
}

static OWL_SCAN_BLOCK: KernelDecl = KernelDecl {
    name: "owl_scan_block",
    module: &OWL_SCAN_MODULE,
    entry: "scan_block",
    bindings: OwlScanBindings::LAYOUT,
    variants: &[],
};

static OWL_SCAN_ADD: KernelDecl = KernelDecl {
    name: "owl_scan_add",
    module: &OWL_SCAN_MODULE,
    entry: "add_block",
    bindings: OwlScanBindings::LAYOUT,
    variants: &[],
};

/// The OWL kernels in the kernel table so far.
pub(crate) static KERNELS: &[&KernelDecl] = &[&OWL_SCAN_BLOCK, &OWL_SCAN_ADD];

fn owl_scan_kernels(gpu: &Gpu) -> ScanKernels {
    fn bind(
        k: &dispatch::Kernel,
        device: &wgpu::Device,
        p: &wgpu::Buffer,
        data: &wgpu::Buffer,
        totals: &wgpu::Buffer,
    ) -> wgpu::BindGroup {
        let b = OwlScanBindings {
            p: whole(p),
            data: whole(data),
            totals: whole(totals),
        };
        k.bind(device, &b)
    }
    ScanKernels {
        block: gpu.kernel(&OWL_SCAN_BLOCK, 0),
        add: gpu.kernel(&OWL_SCAN_ADD, 0),
        bind,
    }
}

#[derive(Debug)]
struct OwlKernels {
    prepare: Kernel,
    make_z: Kernel,
    /// Inclusive scan of the block-scaled fixed-point sums.
    scan_z: ScanKernels,
    leaf: Kernel,
    compact: Kernel,
    bridge: Kernel,
    copy: Kernel,
    finish: Kernel,
    blocks: Kernel,
}

/// The OWL prox pipelines of one device (the radix sort's included).
#[derive(Debug, Clone)]
pub struct OwlProx {
    gpu: Gpu,
    sort: RadixSort,
    kernels: Arc<OwlKernels>,
}

/// One merge level: bridges of node pairs, merged sizes scanned into offsets, the copy.
#[derive(Debug)]
struct MergeLevel {
    uniform: wgpu::Buffer,
    bridge_grid: Grid,
    bridges: wgpu::Buffer,
    offsets_out: wgpu::Buffer,
    sizes_scan: ScanPlan,
}

/// Scratch for the OWL prox of vectors of one length. Create once per length.
#[derive(Debug)]
pub struct OwlPlan {
    owl: OwlProx,
    n: u32,
    sort: SortPlan,
    uniform: wgpu::Buffer,
    elem_grid: Grid,
    point_grid: Grid,
    chunk_grid: Grid,
    compact_grid: Grid,
    keys: wgpu::Buffer,
    payload: wgpu::Buffer,
    z: wgpu::Buffer,
    z_scan: ScanPlan,
    hull_cap: wgpu::Buffer,
    sizes0: wgpu::Buffer,
    sizes0_scan: ScanPlan,
    verts: [wgpu::Buffer; 2],
    levels: Vec<MergeLevel>,
}

impl OwlProx {
    /// Compiles the pipelines.
    ///
    /// # Errors
    /// Errors captured while creating the pipelines.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let sort = RadixSort::new(gpu)?;
        gpu.scoped(|| {
            let device = gpu.device();
            use Binding::{Read, ReadWrite, Uniform};
            let module = |name: &str, parts: &[&str]| {
                dispatch::shader(device, name, &shaders::owl_stage(parts))
            };
            let geo = shaders::OWL_GEOMETRY;
            let finish = module("owl_finish", &[geo, shaders::OWL_FINISH]);
            let k = |name, m: &wgpu::ShaderModule, entry, b: &[Binding]| {
                Kernel::new(device, name, m, entry, b, &[])
            };
            let kernels = OwlKernels {
                prepare: k(
                    "owl_prepare",
                    &module("owl_prepare", &[shaders::OWL_PREPARE]),
                    "main",
                    &[Uniform, Read, ReadWrite, ReadWrite],
                ),
                make_z: k(
                    "owl_make_z",
                    &module("owl_make_z", &[shaders::OWL_MAKE_Z]),
                    "main",
                    &[Uniform, Read, Read, ReadWrite],
                ),
                scan_z: owl_scan_kernels(gpu),
                leaf: k(
                    "owl_leaf",
                    &module("owl_leaf", &[geo, shaders::OWL_LEAF]),
                    "main",
                    &[Uniform, Read, ReadWrite, ReadWrite],
                ),
                compact: k(
                    "owl_compact",
                    &module("owl_compact", &[shaders::OWL_COMPACT]),
                    "main",
                    &[Uniform, Read, Read, ReadWrite],
                ),
                bridge: k(
                    "owl_bridge",
                    &module("owl_bridge", &[geo, shaders::OWL_BRIDGE]),
                    "main",
                    &[Uniform, Read, Read, Read, ReadWrite, ReadWrite],
                ),
                copy: k(
                    "owl_copy",
                    &module("owl_copy", &[shaders::OWL_COPY]),
                    "main",
                    &[Uniform, Read, Read, Read, Read, ReadWrite],
                ),
                finish: k(
                    "owl_finish",
                    &finish,
                    "main",
                    &[Uniform, Read, Read, Read, Read, ReadWrite],
                ),
                blocks: k(
                    "owl_blocks",
                    &finish,
                    "blocks",
                    &[Uniform, Read, Read, Read, Read, ReadWrite],
                ),
            };
            Ok(Self {
                gpu: gpu.clone(),
                sort,
                kernels: Arc::new(kernels),
            })
        })
    }

    /// Prepares scratch for vectors of `n` elements.
    ///
    /// The suffix sums are 56-bit integers, each on its own power-of-two grid (see
    /// [`OwlProx::prox`]): that bounds `n` below 2^26 (67,108,864) elements. They take 8 bytes
    /// per element in one storage binding, so a device with the WebGPU default of 128 MiB
    /// bindings takes at most 2^24 = 16,777,216 elements.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] when `n` is 2^26 or more, or does not fit one binding or
    /// dispatch.
    pub fn plan(&self, n: usize) -> Result<OwlPlan> {
        let gpu = &self.gpu;
        let device = gpu.device();
        let max_dim = device.limits().max_compute_workgroups_per_dimension;
        let n = u32::try_from(n)
            .ok()
            .filter(|&n| n < u32::MAX)
            .ok_or_else(|| Error::shape("at most 2^32 - 2 elements"))?;
        if u64::from(n) > MAX_OWL_LEN {
            return Err(Error::LimitExceeded {
                limit: "OWL prox length (56-bit block-scaled sums)",
                needed: u64::from(n),
                allowed: MAX_OWL_LEN,
                hint: "; split the vector: the OWL prox of more than 2^26 - 1 elements is not supported"
                    .into(),
            });
        }
        dispatch::check_binding_size(gpu, "owl sums", u64::from(n).max(1) * 8)?;
        let sort = self.sort.plan(n as usize)?;
        let points = n + 1;
        let chunks = points.div_ceil(CHUNK);
        let elem_grid = Grid::fold(u64::from(n).div_ceil(256), max_dim)?;
        let point_grid = Grid::fold(u64::from(points).div_ceil(256), max_dim)?;
        let chunk_grid = Grid::fold(u64::from(chunks).div_ceil(256), max_dim)?;
        let compact_grid = Grid::fold(
            (u64::from(chunk_grid.total) * 256 * u64::from(CHUNK)).div_ceil(256),
            max_dim,
        )?;
        // One uniform serves grids of several sizes: a grid that folds is max_dim wide, and
        // one that does not has a single row, where fold_x does not matter.
        let params = |len: u32, nodes_in: u32, grid: Grid| OwlParams {
            n,
            points,
            len,
            nodes_in,
            fold_x: max_dim,
            total_wg: grid.total,
            chunks,
            pad: 0,
        };
        gpu.scoped(|| {
            let buf = |label: &str, bytes: u64| {
                dispatch::scratch(gpu, label, bytes, wgpu::BufferUsages::empty())
            };
            let uniform_of = |p: OwlParams| dispatch::uniform(gpu, "owl params", &p);
            let u32_scan = self.sort.scan_kernels();
            let mut levels = Vec::new();
            let mut nodes = chunks;
            while nodes > 1 {
                let out = nodes.div_ceil(2);
                let bridge_grid = Grid::fold(u64::from(out).div_ceil(256), max_dim)?;
                let offsets_out = buf("owl hull offsets", u64::from(out + 1) * 4);
                levels.push(MergeLevel {
                    uniform: uniform_of(params(0, nodes, bridge_grid)),
                    bridge_grid,
                    bridges: buf("owl bridges", u64::from(out) * 8),
                    sizes_scan: ScanPlan::exclusive_u32(gpu, u32_scan, &offsets_out, out + 1)?,
                    offsets_out,
                });
                nodes = out;
            }
            let z = buf("owl z / suffix sums", u64::from(n.max(1)) * 8);
            let z_scan = ScanPlan::new(gpu, &self.kernels.scan_z, &z, n.max(1), 8, |len, _, g| {
                uniform_of(params(len, 0, g))
            })?;
            let sizes0 = buf("owl leaf sizes", u64::from(chunks + 1) * 4);
            let sizes0_scan = ScanPlan::exclusive_u32(gpu, u32_scan, &sizes0, chunks + 1)?;
            Ok(OwlPlan {
                owl: self.clone(),
                n,
                sort,
                uniform: uniform_of(params(n, chunks, elem_grid)),
                elem_grid,
                point_grid,
                chunk_grid,
                compact_grid,
                keys: buf("owl keys", u64::from(n) * 4),
                payload: buf("owl payload", u64::from(n) * 4),
                z,
                z_scan,
                hull_cap: buf("owl leaf hulls", u64::from(chunks) * u64::from(CHUNK) * 4),
                sizes0,
                sizes0_scan,
                verts: [
                    buf("owl hull a", u64::from(points) * 4),
                    buf("owl hull b", u64::from(points) * 4),
                ],
                levels,
            })
        })
    }

    /// The OWL prox of host `v` with weights `w` (non-negative, non-increasing, same length).
    ///
    /// Accuracy: every output is within about 1e-6 (a few f32 roundings) of the exact prox
    /// *relative to its own PAV block*: of the largest magnitude or weight among the block's
    /// ranks, not the vector's. Inputs may span the whole normal f32 range (tested from 1e-30
    /// to 1e30 in one vector). The sums behind the block means are integers, each rank on its
    /// own power-of-two grid (2^-28 of that rank's larger of magnitude and weight), added in a
    /// tree fixed by `n`: results are the same bits run to run. Where two blocks' means agree
    /// to within the grid of the larger block, the GPU may pool or split them differently from
    /// the twin; the outputs there still differ by at most about that grid.
    ///
    /// Subnormal inputs and weights (below 1.18e-38 in magnitude) may be flushed to zero by the
    /// GPU (WGSL leaves denormals to the implementation), and so may outputs below that; the CPU
    /// twin keeps them. Keep data in the normal range when that matters.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`], [`Error::Shape`] for invalid weights or non-finite input,
    /// [`Error::LimitExceeded`] past 2^26 - 1 elements (see [`OwlProx::plan`]), plan,
    /// recording and readback errors.
    pub async fn prox(&self, v: &[f32], w: &[f32]) -> Result<Vec<f32>> {
        Ok(self.prox_with_blocks(v, w, false).await?.0)
    }

    /// The OWL prox of host `v` and, when `with_blocks`, each element's PAV block id
    /// (blocks numbered from the largest magnitudes down; empty otherwise).
    ///
    /// # Errors
    /// As [`OwlProx::prox`].
    pub async fn prox_with_blocks(
        &self,
        v: &[f32],
        w: &[f32],
        with_blocks: bool,
    ) -> Result<(Vec<f32>, Vec<u32>)> {
        super::check_owl_input(v, w)?;
        if v.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let plan = self.plan(v.len())?;
        let gpu = &self.gpu;
        let (vb, bb) = dispatch::record_and_submit(gpu, |encoder| {
            let vb = dispatch::upload(gpu, "owl v", v);
            let wb = dispatch::upload(gpu, "owl w", w);
            let bb = with_blocks.then(|| dispatch::zeros(gpu, "owl blocks", v.len()));
            plan.record(encoder, &vb, &wb, bb.as_ref())?;
            Ok((vb, bb))
        })
        .await?;
        let values = dispatch::read_back(gpu, &vb, v.len()).await?;
        let blocks = match &bb {
            Some(bb) => dispatch::read_back_u32(gpu, bb, v.len()).await?,
            None => Vec::new(),
        };
        Ok((values, blocks))
    }

    /// Blocking [`OwlProx::prox`] (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn prox_blocking(&self, v: &[f32], w: &[f32]) -> Result<Vec<f32>> {
        pollster::block_on(self.prox(v, w))
    }
}

impl OwlPlan {
    /// Out-of-place [`OwlPlan::record`]: copies `v` (needs `COPY_SRC`) into `out` (needs
    /// `STORAGE | COPY_DST`) and computes the prox there; `v` is left unchanged.
    ///
    /// # Errors
    /// As [`OwlPlan::record`], plus missing copy usages. The copy is validated before anything
    /// is recorded: a mapped `v`, or one of another device, is an error.
    pub fn record_into(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        v: &wgpu::Buffer,
        w: &wgpu::Buffer,
        out: &wgpu::Buffer,
        blocks: Option<&wgpu::Buffer>,
    ) -> Result<()> {
        dispatch::record_checked(&self.owl.gpu, encoder, |rec| {
            self.build_into(rec, v, w, out, blocks)
        })
    }

    fn build_into(
        &self,
        rec: &mut Recording,
        v: &wgpu::Buffer,
        w: &wgpu::Buffer,
        out: &wgpu::Buffer,
        blocks: Option<&wgpu::Buffer>,
    ) -> Result<()> {
        let gpu = &self.owl.gpu;
        let n = u64::from(self.n);
        check_buffer(gpu, "v", v, n, wgpu::BufferUsages::COPY_SRC)?;
        check_buffer(
            gpu,
            "out",
            out,
            n,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        )?;
        check_distinct("out", out, &[("v", v), ("w", w)])?;
        self.check_named("out", out, w, blocks)?;
        if let Some(b) = blocks {
            check_distinct("blocks", b, &[("v", v)])?;
        }
        if n > 0 {
            rec.copy(v, out, n * 4);
        }
        self.build_checked(rec, out, w, blocks)
    }

    /// The u32 scan kernels, shared with the radix sort.
    fn sort_scan(&self) -> &ScanKernels {
        self.owl.sort.scan_kernels()
    }

    /// Everything [`OwlPlan::record`] checks, before anything is recorded.
    pub(crate) fn check(
        &self,
        v: &wgpu::Buffer,
        w: &wgpu::Buffer,
        blocks: Option<&wgpu::Buffer>,
    ) -> Result<()> {
        self.check_named("v", v, w, blocks)
    }

    /// [`OwlPlan::check`] with the caller's name for the vector.
    pub(crate) fn check_named(
        &self,
        v_name: &'static str,
        v: &wgpu::Buffer,
        w: &wgpu::Buffer,
        blocks: Option<&wgpu::Buffer>,
    ) -> Result<()> {
        let gpu = &self.owl.gpu;
        let st = wgpu::BufferUsages::STORAGE;
        let n = u64::from(self.n);
        check_buffer(gpu, v_name, v, n, st)?;
        check_buffer(gpu, "w", w, n, st)?;
        check_distinct(v_name, v, &[("w", w)])?;
        if let Some(b) = blocks {
            check_buffer(gpu, "blocks", b, n, st)?;
            check_distinct("blocks", b, &[(v_name, v), ("w", w)])?;
        }
        Ok(())
    }

    /// Records the OWL prox of `v` (f32, in place) with weights `w` (f32, non-negative and
    /// non-increasing: validate them with [`super::validate`]; the GPU does not). When
    /// `blocks` is given, it receives each element's PAV block id (u32). `v` must hold finite
    /// values. Never submits. Accuracy and subnormals: as [`OwlProx::prox`].
    ///
    /// # Errors
    /// Buffer size, usage, map-state and aliasing errors; [`Error::Validation`] for a buffer
    /// wgpu refuses. Nothing is recorded on error.
    pub fn record(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        v: &wgpu::Buffer,
        w: &wgpu::Buffer,
        blocks: Option<&wgpu::Buffer>,
    ) -> Result<()> {
        dispatch::record_checked(&self.owl.gpu, encoder, |rec| self.build(rec, v, w, blocks))
    }

    fn build(
        &self,
        rec: &mut Recording,
        v: &wgpu::Buffer,
        w: &wgpu::Buffer,
        blocks: Option<&wgpu::Buffer>,
    ) -> Result<()> {
        self.check(v, w, blocks)?;
        self.build_checked(rec, v, w, blocks)
    }

    /// [`OwlPlan::record`] after [`OwlPlan::check`]: only plan-owned buffers are left to
    /// fail, which they do not.
    pub(crate) fn build_checked(
        &self,
        rec: &mut Recording,
        v: &wgpu::Buffer,
        w: &wgpu::Buffer,
        blocks: Option<&wgpu::Buffer>,
    ) -> Result<()> {
        if self.n == 0 {
            return Ok(());
        }
        let owl = &self.owl;
        let device = owl.gpu.device();
        let k = &owl.kernels;
        let u = &self.uniform;
        k.prepare.run(
            device,
            rec,
            &[u, v, &self.keys, &self.payload],
            self.elem_grid,
        );
        self.sort
            .build(rec, &self.keys, Some(&self.payload), SortOrder::Descending)?;
        k.make_z
            .run(device, rec, &[u, &self.keys, w, &self.z], self.elem_grid);
        self.z_scan.record(&k.scan_z, rec);
        k.leaf.run(
            device,
            rec,
            &[u, &self.z, &self.hull_cap, &self.sizes0],
            self.chunk_grid,
        );
        self.sizes0_scan.record(self.sort_scan(), rec);
        k.compact.run(
            device,
            rec,
            &[u, &self.hull_cap, &self.sizes0, &self.verts[0]],
            self.compact_grid,
        );
        let mut offsets_in = &self.sizes0;
        for (level, m) in self.levels.iter().enumerate() {
            let (vin, vout) = (&self.verts[level % 2], &self.verts[(level + 1) % 2]);
            k.bridge.run(
                device,
                rec,
                &[
                    &m.uniform,
                    &self.z,
                    vin,
                    offsets_in,
                    &m.bridges,
                    &m.offsets_out,
                ],
                m.bridge_grid,
            );
            m.sizes_scan.record(self.sort_scan(), rec);
            k.copy.run(
                device,
                rec,
                &[
                    &m.uniform,
                    vin,
                    offsets_in,
                    &m.bridges,
                    &m.offsets_out,
                    vout,
                ],
                self.point_grid,
            );
            offsets_in = &m.offsets_out;
        }
        let hull = &self.verts[self.levels.len() % 2];
        if let Some(b) = blocks {
            k.blocks.run(
                device,
                rec,
                &[u, &self.z, hull, offsets_in, &self.payload, b],
                self.elem_grid,
            );
        }
        k.finish.run(
            device,
            rec,
            &[u, &self.z, hull, offsets_in, &self.payload, v],
            self.elem_grid,
        );
        Ok(())
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct GrowlParams {
    outer: u32,
    groups: u32,
    inner: u32,
    len: u32,
    fold_x: u32,
    total_wg: u32,
    group_len: u32,
    step_o: u32,
    step_i: u32,
    step_g: u32,
    group_base: u32,
    norms_role: u32,
    zero_below: f32,
    quad_step_g: u32,
    quad_step_i: u32,
    quad_total_wg: u32,
}

/// Elements each rescale thread scales (`PER_THREAD` in `growl_rescale.wgsl`).
const RESCALE_PER_THREAD: u64 = 8;
/// Quads each rescale thread scales (`PER_THREAD` in `growl_rescale_quads.wgsl`).
const RESCALE_QUADS_PER_THREAD: u64 = 4;

/// Longest group one norms workgroup reduces (256 threads x 60,000 steps: under the loop limiter).
const MAX_GROUP_LEN: u64 = 256 * 60_000;

/// The GrOWL prox pipelines of one device: group norms, the OWL prox of the norms, the rescale.
#[derive(Debug, Clone)]
pub struct GrowlProx {
    owl: OwlProx,
    norms: Arc<Kernel>,
    /// Norms of rows of whole quads.
    norms_quads: Arc<Kernel>,
    factors: Arc<Kernel>,
    rescale: Arc<Kernel>,
    /// Rescale of tensors whose inner extent is whole quads.
    rescale_quads: Arc<Kernel>,
}

/// Scratch for the GrOWL prox of tensors of one [`GroupLayout`].
#[derive(Debug)]
pub struct GrowlPlan {
    growl: GrowlProx,
    layout: GroupLayout,
    options: GrowlOptions,
    owl: OwlPlan,
    /// Whole-tensor sizes, for the per-group factors.
    uniform: wgpu::Buffer,
    factor_grid: Grid,
    /// The rescale moves vec4s (inner extent of whole quads).
    quads: bool,
    /// The norms move vec4s (rows of whole quads).
    norms_quads: bool,
    windows: Vec<GrowlWindow>,
    norms: wgpu::Buffer,
    new_norms: wgpu::Buffer,
}

/// A range of the tensor that fits one binding (see [`window_spans`]): the whole tensor, or
/// consecutive rows, or consecutive outer slabs.
#[derive(Debug)]
struct GrowlWindow {
    uniform: wgpu::Buffer,
    offset: u64,
    bytes: u64,
    group_grid: Grid,
    elem_grid: Grid,
    quad_grid: Grid,
}

impl GrowlWindow {
    /// The norms and rescale bindings: uniform, the window's range of the matrix, norms (then
    /// factors), new norms.
    fn bindings<'a>(
        &'a self,
        matrix: &'a wgpu::Buffer,
        norms: &'a wgpu::Buffer,
        new_norms: &'a wgpu::Buffer,
    ) -> [wgpu::BufferBinding<'a>; 4] {
        [
            whole(&self.uniform),
            range(matrix, self.offset, self.bytes),
            whole(norms),
            whole(new_norms),
        ]
    }
}

impl GrowlProx {
    /// The OWL prox pipelines inside.
    pub fn owl(&self) -> &OwlProx {
        &self.owl
    }

    /// Compiles the pipelines (the OWL prox's included).
    ///
    /// # Errors
    /// Errors captured while creating the pipelines.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let owl = OwlProx::new(gpu)?;
        gpu.scoped(|| {
            let device = gpu.device();
            use Binding::{Read, ReadWrite, Uniform};
            let norms_kernel = |name, source: &str| {
                let module = dispatch::shader(device, name, source);
                let bindings = [Uniform, Read, ReadWrite, ReadWrite];
                Arc::new(Kernel::new(device, name, &module, "main", &bindings, &[]))
            };
            let rescale_bindings = [Uniform, ReadWrite, ReadWrite, Read];
            let rescale_module =
                dispatch::shader(device, "growl_rescale", &shaders::growl_rescale());
            let rescale_entry = |entry| {
                let name = "growl_rescale";
                Arc::new(Kernel::new(
                    device,
                    name,
                    &rescale_module,
                    entry,
                    &rescale_bindings,
                    &[],
                ))
            };
            let quads_module = dispatch::shader(
                device,
                "growl_rescale_quads",
                &shaders::growl_rescale_quads(),
            );
            Ok(Self {
                owl,
                norms: norms_kernel("growl_norms", &shaders::growl_norms_elements()),
                norms_quads: norms_kernel("growl_norms_quads", &shaders::growl_norms_quads()),
                factors: rescale_entry("factors"),
                rescale: rescale_entry("main"),
                rescale_quads: Arc::new(Kernel::new(
                    device,
                    "growl_rescale_quads",
                    &quads_module,
                    "main",
                    &rescale_bindings,
                    &[],
                )),
            })
        })
    }

    /// Prepares scratch for tensors of `layout`. A tensor larger than one storage binding is
    /// cut into windows (each window's norms and rescale are separate dispatches on a range
    /// of the buffer; the OWL prox sees every norm at once): a row layout into runs of whole
    /// rows; a column or conv-channel layout, whose groups interleave, into runs of whole
    /// outer slabs (`[groups][inner]`: one row of an `[out, in]` matrix, one output channel of
    /// a conv kernel), whose partial norms add up in window order. Groups longer than
    /// 15,360,000 elements are cut the same way.
    ///
    /// The plan uses the default [`GrowlOptions`] (groups whose norm is below `f32::EPSILON`
    /// are zero); [`GrowlProx::plan_with`] chooses them.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] when one row, or one outer slab, does not fit one binding, or
    /// a row is longer than 15,360,000 elements.
    pub fn plan(&self, layout: GroupLayout) -> Result<GrowlPlan> {
        self.plan_with(layout, GrowlOptions::default())
    }

    /// [`GrowlProx::plan`] with `options`: groups whose norm is below
    /// [`GrowlOptions::zero_below`] are zero in every [`GrowlPlan::record`] of this plan.
    ///
    /// # Errors
    /// As [`GrowlProx::plan`], and [`Error::Shape`] for a threshold that is negative or not
    /// finite.
    pub fn plan_with(&self, layout: GroupLayout, options: GrowlOptions) -> Result<GrowlPlan> {
        options.check()?;
        let gpu = &self.owl.gpu;
        let device = gpu.device();
        let max_dim = device.limits().max_compute_workgroups_per_dimension;
        let (outer, groups, inner) = view(layout)?;
        let spans = window_spans(gpu, outer, groups, inner)?;
        let owl = self.owl.plan(groups as usize)?;
        // Tensors whose inner extent is whole quads move as vec4s (the norms: rows only).
        let quads = inner % 4 == 0 && inner > 0;
        let inner4 = (inner / 4).max(1);
        let params = |span: &WindowSpan, elem_grid: &Grid, quad_grid: &Grid| {
            let group_len = u64::from(span.outers) * u64::from(inner);
            GrowlParams {
                outer: span.outers,
                groups: span.groups,
                inner,
                len: (group_len * u64::from(span.groups)) as u32,
                fold_x: max_dim,
                total_wg: elem_grid.total,
                group_len: group_len as u32,
                step_o: 256 / inner.max(1),
                step_i: 256 % inner.max(1),
                step_g: (256 / inner.max(1)) % span.groups.max(1),
                group_base: span.first_group,
                norms_role: span.norms_role,
                zero_below: options.zero_below,
                quad_step_g: (256 / inner4) % span.groups.max(1),
                quad_step_i: 256 % inner4,
                quad_total_wg: quad_grid.total,
            }
        };
        gpu.scoped(|| {
            let buf = |label: &str| {
                dispatch::scratch(
                    gpu,
                    label,
                    u64::from(groups) * 4,
                    wgpu::BufferUsages::COPY_SRC,
                )
            };
            let mut windows = Vec::with_capacity(spans.len());
            for span in &spans {
                let elems = u64::from(span.outers) * u64::from(span.groups) * u64::from(inner);
                let elem_grid = Grid::fold(elems.div_ceil(256 * RESCALE_PER_THREAD), max_dim)?;
                let quad_grid = Grid::fold(
                    (elems / 4).div_ceil(256 * RESCALE_QUADS_PER_THREAD),
                    max_dim,
                )?;
                let first_elem = (u64::from(span.first_outer) * u64::from(groups)
                    + u64::from(span.first_group))
                    * u64::from(inner);
                windows.push(GrowlWindow {
                    uniform: dispatch::uniform(
                        gpu,
                        "growl params",
                        &params(span, &elem_grid, &quad_grid),
                    ),
                    offset: first_elem * 4,
                    bytes: elems * 4,
                    group_grid: Grid::fold(u64::from(span.groups), max_dim)?,
                    elem_grid,
                    quad_grid,
                });
            }
            let factor_grid = Grid::fold(u64::from(groups).div_ceil(256), max_dim)?;
            Ok(GrowlPlan {
                growl: self.clone(),
                layout,
                options,
                owl,
                uniform: dispatch::uniform(
                    gpu,
                    "growl params",
                    &params(
                        &WindowSpan::whole(outer, groups),
                        &factor_grid,
                        &factor_grid,
                    ),
                ),
                factor_grid,
                quads,
                norms_quads: quads && outer == 1,
                windows,
                norms: buf("growl norms"),
                new_norms: buf("growl new norms"),
            })
        })
    }

    /// The GrOWL prox of host `matrix` (layout `layout`) with OWL weights `w` (one per group),
    /// with the default [`GrowlOptions`]: see [`GrowlProx::prox_with`].
    ///
    /// # Errors
    /// As [`GrowlProx::prox_with`].
    pub async fn prox(
        &self,
        matrix: &[f32],
        layout: GroupLayout,
        w: &[f32],
    ) -> Result<super::cpu::GrowlOutput> {
        self.prox_with(matrix, layout, w, GrowlOptions::default())
            .await
    }

    /// The GrOWL prox of host `matrix` (layout `layout`) with OWL weights `w` (one per group):
    /// the new tensor, the new group norms, the zero-group mask and the PAV block ids.
    ///
    /// Zero groups: a group whose norm is below `options.zero_below` is zero (its norm enters
    /// the OWL prox as 0 and the group comes out all zeros). The default threshold is the
    /// paper's absolute `f32::EPSILON` (about 1.19e-7): right for weights of order one, but it
    /// zeroes every group of a tensor of small scale (norms of 1e-10, say) even where the prox
    /// would keep it; pass `GrowlOptions::zero_below(0.0)` there, or a threshold of the data's
    /// own scale.
    ///
    /// Accuracy: the group norms are f32 sums of squares, each thread's scaled by a power of
    /// two it raises as larger elements come, then added in a fixed order: within a few f32
    /// roundings of the exact norm for norms anywhere in the f32 range (tested from 1e-30 to
    /// 1e30 in one tensor); the OWL prox of the norms is accurate relative to each PAV block
    /// (see [`OwlProx::prox`]), and each element is its group's factor (new norm / norm)
    /// times the element. Results are the same bits run to run. Subnormal elements, norms and
    /// outputs may be flushed to zero by the GPU; the CPU twin keeps them.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`], invalid weights or threshold, non-finite input or a group
    /// whose norm is past `f32::MAX` (an OWL input must be a finite f32: scale the tensor
    /// down); plan, recording and readback errors.
    pub async fn prox_with(
        &self,
        matrix: &[f32],
        layout: GroupLayout,
        w: &[f32],
        options: GrowlOptions,
    ) -> Result<super::cpu::GrowlOutput> {
        check_len("weights matrix", layout.checked_len()?, matrix)?;
        check_len("OWL weights", layout.groups(), w)?;
        super::validate(w)?;
        super::check_matrix(matrix)?;
        let groups = layout.groups();
        // The GPU's norm of a group whose true norm is just below f32::MAX may round past it.
        super::group_norms(&super::cpu::group_squares(matrix, layout), options, 1e-6)?;
        if groups == 0 || matrix.is_empty() {
            return Ok(super::cpu::GrowlOutput {
                weights: matrix.to_vec(),
                norms: vec![0.0; groups],
                zero: vec![true; groups],
                blocks: vec![0; groups],
            });
        }
        let plan = self.plan_with(layout, options)?;
        let gpu = &self.owl.gpu;
        let (mb, bb) = dispatch::record_and_submit(gpu, |encoder| {
            let mb = dispatch::upload(gpu, "growl matrix", matrix);
            let wb = dispatch::upload(gpu, "growl owl weights", w);
            let bb = dispatch::zeros(gpu, "growl blocks", groups);
            plan.record(encoder, &mb, &wb, Some(&bb))?;
            Ok((mb, bb))
        })
        .await?;
        let weights = dispatch::read_back(gpu, &mb, matrix.len()).await?;
        let norms = dispatch::read_back(gpu, &plan.new_norms, groups).await?;
        let blocks = dispatch::read_back_u32(gpu, &bb, groups).await?;
        Ok(super::cpu::GrowlOutput {
            weights,
            zero: norms.iter().map(|&r| r == 0.0).collect(),
            norms,
            blocks,
        })
    }

    /// Blocking [`GrowlProx::prox`] (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn prox_blocking(
        &self,
        matrix: &[f32],
        layout: GroupLayout,
        w: &[f32],
    ) -> Result<super::cpu::GrowlOutput> {
        pollster::block_on(self.prox(matrix, layout, w))
    }

    /// Blocking [`GrowlProx::prox_with`] (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn prox_blocking_with(
        &self,
        matrix: &[f32],
        layout: GroupLayout,
        w: &[f32],
        options: GrowlOptions,
    ) -> Result<super::cpu::GrowlOutput> {
        pollster::block_on(self.prox_with(matrix, layout, w, options))
    }
}

/// Where one window sits in the `[outer][groups][inner]` view: either whole groups of a row
/// layout (`outers == 1`) or whole outer slabs of every group.
#[derive(Clone, Copy, Debug)]
struct WindowSpan {
    first_outer: u32,
    outers: u32,
    first_group: u32,
    groups: u32,
    /// `norms_role` of `growl_common.wgsl`.
    norms_role: u32,
}

/// `NORMS_ACCUMULATE` and `NORMS_FINISH` of `growl_common.wgsl`.
const NORMS_ACCUMULATE: u32 = 1;
const NORMS_FINISH: u32 = 2;

impl WindowSpan {
    fn whole(outer: u32, groups: u32) -> Self {
        Self {
            first_outer: 0,
            outers: outer,
            first_group: 0,
            groups,
            norms_role: NORMS_FINISH,
        }
    }
}

/// Cuts the `[outer][groups][inner]` view into windows that each fit one binding and whose
/// groups each reduce under the loop limiter (`MAX_GROUP_LEN`).
fn window_spans(gpu: &Gpu, outer: u32, groups: u32, inner: u32) -> Result<Vec<WindowSpan>> {
    let device = gpu.device();
    let max_binding = device.limits().max_storage_buffer_binding_size;
    let (outer64, groups64, inner64) = (u64::from(outer), u64::from(groups), u64::from(inner));
    let bytes = outer64 * groups64 * inner64 * 4;
    let too_long = |needed: u64| Error::LimitExceeded {
        limit: "GrOWL group length",
        needed,
        allowed: MAX_GROUP_LEN,
        hint: "; split the tensor into smaller groups".into(),
    };
    if bytes <= max_binding && outer64 * inner64 <= MAX_GROUP_LEN {
        return Ok(vec![WindowSpan::whole(outer, groups)]);
    }
    // Windows cut across groups (rows) or outer slabs, never inside a run of `inner`.
    if inner64 > MAX_GROUP_LEN {
        return Err(too_long(inner64));
    }
    if outer == 1 {
        // Rows: windows of whole groups.
        let per = dispatch::window_units(gpu, "one matrix row", inner64 * 4, max_binding)?;
        let per = u32::try_from(per).unwrap_or(u32::MAX);
        return Ok((0..groups.div_ceil(per))
            .map(|w| WindowSpan {
                first_outer: 0,
                outers: 1,
                first_group: w * per,
                groups: per.min(groups - w * per),
                norms_role: NORMS_FINISH,
            })
            .collect());
    }
    // Interleaved groups: windows of whole outer slabs, as many as fit a binding and keep
    // each window's share of a group under the limiter.
    let slab_bytes = groups64 * inner64 * 4;
    let longest = (MAX_GROUP_LEN / inner64.max(1)) * slab_bytes;
    let per = dispatch::window_units(
        gpu,
        "one outer slab [groups][inner] of the tensor",
        slab_bytes,
        max_binding.min(longest),
    )?;
    let per = u32::try_from(per).unwrap_or(u32::MAX);
    let count = outer.div_ceil(per);
    Ok((0..count)
        .map(|w| WindowSpan {
            first_outer: w * per,
            outers: per.min(outer - w * per),
            first_group: 0,
            groups,
            norms_role: if w > 0 { NORMS_ACCUMULATE } else { 0 }
                | if w + 1 == count { NORMS_FINISH } else { 0 },
        })
        .collect())
}

/// `(outer, groups, inner)` of the `[outer][groups][inner]` view.
///
/// # Errors
/// [`Error::Shape`] when the tensor has 2^32 elements or more (u32 indexing).
fn view(layout: GroupLayout) -> Result<(u32, u32, u32)> {
    let (o, g, i) = match layout {
        GroupLayout::Rows { rows, cols } => (1, rows, cols),
        GroupLayout::Columns { rows, cols } => (rows, cols, 1),
        GroupLayout::ConvInChannels { c_out, c_in, khw } => (c_out, c_in, khw),
    };
    // Checked: three `usize` extents can overflow even 128 bits.
    let fits = (o as u128)
        .checked_mul(g as u128)
        .and_then(|og| og.checked_mul(i as u128))
        .is_some_and(|n| n < 1 << 32);
    match (u32::try_from(o), u32::try_from(g), u32::try_from(i)) {
        (Ok(o), Ok(g), Ok(i)) if fits => Ok((o, g, i)),
        _ => Err(Error::shape(format!(
            "{layout:?} has 2^32 elements or more: GrOWL tensors use u32 indices"
        ))),
    }
}

impl GrowlPlan {
    /// Out-of-place [`GrowlPlan::record`]: copies `matrix` (needs `COPY_SRC`) into `out`
    /// (needs `STORAGE | COPY_DST`) and computes the prox there.
    ///
    /// # Errors
    /// As [`GrowlPlan::record`], plus missing copy usages. The copy is validated before
    /// anything is recorded: a mapped `matrix`, or one of another device, is an error.
    pub fn record_into(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        matrix: &wgpu::Buffer,
        w: &wgpu::Buffer,
        out: &wgpu::Buffer,
        blocks: Option<&wgpu::Buffer>,
    ) -> Result<()> {
        dispatch::record_checked(&self.growl.owl.gpu, encoder, |rec| {
            self.build_into(rec, matrix, w, out, blocks)
        })
    }

    fn build_into(
        &self,
        rec: &mut Recording,
        matrix: &wgpu::Buffer,
        w: &wgpu::Buffer,
        out: &wgpu::Buffer,
        blocks: Option<&wgpu::Buffer>,
    ) -> Result<()> {
        let len = self.layout.len() as u64;
        self.check_matrix("matrix", matrix, wgpu::BufferUsages::COPY_SRC)?;
        self.check_matrix(
            "out",
            out,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        )?;
        check_distinct("out", out, &[("matrix", matrix), ("w", w)])?;
        self.check_named("out", out, w, blocks)?;
        if let Some(b) = blocks {
            check_distinct("blocks", b, &[("matrix", matrix)])?;
        }
        if len > 0 {
            rec.copy(matrix, out, len * 4);
        }
        self.build_checked(rec, out, w, blocks)
    }

    /// Checks a matrix-sized caller buffer: whole-binding limits only apply to one window.
    fn check_matrix(
        &self,
        name: &'static str,
        buffer: &wgpu::Buffer,
        usage: wgpu::BufferUsages,
    ) -> Result<()> {
        let gpu = &self.growl.owl.gpu;
        let len = self.layout.len() as u64;
        dispatch::check_buffer_windowed(gpu, name, buffer, len, usage, self.windows.len() > 1)
    }

    /// Everything [`GrowlPlan::record`] checks, before anything is recorded.
    fn check(
        &self,
        matrix: &wgpu::Buffer,
        w: &wgpu::Buffer,
        blocks: Option<&wgpu::Buffer>,
    ) -> Result<()> {
        self.check_named("matrix", matrix, w, blocks)
    }

    /// [`GrowlPlan::check`] with the caller's name for the matrix.
    fn check_named(
        &self,
        name: &'static str,
        matrix: &wgpu::Buffer,
        w: &wgpu::Buffer,
        blocks: Option<&wgpu::Buffer>,
    ) -> Result<()> {
        self.check_matrix(name, matrix, wgpu::BufferUsages::STORAGE)?;
        // The plan's own norms (public through `new_norms`) are written too.
        check_distinct(name, matrix, &[("w", w), ("new_norms", &self.new_norms)])?;
        self.owl
            .check_named("new_norms", &self.new_norms, w, blocks)?;
        if let Some(b) = blocks {
            check_distinct("blocks", b, &[(name, matrix)])?;
        }
        Ok(())
    }

    /// The options the plan was made with.
    pub fn options(&self) -> GrowlOptions {
        self.options
    }

    /// Binding windows the tensor is cut into (1 when it fits one binding).
    pub fn windows(&self) -> usize {
        self.windows.len()
    }

    /// The new group norms after [`GrowlPlan::record`] (f32 per group; 0 marks a zero group).
    pub fn new_norms(&self) -> &wgpu::Buffer {
        &self.new_norms
    }

    /// Records the GrOWL prox of `matrix` (in place) with OWL weights `w` (one per group,
    /// non-negative and non-increasing: validate with [`super::validate`]). `blocks`, when
    /// given, receives each group's PAV block id. Never submits.
    ///
    /// Groups whose norm is below the plan's [`GrowlOptions::zero_below`]
    /// ([`GrowlPlan::options`]; `f32::EPSILON` unless made by [`GrowlProx::plan_with`]) are
    /// zeroed. The group norms are power-of-two-scaled f32 sums of squares, good over the
    /// whole f32 range (see [`GrowlProx::prox_with`] for accuracy and subnormals): the matrix
    /// must hold finite values whose group norms stay below `f32::MAX`; the GPU cannot report
    /// a violation. The host-slice [`GrowlProx::prox`] checks both.
    ///
    /// An empty matrix (no elements, whatever the group count) records nothing: `blocks` and
    /// [`GrowlPlan::new_norms`] are left as they are (the host-slice call reports zero norms
    /// and block 0 for every group).
    ///
    /// # Errors
    /// Buffer size, usage, map-state and aliasing errors (of `matrix`, `w` and `blocks`),
    /// [`Error::Validation`] for a buffer wgpu refuses. Nothing is
    /// recorded on error.
    pub fn record(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        matrix: &wgpu::Buffer,
        w: &wgpu::Buffer,
        blocks: Option<&wgpu::Buffer>,
    ) -> Result<()> {
        dispatch::record_checked(&self.growl.owl.gpu, encoder, |rec| {
            self.build(rec, matrix, w, blocks)
        })
    }

    fn build(
        &self,
        rec: &mut Recording,
        matrix: &wgpu::Buffer,
        w: &wgpu::Buffer,
        blocks: Option<&wgpu::Buffer>,
    ) -> Result<()> {
        self.check(matrix, w, blocks)?;
        self.build_checked(rec, matrix, w, blocks)
    }

    /// [`GrowlPlan::record`] after [`GrowlPlan::check`].
    fn build_checked(
        &self,
        rec: &mut Recording,
        matrix: &wgpu::Buffer,
        w: &wgpu::Buffer,
        blocks: Option<&wgpu::Buffer>,
    ) -> Result<()> {
        if self.layout.is_empty() {
            return Ok(());
        }
        let device = self.growl.owl.gpu.device();
        let growl = &self.growl;
        for win in &self.windows {
            let b = win.bindings(matrix, &self.norms, &self.new_norms);
            let norms = if self.norms_quads {
                &growl.norms_quads
            } else {
                &growl.norms
            };
            norms.run_ranges(device, rec, &b, win.group_grid);
        }
        self.owl.build_checked(rec, &self.new_norms, w, blocks)?;
        // `factors` does not touch the matrix; any window of it satisfies the layout.
        let mut b = self.windows[0].bindings(matrix, &self.norms, &self.new_norms);
        b[0] = whole(&self.uniform);
        growl.factors.run_ranges(device, rec, &b, self.factor_grid);
        for win in &self.windows {
            let b = win.bindings(matrix, &self.norms, &self.new_norms);
            if self.quads {
                growl
                    .rescale_quads
                    .run_ranges(device, rec, &b, win.quad_grid);
            } else {
                growl.rescale.run_ranges(device, rec, &b, win.elem_grid);
            }
        }
        Ok(())
    }
}
