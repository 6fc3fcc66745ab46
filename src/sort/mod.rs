//! A portable LSD radix sort of f32 keys with optional u32 payloads, on the GPU.
//!
//! Eight passes of 4-bit digits, each a reduce-then-scan: per-workgroup digit counts,
//! a multi-pass exclusive scan (`shaders/scan.wgsl`), then a stable scatter
//! (`shaders/radix_sort.wgsl`). Up to 4096 keys, one workgroup runs all passes in a single
//! dispatch (`shaders/radix_small.wgsl`). No spin-waiting or decoupled look-back, no subgroup
//! operations, no assumed subgroup size: it runs on WebGPU, Apple GPUs and software drivers.
//!
//! **Sizes**: up to 2^32 - 1 keys. Keys past `max_storage_buffer_binding_size` are bound in
//! windows of whole 4096-key blocks: each pass counts digits per input window and scatters
//! once per (input window, output window) pair, so a sort over `W` windows reads its input
//! `W` times per pass. The buffers themselves must fit `max_buffer_size`.
//!
//! **Order and NaN policy**: keys are ordered like [`f32::total_cmp`]:
//! `-NaN < -inf < ... < -0.0 < +0.0 < ... < +inf < +NaN`. NaNs are not an error; they sort to
//! the ends by their sign bit. The sort is **stable**: equal keys (same bits) keep their input
//! order, in both directions, so the permutation is deterministic.

pub mod cpu;

use std::sync::Arc;

use crate::buffer::{BufferRange, MaybeRange};
use crate::dispatch::{self, check_distinct, whole, Grid, Kernel, KernelDecl, Recording};
use crate::error::{check_len, Error, Result};
use crate::gpu::Gpu;
use crate::scan::{ScanKernels, ScanPlan};

/// Sort direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SortOrder {
    /// Smallest first (in `f32::total_cmp` order).
    Ascending,
    /// Largest first (the reverse `f32::total_cmp` order; equal keys keep input order).
    Descending,
}

/// Keys one sort workgroup owns (`SORT_BLOCK` in WGSL: 16 keys per thread).
const SORT_BLOCK: u32 = 4096;
/// Passes of 4-bit digits over 32-bit keys.
const PASSES: u32 = 8;

crate::uniform_struct! {
    /// One pass of the sort (`shaders/radix_common.wgsl`).
    struct SortParams {
        len: u32,
        shift: u32,
        first_pass: u32,
        last_pass: u32,
        descending: u32,
        workgroups: u32,
        fold_x: u32,
        with_values: u32,
    }
}

crate::uniform_struct! {
    /// Where one (input window, output window) dispatch of `radix_sort.wgsl` reads and
    /// writes: its bound `keys_in[0]` is key `in_first_wg * SORT_BLOCK` of the whole sort,
    /// `keys_out[0]` is key `out_first`, and `keys_out` holds `out_len` keys.
    struct SortWindow {
        in_first_wg: u32,
        in_workgroups: u32,
        out_first: u32,
        out_len: u32,
    }
}

crate::module!(RADIX_SORT = "radix_sort", [SortParams, SortWindow],
    constants: &[("SORT_BLOCK", SORT_BLOCK)], parts: ["radix_common", "radix_sort"]);
crate::module!(RADIX_SMALL = "radix_small", [SortParams],
    constants: &[("SORT_BLOCK", SORT_BLOCK)], parts: ["radix_common", "radix_small"]);

crate::bindings! {
    /// Per-workgroup digit counts of one input window.
    struct HistogramBindings {
        p @ 0: uniform(SortParams),
        keys_in @ 1: read,
        offsets @ 3: read_write,
        win @ 6: uniform(SortWindow),
    }
}

crate::bindings! {
    /// Stable scatter of one input window into one output window.
    struct ScatterBindings {
        p @ 0: uniform(SortParams),
        keys_in @ 1: read,
        vals_in @ 2: read,
        offsets @ 3: read_write,
        keys_out @ 4: read_write,
        vals_out @ 5: read_write,
        win @ 6: uniform(SortWindow),
    }
}

crate::bindings! {
    /// The one-workgroup sort: `keys_a`/`vals_a` the caller's, `keys_b`/`vals_b` scratch.
    struct SmallSortBindings {
        p @ 0: uniform(SortParams),
        keys_a @ 1: read_write,
        vals_a @ 2: read_write,
        keys_b @ 3: read_write,
        vals_b @ 4: read_write,
    }
}

crate::kernel!(RADIX_HISTOGRAM = "radix_histogram", RADIX_SORT, HistogramBindings, entry: "histogram");

crate::kernel!(RADIX_SCATTER = "radix_scatter", RADIX_SORT, ScatterBindings, entry: "scatter");

crate::kernel!(RADIX_SMALL_SORT = "radix_small", RADIX_SMALL, SmallSortBindings, entry: "sort_small");

/// The sort's kernels, for the kernel table.
pub(crate) static KERNELS: &[&KernelDecl] = &[&RADIX_HISTOGRAM, &RADIX_SCATTER, &RADIX_SMALL_SORT];

/// A range of whole workgroup blocks, bound as one window.
#[derive(Clone, Copy, Debug)]
struct KeyWindow {
    first_key: u32,
    keys: u32,
    grid: Grid,
}

impl KeyWindow {
    fn binding(self, buffer: BufferRange<'_>) -> wgpu::BufferBinding<'_> {
        dispatch::range(
            buffer,
            u64::from(self.first_key) * 4,
            u64::from(self.keys) * 4,
        )
    }
}

#[derive(Debug)]
struct SortKernels {
    histogram: Kernel,
    scatter: Kernel,
    small: Kernel,
    scan: ScanKernels,
}

/// The sort pipelines of one device.
#[derive(Debug, Clone)]
pub struct RadixSort {
    gpu: Gpu,
    kernels: Arc<SortKernels>,
}

/// Scratch and uniforms for sorting `len` keys: ping-pong buffers, digit offsets, scan levels.
/// Create once per size; recording costs only bind groups and passes.
#[derive(Debug)]
pub struct SortPlan {
    sort: RadixSort,
    len: u32,
    /// One window when the keys fit a binding.
    windows: Vec<KeyWindow>,
    /// Per (input window, output window), row-major.
    window_uniforms: Vec<wgpu::Buffer>,
    keys_alt: wgpu::Buffer,
    vals_alt: wgpu::Buffer,
    offsets: wgpu::Buffer,
    scan: ScanPlan,
    /// Per order (ascending, descending) and payload (without, with): one uniform per pass.
    passes: [[Vec<wgpu::Buffer>; 2]; 2],
    dummy: wgpu::Buffer,
}

impl RadixSort {
    /// The u32 scan kernels the sort uses (shared with the OWL prox).
    pub(crate) fn scan_kernels(&self) -> &ScanKernels {
        &self.kernels.scan
    }

    /// Compiles the sort and scan pipelines.
    ///
    /// # Errors
    /// Errors captured while creating the pipelines.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        gpu.scoped(|| {
            let kernels = SortKernels {
                histogram: gpu.kernel(&RADIX_HISTOGRAM, 0),
                scatter: gpu.kernel(&RADIX_SCATTER, 0),
                small: gpu.kernel(&RADIX_SMALL_SORT, 0),
                scan: ScanKernels::exclusive_u32(gpu),
            };
            Ok(Self {
                gpu: gpu.clone(),
                kernels: Arc::new(kernels),
            })
        })
    }

    /// Prepares scratch for sorting `len` keys (two ping-pong buffers of `len` f32/u32).
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] when `len` keys do not fit `max_buffer_size`, or a binding
    /// cannot hold one block of 4096 keys; errors captured while creating buffers.
    pub fn plan(&self, len: usize) -> Result<SortPlan> {
        let gpu = &self.gpu;
        let device = gpu.device();
        let limits = device.limits();
        let max_dim = limits.max_compute_workgroups_per_dimension;
        let len = u32::try_from(len).map_err(|_| Error::shape("at most 2^32 - 1 keys"))?;
        let bytes = u64::from(len) * 4;
        if bytes > limits.max_buffer_size {
            return Err(Error::LimitExceeded {
                limit: "max_buffer_size",
                needed: bytes,
                allowed: limits.max_buffer_size,
                hint: format!(
                    "; sort fewer keys at a time{}",
                    gpu.limit_hint("max_buffer_size", limits.max_buffer_size, |a| {
                        a.max_buffer_size
                    })
                ),
            });
        }
        let workgroups = len.div_ceil(SORT_BLOCK);
        let windows = key_windows(gpu, len, workgroups)?;
        let offsets_len = workgroups * 16;
        dispatch::check_binding_size(gpu, "radix digit offsets", u64::from(offsets_len) * 4)?;
        gpu.scoped(|| {
            let scratch = |label: &str, elements: u64| {
                dispatch::scratch(gpu, label, elements * 4, wgpu::BufferUsages::empty())
            };
            let offsets = scratch("radix digit offsets", u64::from(offsets_len));
            let scan = ScanPlan::exclusive_u32(gpu, &self.kernels.scan, &offsets, offsets_len)?;
            let pass_uniforms = |descending: u32, with_values: u32| -> Vec<wgpu::Buffer> {
                (0..PASSES)
                    .map(|pass| {
                        let params = SortParams {
                            len,
                            shift: pass * 4,
                            first_pass: u32::from(pass == 0),
                            last_pass: u32::from(pass == PASSES - 1),
                            descending,
                            workgroups,
                            fold_x: max_dim,
                            with_values,
                        };
                        dispatch::uniform(gpu, "radix pass", &params)
                    })
                    .collect()
            };
            let window_uniforms = windows
                .iter()
                .flat_map(|input| {
                    windows.iter().map(move |output| SortWindow {
                        in_first_wg: input.first_key / SORT_BLOCK,
                        in_workgroups: input.grid.total,
                        out_first: output.first_key,
                        out_len: output.keys,
                    })
                })
                .map(|params| dispatch::uniform(gpu, "radix window", &params))
                .collect();
            Ok(SortPlan {
                sort: self.clone(),
                len,
                windows,
                window_uniforms,
                keys_alt: scratch("radix keys (ping-pong)", u64::from(len)),
                vals_alt: scratch("radix values (ping-pong)", u64::from(len)),
                offsets,
                scan,
                passes: [
                    [pass_uniforms(0, 0), pass_uniforms(0, 1)],
                    [pass_uniforms(1, 0), pass_uniforms(1, 1)],
                ],
                dummy: scratch("radix no values", 1),
            })
        })
    }

    /// Sorts host keys (and payloads), returning both in sorted order.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] when `values` is not as long as `keys`; plan, recording
    /// and readback errors.
    pub async fn sort(
        &self,
        keys: &[f32],
        values: Option<&[u32]>,
        order: SortOrder,
    ) -> Result<(Vec<f32>, Option<Vec<u32>>)> {
        if let Some(v) = values {
            check_len("values", keys.len(), v)?;
        }
        if keys.is_empty() {
            return Ok((Vec::new(), values.map(|_| Vec::new())));
        }
        let plan = self.plan(keys.len())?;
        let gpu = &self.gpu;
        let (kb, vb) = dispatch::record_and_submit(gpu, |encoder| {
            let kb = dispatch::upload(gpu, "keys", keys);
            let vb =
                values.map(|v| dispatch::storage_init(gpu, "values", v, dispatch::TENSOR_USAGE));
            plan.record(encoder, &kb, vb.as_ref(), order)?;
            Ok((kb, vb))
        })
        .await?;
        let sorted = dispatch::read_back(gpu, &kb, keys.len()).await?;
        let vals = match &vb {
            Some(vb) => Some(dispatch::read_back_u32(gpu, vb, keys.len()).await?),
            None => None,
        };
        Ok((sorted, vals))
    }

    crate::blocking_calls! {
        /// Blocking [`RadixSort::sort`] (native only).
        pub fn sort_blocking(
            &self,
            keys: &[f32],
            values: Option<&[u32]>,
            order: SortOrder,
        ) -> Result<(Vec<f32>, Option<Vec<u32>>)> => sort;
    }
}

crate::on_gpu!(SortPlan => sort.gpu);

impl SortPlan {
    /// Number of keys this plan sorts.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the plan sorts no keys.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    crate::record_calls! {
        /// Records the sort of `keys` (f32, `len` of them) and, when given, their u32 `values`,
        /// in place. Never submits.
        ///
        /// # Errors
        /// [`Error::BufferTooSmall`], [`Error::MissingUsage`] (`STORAGE` needed), the range
        /// errors of [`BufferRange`], or `keys` and `values` overlapping
        /// ([`Error::Aliasing`]). Nothing is recorded on error.
        pub fn record(&self, keys, values: impl Into<MaybeRange<'a>>, order: SortOrder)
            => |rec| self.build(rec, keys, values.into(), order);
    }

    pub(crate) fn build(
        &self,
        rec: &mut Recording,
        keys: BufferRange<'_>,
        values: MaybeRange<'_>,
        order: SortOrder,
    ) -> Result<()> {
        let (k, values) = (&self.sort.kernels, values.0);
        let gpu = &self.sort.gpu;
        let device = gpu.device();
        let st = wgpu::BufferUsages::STORAGE;
        let own = BufferRange::whole;
        let windowed = self.windows.len() > 1;
        dispatch::check_buffer_windowed(gpu, "keys", keys, u64::from(self.len), st, windowed)?;
        if let Some(v) = values {
            dispatch::check_buffer_windowed(gpu, "values", v, u64::from(self.len), st, windowed)?;
            check_distinct("values", v, &[("keys", keys)])?;
        }
        if self.len <= 1 {
            return Ok(());
        }
        if self.len <= SORT_BLOCK {
            // Small inputs: every pass in one dispatch of one workgroup.
            let uniform = &self.passes[usize::from(order == SortOrder::Descending)]
                [usize::from(values.is_some())][0];
            let (vals, vals_alt) = match values {
                Some(v) => (v, own(&self.vals_alt)),
                None => (own(&self.vals_alt), own(&self.dummy)),
            };
            let buffers = SmallSortBindings {
                p: whole(uniform),
                keys_a: whole(keys),
                vals_a: whole(vals),
                keys_b: whole(&self.keys_alt),
                vals_b: whole(vals_alt),
            };
            k.small.run(device, rec, &buffers, Grid::ONE);
            return Ok(());
        }
        let uniforms = &self.passes[usize::from(order == SortOrder::Descending)]
            [usize::from(values.is_some())];
        let count = self.windows.len();
        for (pass, uniform) in uniforms.iter().enumerate() {
            let (kin, vin, kout, vout) = match (values, pass % 2 == 0) {
                (Some(v), true) => (keys, v, own(&self.keys_alt), own(&self.vals_alt)),
                (Some(v), false) => (own(&self.keys_alt), own(&self.vals_alt), keys, v),
                // Without payloads the value slots are never touched: the dummy read-only, the
                // spare ping-pong buffer writable.
                (None, true) => (
                    keys,
                    own(&self.dummy),
                    own(&self.keys_alt),
                    own(&self.vals_alt),
                ),
                (None, false) => (
                    own(&self.keys_alt),
                    own(&self.dummy),
                    keys,
                    own(&self.vals_alt),
                ),
            };
            let vin_window = |w: KeyWindow| match values {
                Some(_) => w.binding(vin),
                None => dispatch::whole(vin),
            };
            let p = whole(uniform);
            let offsets = whole(&self.offsets);
            let win =
                |input: usize, output: usize| whole(&self.window_uniforms[input * count + output]);
            for (input, window) in self.windows.iter().enumerate() {
                let buffers = HistogramBindings {
                    p: p.clone(),
                    keys_in: window.binding(kin),
                    offsets: offsets.clone(),
                    win: win(input, 0),
                };
                k.histogram.run(device, rec, &buffers, window.grid);
            }
            // Digit counts -> scatter offsets, in place.
            self.scan.record(&k.scan, rec);
            for (input, i) in self.windows.iter().enumerate() {
                for (output, o) in self.windows.iter().enumerate() {
                    let buffers = ScatterBindings {
                        p: p.clone(),
                        keys_in: i.binding(kin),
                        vals_in: vin_window(*i),
                        offsets: offsets.clone(),
                        keys_out: o.binding(kout),
                        vals_out: o.binding(vout),
                        win: win(input, output),
                    };
                    k.scatter.run(device, rec, &buffers, i.grid);
                }
            }
        }
        Ok(())
    }
}

/// The key windows of a sort of `len` keys in `workgroups` blocks: as many blocks per window as
/// one storage binding holds (all of them when the whole buffer fits one binding).
fn key_windows(gpu: &Gpu, len: u32, workgroups: u32) -> Result<Vec<KeyWindow>> {
    let limits = gpu.device().limits();
    let bytes = u64::from(len) * 4;
    let block_bytes = u64::from(SORT_BLOCK) * 4;
    let blocks_per_window = if bytes <= limits.max_storage_buffer_binding_size {
        workgroups.max(1)
    } else {
        let per = dispatch::window_units(
            gpu,
            "a block of 4096 keys",
            block_bytes,
            limits.max_storage_buffer_binding_size,
        )?;
        u32::try_from(per).unwrap_or(u32::MAX)
    };
    (0..workgroups.div_ceil(blocks_per_window).max(1))
        .map(|w| {
            let first_wg = w * blocks_per_window;
            let count = blocks_per_window.min(workgroups - first_wg);
            let first_key = first_wg * SORT_BLOCK;
            Ok(KeyWindow {
                first_key,
                // (u64: one window may hold every one of 2^20 blocks.)
                keys: (u64::from(count) * u64::from(SORT_BLOCK)).min(u64::from(len - first_key))
                    as u32,
                grid: Grid::for_workgroups(gpu, u64::from(count))?,
            })
        })
        .collect()
}
