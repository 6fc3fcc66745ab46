//! A u8 data set uploaded once, gathered into batches on the GPU (`shaders/train_gather.wgsl`),
//! and the deterministic shuffle that orders an epoch.

use crate::buffer::BufferRange;
use crate::dispatch::{self, check_op, whole, Grid, Recording, WORKGROUP_SIZE};
use crate::error::{Error, Result};
use crate::gpu::Gpu;

use super::Train;

crate::uniform_struct! {
    /// The uniform of `shaders/train_gather.wgsl`: one batch of an epoch.
    struct GatherParams {
        batch: u32,
        /// Bytes per sample.
        dim: u32,
        /// The batch's first position in the epoch's order (`perm`).
        first: u32,
        fold_x: u32,
        total_wg: u32,
        /// Each byte's factor (1/255 for pixels in [0, 1]).
        scale: f32,
        pad: [u32; 2],
    }
}

crate::module!(GATHER_MODULE = "train_gather", [GatherParams]);

crate::bindings! {
    /// One batch: `data` and `label_data` the set's packed bytes, `perm` the epoch's order.
    struct GatherBindings {
        p @ 0: uniform(GatherParams),
        data @ 1: read,
        label_data @ 2: read,
        perm @ 3: read,
        x @ 4: read_write,
        labels @ 5: read_write,
    }
}

crate::kernel! {
    /// A batch gathered from a u8 data set.
    pub(super) GATHER = "train_gather", GATHER_MODULE, GatherBindings
}

/// Bytes between the per-step uniforms (the largest `min_uniform_buffer_offset_alignment`
/// wgpu allows).
const UNIFORM_SLOT: u64 = 256;

/// Samples of `dim` u8 values each (e.g. 28 x 28 pixels) and one u8 label per sample, on the
/// GPU, packed four bytes to a u32.
#[derive(Debug)]
pub struct DataSet {
    samples: u32,
    dim: u32,
    data: wgpu::Buffer,
    labels: wgpu::Buffer,
}

fn pack(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks(4)
        .map(|c| {
            let mut w = [0u8; 4];
            w[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(w)
        })
        .collect()
}

impl DataSet {
    /// Uploads `data` (`samples * dim` bytes, sample-major) and `labels` (`samples` bytes).
    ///
    /// # Errors
    /// [`Error::Shape`] for mismatched lengths, `dim == 0` or sizes past u32;
    /// [`Error::LimitExceeded`] when the data does not fit one storage binding; errors
    /// captured while creating the buffers.
    pub fn upload(gpu: &Gpu, data: &[u8], labels: &[u8], dim: usize) -> Result<Self> {
        let samples = labels.len();
        if dim == 0 || data.len() != samples.saturating_mul(dim) {
            return Err(Error::shape(format!(
                "a data set of {} bytes is not {samples} samples (one per label) of {dim} bytes",
                data.len()
            )));
        }
        let (samples, dim) = match (u32::try_from(samples), u32::try_from(dim)) {
            (Ok(s), Ok(d)) if u32::try_from(data.len()).is_ok() => (s, d),
            _ => return Err(Error::shape("a data set past 2^32 bytes")),
        };
        dispatch::check_binding_size(gpu, "data set", data.len() as u64)?;
        gpu.scoped(|| {
            let none = wgpu::BufferUsages::empty();
            Ok(Self {
                samples,
                dim,
                data: dispatch::storage_init(gpu, "data set", &pack(data), none),
                labels: dispatch::storage_init(gpu, "data set labels", &pack(labels), none),
            })
        })
    }

    /// Samples in the set.
    pub fn samples(&self) -> usize {
        self.samples as usize
    }

    /// Bytes per sample.
    pub fn dim(&self) -> usize {
        self.dim as usize
    }
}

/// A permutation of `0..n` for epoch `epoch`, the same for the same `(n, seed, epoch)` on
/// every platform: Fisher-Yates driven by SplitMix64.
pub fn shuffle(n: usize, seed: u64, epoch: u64) -> Vec<u32> {
    let mut state = seed ^ epoch.wrapping_mul(0xD1B5_4A32_D192_ED03);
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut order: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        // Multiply-shift maps 64 random bits to 0..=i without modulo bias worth noting.
        let j = ((u128::from(next()) * (i as u128 + 1)) >> 64) as usize;
        order.swap(i, j);
    }
    order
}

/// Batches of one size from one [`DataSet`] ([`Train::gather`]): batch `s` of an epoch is
/// the samples `order[s * batch ..][.. batch]` of the order set by [`GatherPlan::set_order`].
#[derive(Debug)]
pub struct GatherPlan {
    train: Train,
    batch: u32,
    dim: u32,
    steps: u32,
    samples: u32,
    uniforms: wgpu::Buffer,
    order: wgpu::Buffer,
    grid: Grid,
}

impl Train {
    /// Gathers batches of `batch` samples of `set`, `set.samples() / batch` of them per epoch
    /// (a last partial batch is dropped), as f32 times `scale` (1/255 gives pixels in [0, 1]).
    /// The order starts as `0, 1, 2, ...`.
    ///
    /// # Errors
    /// [`Error::Shape`] for a batch of 0 or larger than the set.
    pub fn gather(&self, set: &DataSet, batch: usize, scale: f32) -> Result<GatherPlan> {
        let batch_u = u32::try_from(batch)
            .ok()
            .filter(|&b| b > 0 && b <= set.samples)
            .ok_or_else(|| {
                Error::shape(format!(
                    "batches of {batch} from {} samples: need 1..={}",
                    set.samples, set.samples
                ))
            })?;
        let values = u64::from(batch_u) * u64::from(set.dim);
        if values > u64::from(u32::MAX) {
            return Err(Error::shape(format!(
                "a batch of {values} values: past u32"
            )));
        }
        let steps = set.samples / batch_u;
        let grid = Grid::for_items(&self.gpu, values, u64::from(WORKGROUP_SIZE))?;
        let mut slots = vec![0u8; steps as usize * UNIFORM_SLOT as usize];
        for s in 0..steps {
            let p = GatherParams {
                batch: batch_u,
                dim: set.dim,
                first: s * batch_u,
                fold_x: grid.fold_x(),
                total_wg: grid.total,
                scale,
                pad: [0; 2],
            };
            let at = s as usize * UNIFORM_SLOT as usize;
            slots[at..at + std::mem::size_of::<GatherParams>()]
                .copy_from_slice(bytemuck::bytes_of(&p));
        }
        let gpu = &self.gpu;
        let identity: Vec<u32> = (0..set.samples).collect();
        let (uniforms, order) = gpu.scoped(|| {
            Ok((
                dispatch::storage_init(gpu, "gather steps", &slots, wgpu::BufferUsages::UNIFORM),
                dispatch::storage_init(gpu, "gather order", &identity, wgpu::BufferUsages::empty()),
            ))
        })?;
        Ok(GatherPlan {
            train: self.clone(),
            batch: batch_u,
            dim: set.dim,
            steps,
            samples: set.samples,
            uniforms,
            order,
            grid,
        })
    }
}

crate::on_gpu!(GatherPlan => train.gpu);

impl GatherPlan {
    /// Batches per epoch.
    pub fn steps(&self) -> usize {
        self.steps as usize
    }

    /// `(batch, dim)`.
    pub fn dims(&self) -> (usize, usize) {
        (self.batch as usize, self.dim as usize)
    }

    /// Sets the epoch's order of samples (a permutation such as [`shuffle`]'s; a queue write:
    /// it applies to every batch submitted after this call, until the next one).
    ///
    /// # Errors
    /// [`Error::Shape`] unless `order` has one index below the set's size per sample.
    pub fn set_order(&self, order: &[u32]) -> Result<()> {
        if order.len() != self.samples as usize || order.iter().any(|&i| i >= self.samples) {
            return Err(Error::shape(format!(
                "an order of {} samples must hold {} indices below {}",
                self.samples, self.samples, self.samples
            )));
        }
        self.train
            .gpu
            .queue()
            .write_buffer(&self.order, 0, bytemuck::cast_slice(order));
        Ok(())
    }

    crate::record_calls! {
        /// Records batch `step` of the epoch: `x` (`[batch, dim]` f32) and `labels`
        /// (`[batch]` u32), both `STORAGE`.
        ///
        /// # Errors
        /// [`Error::Shape`] for a step past the epoch; buffer errors. Nothing is recorded on
        /// error.
        pub fn record(&self, set: &DataSet, step: usize, x, labels)
            => |rec| self.build(rec, set, step, x, labels);
    }

    fn build(
        &self,
        rec: &mut Recording,
        set: &DataSet,
        step: usize,
        x: BufferRange<'_>,
        labels: BufferRange<'_>,
    ) -> Result<()> {
        if step >= self.steps as usize {
            return Err(Error::shape(format!(
                "batch {step} of an epoch of {} batches",
                self.steps
            )));
        }
        if set.samples != self.samples || set.dim != self.dim {
            return Err(Error::shape(
                "the data set is not the one this plan was made for",
            ));
        }
        let (gpu, batch) = (&self.train.gpu, u64::from(self.batch));
        let n = batch * u64::from(self.dim);
        check_op(gpu, &[("x", x, n), ("labels", labels, batch)], 1)?;
        let b = GatherBindings {
            p: dispatch::range(
                &self.uniforms,
                step as u64 * UNIFORM_SLOT,
                std::mem::size_of::<GatherParams>() as u64,
            ),
            data: whole(&set.data),
            label_data: whole(&set.labels),
            perm: whole(&self.order),
            x: whole(x),
            labels: whole(labels),
        };
        self.train
            .kernels
            .gather
            .run(gpu.device(), rec, &b, self.grid);
        Ok(())
    }

    /// Host-slice gather of batch `step` of the epoch (in the order last set): returns
    /// `(x, labels)`, `x` `[batch, dim]` f32 and `labels` `[batch]`.
    ///
    /// # Errors
    /// As [`GatherPlan::record`]; readback errors.
    pub async fn gather(&self, set: &DataSet, step: usize) -> Result<(Vec<f32>, Vec<u32>)> {
        let gpu = &self.train.gpu;
        let (batch, dim) = self.dims();
        let (x, labels) = dispatch::record_and_submit(gpu, |enc| {
            let x = dispatch::zeros(gpu, "gather x", batch * dim);
            let labels = dispatch::zeros(gpu, "gather labels", batch);
            self.record(enc, set, step, &x, &labels)?;
            Ok((x, labels))
        })
        .await?;
        Ok((
            dispatch::read_back(gpu, &x, batch * dim).await?,
            dispatch::read_back_u32(gpu, &labels, batch).await?,
        ))
    }

    crate::blocking_calls! {
        /// Blocking [`GatherPlan::gather`] (native only).
        pub fn gather_blocking(&self, set: &DataSet, step: usize) -> Result<(Vec<f32>, Vec<u32>)> => gather;
    }
}
