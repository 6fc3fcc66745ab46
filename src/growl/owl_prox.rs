//! The OWL prox on the GPU ([`OwlProx`], [`OwlPlan`]; kernels in `owl_kernels.rs`, WGSL in
//! `shaders/owl_*.wgsl`, CPU twin [`super::cpu::owl_prox`]): radix sort of magnitudes,
//! block-scaled fixed-point suffix sums, pool adjacent violators as an upper-hull merge, and
//! the scatter back.
//!
//! The prox is computed in place on the caller's vector. Every invocation does bounded work
//! (a leaf hull of `CHUNK` points, O(log^2 n) binary searches per merge), with no
//! spin-waiting, so it is portable and safe from software drivers' loop limiter at any size.

use std::sync::Arc;

use super::owl_kernels::*;
use super::prox_plan::ProxPlan;
use crate::buffer::{BufferRange, MaybeRange};
use crate::dispatch::WORKGROUP_SIZE;
use crate::dispatch::{self, check_buffer, check_distinct, whole, Grid, Recording};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::scan::{ScanKernels, ScanPlan};
use crate::sort::{RadixSort, SortOrder, SortPlan};

/// Longest vector of the OWL prox: a suffix sum of at most this many elements of at most 2^29
/// units each (plus a rounding unit per addition) stays inside the 56-bit signed mantissa.
const MAX_OWL_LEN: u64 = (1 << 26) - 1;

/// The OWL prox pipelines of one device (the radix sort's included).
#[derive(Debug, Clone)]
pub struct OwlProx {
    pub(crate) gpu: Gpu,
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

/// The grids of one vector length.
#[derive(Clone, Copy, Debug)]
struct OwlGrids {
    /// One thread per element.
    elem: Grid,
    /// One thread per point of the diagram.
    point: Grid,
    /// One thread per leaf hull.
    chunk: Grid,
    /// One thread per slot of every leaf hull the chunk grid covers.
    compact: Grid,
}

impl OwlGrids {
    fn new(gpu: &Gpu, n: u32, points: u32, chunks: u32) -> Result<Self> {
        let wg = u64::from(WORKGROUP_SIZE);
        let chunk = Grid::for_items(gpu, u64::from(chunks), wg)?;
        Ok(Self {
            elem: Grid::for_items(gpu, u64::from(n), wg)?,
            point: Grid::for_items(gpu, u64::from(points), wg)?,
            chunk,
            compact: Grid::for_items(gpu, u64::from(chunk.total) * wg * u64::from(CHUNK), wg)?,
        })
    }
}

/// Scratch for the OWL prox of vectors of one length. Create once per length.
#[derive(Debug)]
pub struct OwlPlan {
    owl: OwlProx,
    n: u32,
    sort: SortPlan,
    uniform: wgpu::Buffer,
    grids: OwlGrids,
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

/// `n` as the OWL prox's u32 length, or the error for a vector too long.
fn owl_len(n: usize) -> Result<u32> {
    let n = u32::try_from(n)
        .ok()
        .filter(|&n| n < u32::MAX)
        .ok_or_else(|| Error::shape("at most 2^32 - 2 elements"))?;
    if u64::from(n) > MAX_OWL_LEN {
        return Err(Error::LimitExceeded {
            limit: "OWL prox length (56-bit block-scaled sums)",
            needed: u64::from(n),
            allowed: MAX_OWL_LEN,
            hint:
                "; split the vector: the OWL prox of more than 2^26 - 1 elements is not supported"
                    .into(),
        });
    }
    Ok(n)
}

impl OwlProx {
    /// Compiles the pipelines.
    ///
    /// # Errors
    /// Errors captured while creating the pipelines.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let sort = RadixSort::new(gpu)?;
        gpu.scoped(|| {
            Ok(Self {
                gpu: gpu.clone(),
                sort,
                kernels: Arc::new(OwlKernels::new(gpu)),
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
        let max_dim = gpu.device().limits().max_compute_workgroups_per_dimension;
        let n = owl_len(n)?;
        dispatch::check_binding_size(gpu, "owl sums", u64::from(n).max(1) * 8)?;
        let sort = self.sort.plan(n as usize)?;
        let points = n + 1;
        let chunks = points.div_ceil(CHUNK);
        let grids = OwlGrids::new(gpu, n, points, chunks)?;
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
                let bridge_grid = Grid::for_items(gpu, u64::from(out), u64::from(WORKGROUP_SIZE))?;
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
                uniform: uniform_of(params(n, chunks, grids.elem)),
                grids,
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

    crate::blocking_calls! {
        /// Blocking [`OwlProx::prox`] (native only).
        pub fn prox_blocking(&self, v: &[f32], w: &[f32]) -> Result<Vec<f32>> => prox;
    }
}

crate::on_gpu!(OwlPlan => owl.gpu);

impl OwlPlan {
    crate::record_calls! {
        /// Records the OWL prox of `v` (f32, in place) with weights `w` (f32, non-negative and
        /// non-increasing: validate them with [`super::validate`]; the GPU does not). When
        /// `blocks` is given, it receives each element's PAV block id (u32). `v` must hold
        /// finite values. Never submits. Accuracy and subnormals: as [`OwlProx::prox`].
        ///
        /// # Errors
        /// Buffer size, usage, map-state and aliasing errors; [`Error::Validation`] for a
        /// buffer wgpu refuses. Nothing is recorded on error.
        pub fn record(&self, v, w, blocks: impl Into<MaybeRange<'a>>)
            => |rec| self.build(rec, v, w, blocks.into());

        /// Out-of-place [`OwlPlan::record`]: copies `v` (needs `COPY_SRC`) into `out` (needs
        /// `STORAGE | COPY_DST`) and computes the prox there; `v` is left unchanged.
        ///
        /// # Errors
        /// As [`OwlPlan::record`], plus missing copy usages. The copy is validated before
        /// anything is recorded: a mapped `v`, or one of another device, is an error.
        pub fn record_into(&self, v, w, out, blocks: impl Into<MaybeRange<'a>>)
            => |rec| self.build_into(rec, v, w, out, blocks.into());
    }

    /// The u32 scan kernels, shared with the radix sort.
    fn sort_scan(&self) -> &ScanKernels {
        self.owl.sort.scan_kernels()
    }

    /// The merge levels: per level, the bridges of hull pairs, their merged sizes scanned
    /// into offsets, the copy into the other vertex buffer. Returns the final hull and its
    /// offsets.
    fn build_merges(&self, rec: &mut Recording) -> (&wgpu::Buffer, &wgpu::Buffer) {
        let k = &self.owl.kernels;
        let device = self.owl.gpu.device();
        let mut offsets_in = &self.sizes0;
        for (level, m) in self.levels.iter().enumerate() {
            let (vin, vout) = (&self.verts[level % 2], &self.verts[(level + 1) % 2]);
            let p = whole(&m.uniform);
            let bridge = BridgeBindings {
                p: p.clone(),
                sums: whole(&self.z),
                verts: whole(vin),
                offsets: whole(offsets_in),
                bridges: whole(&m.bridges),
                sizes_out: whole(&m.offsets_out),
            };
            k.bridge.run(device, rec, &bridge, m.bridge_grid);
            m.sizes_scan.record(self.sort_scan(), rec);
            let copy = CopyBindings {
                p,
                verts_in: whole(vin),
                offsets_in: whole(offsets_in),
                bridges: whole(&m.bridges),
                offsets_out: whole(&m.offsets_out),
                verts_out: whole(vout),
            };
            k.copy.run(device, rec, &copy, self.grids.point);
            offsets_in = &m.offsets_out;
        }
        (&self.verts[self.levels.len() % 2], offsets_in)
    }
}

impl ProxPlan for OwlPlan {
    const TARGET: &'static str = "v";

    fn elements(&self) -> u64 {
        u64::from(self.n)
    }

    fn check_target(
        &self,
        name: &'static str,
        buffer: BufferRange<'_>,
        usage: wgpu::BufferUsages,
    ) -> Result<()> {
        check_buffer(&self.owl.gpu, name, buffer, self.elements(), usage)
    }

    fn check_named(
        &self,
        v_name: &'static str,
        v: BufferRange<'_>,
        w: BufferRange<'_>,
        blocks: Option<BufferRange<'_>>,
    ) -> Result<()> {
        let st = wgpu::BufferUsages::STORAGE;
        self.check_target(v_name, v, st)?;
        self.check_target("w", w, st)?;
        check_distinct(v_name, v, &[("w", w)])?;
        if let Some(b) = blocks {
            self.check_target("blocks", b, st)?;
            check_distinct("blocks", b, &[(v_name, v), ("w", w)])?;
        }
        Ok(())
    }

    fn build_checked(
        &self,
        rec: &mut Recording,
        v: BufferRange<'_>,
        w: BufferRange<'_>,
        blocks: Option<BufferRange<'_>>,
    ) -> Result<()> {
        if self.n == 0 {
            return Ok(());
        }
        let k = &self.owl.kernels;
        let device = self.owl.gpu.device();
        let p = whole(&self.uniform);
        let elem = self.grids.elem;
        let prepare = PrepareBindings {
            p: p.clone(),
            v: whole(v),
            keys: whole(&self.keys),
            payload: whole(&self.payload),
        };
        k.prepare.run(device, rec, &prepare, elem);
        self.sort.build(
            rec,
            BufferRange::whole(&self.keys),
            MaybeRange::from(&self.payload),
            SortOrder::Descending,
        )?;
        let make_z = MakeZBindings {
            p: p.clone(),
            keys: whole(&self.keys),
            w: whole(w),
            z: whole(&self.z),
        };
        k.make_z.run(device, rec, &make_z, elem);
        self.z_scan.record(&k.scan_z, rec);
        let leaf = LeafBindings {
            p: p.clone(),
            sums: whole(&self.z),
            hull_cap: whole(&self.hull_cap),
            sizes: whole(&self.sizes0),
        };
        k.leaf.run(device, rec, &leaf, self.grids.chunk);
        self.sizes0_scan.record(self.sort_scan(), rec);
        let compact = CompactBindings {
            p: p.clone(),
            hull_cap: whole(&self.hull_cap),
            offsets: whole(&self.sizes0),
            verts: whole(&self.verts[0]),
        };
        k.compact.run(device, rec, &compact, self.grids.compact);
        let (hull, offsets) = self.build_merges(rec);
        if let Some(b) = blocks {
            let ids = BlocksBindings {
                p: p.clone(),
                verts: whole(hull),
                offsets: whole(offsets),
                payload: whole(&self.payload),
                v_out: whole(b),
            };
            k.blocks.run(device, rec, &ids, elem);
        }
        let finish = FinishBindings {
            p,
            sums: whole(&self.z),
            verts: whole(hull),
            offsets: whole(offsets),
            payload: whole(&self.payload),
            v_out: whole(v),
        };
        k.finish.run(device, rec, &finish, elem);
        Ok(())
    }
}
