//! Fused softmax cross-entropy with a count of correct predictions
//! (`shaders/train_softmax_xent.wgsl`; CPU twin
//! [`cpu::softmax_xent_f64`](super::cpu::softmax_xent_f64)), and its running totals
//! (`shaders/train_stats.wgsl`).

use crate::dispatch::{self, whole, Grid, WORKGROUP_SIZE};
use crate::error::{check_len, Error, Result};

use super::Train;

/// Most classes: each thread walks its sample's classes three times.
const MAX_CLASSES: u32 = 16_384;

crate::uniform_struct! {
    /// The uniform of `shaders/train_softmax_xent.wgsl`: one thread per sample.
    struct XentParams {
        batch: u32,
        classes: u32,
        fold_x: u32,
        total_wg: u32,
        /// The gradient's scale, `1 / batch` for a mean loss.
        scale: f32,
        pad0: u32,
        pad1: u32,
        pad2: u32,
    }
}

crate::uniform_struct! {
    /// The uniform of `shaders/train_stats.wgsl`.
    struct StatsParams {
        /// Samples in the batch.
        batch: u32,
        pad0: u32,
        pad1: u32,
        pad2: u32,
    }
}

crate::module!(XENT_MODULE = "train_softmax_xent", [XentParams]);

crate::module!(STATS_MODULE = "train_stats", [StatsParams]);

crate::bindings! {
    /// Loss, gradient and correctness per sample.
    struct XentBindings {
        p @ 0: uniform(XentParams),
        logits @ 1: read,
        labels @ 2: read,
        dlogits @ 3: read_write,
        per_sample @ 4: read_write,
    }
}

crate::bindings! {
    /// One batch's per-sample results added to the totals.
    struct StatsBindings {
        p @ 0: uniform(StatsParams),
        per_sample @ 1: read,
        stats @ 2: read_write,
    }
}

crate::kernel! {
    /// The fused softmax cross-entropy.
    pub(super) XENT = "train_softmax_xent", XENT_MODULE, XentBindings
}

crate::kernel! {
    /// The running loss and accuracy totals (one workgroup).
    pub(super) STATS = "train_stats", STATS_MODULE, StatsBindings
}

/// Running totals of [`XentPlan::record_accumulate`], as read back by [`XentStats::read`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct XentStats {
    /// Sum of the per-sample losses.
    pub loss_sum: f32,
    /// Correct predictions.
    pub correct: u32,
    /// Samples counted.
    pub samples: u32,
}

impl XentStats {
    /// Words of the totals buffer (`STORAGE`, zeroed to start counting).
    pub const WORDS: usize = 3;

    /// Mean loss (NaN for no samples).
    pub fn mean_loss(&self) -> f32 {
        self.loss_sum / self.samples as f32
    }

    /// Fraction of correct predictions (NaN for no samples).
    pub fn accuracy(&self) -> f64 {
        f64::from(self.correct) / f64::from(self.samples)
    }

    /// Reads the totals back (the buffer needs `COPY_SRC`).
    ///
    /// # Errors
    /// Readback errors.
    pub async fn read(gpu: &crate::Gpu, stats: &wgpu::Buffer) -> Result<Self> {
        let words = dispatch::read_back(gpu, stats, Self::WORDS).await?;
        Ok(Self {
            loss_sum: words[0],
            correct: words[1].to_bits(),
            samples: words[2].to_bits(),
        })
    }
}

/// Softmax cross-entropy of one `(batch, classes)` ([`Train::softmax_xent`]).
#[derive(Debug)]
pub struct XentPlan {
    train: Train,
    batch: u32,
    classes: u32,
    uniform: wgpu::Buffer,
    stats_uniform: wgpu::Buffer,
    grid: Grid,
}

impl Train {
    /// Softmax cross-entropy over logits `[batch, classes]`; the gradient is that of the mean
    /// loss over the batch (each row scaled by `1 / batch`).
    ///
    /// # Errors
    /// [`Error::Shape`] for no classes, more than 16,384, or sizes past u32.
    pub fn softmax_xent(&self, batch: usize, classes: usize) -> Result<XentPlan> {
        let classes_u = u32::try_from(classes)
            .ok()
            .filter(|&c| (1..=MAX_CLASSES).contains(&c))
            .ok_or_else(|| Error::shape(format!("{classes} classes: need 1..={MAX_CLASSES}")))?;
        let batch_u = u32::try_from(batch)
            .ok()
            .filter(|&b| u64::from(b) * u64::from(classes_u) <= u64::from(u32::MAX) / 2)
            .ok_or_else(|| Error::shape(format!("{batch} x {classes} logits: past u32")))?;
        let grid = Grid::for_items(&self.gpu, u64::from(batch_u), u64::from(WORKGROUP_SIZE))?;
        let params = XentParams {
            batch: batch_u,
            classes: classes_u,
            fold_x: grid.fold_x(),
            total_wg: grid.total,
            scale: if batch_u > 0 {
                1.0 / batch_u as f32
            } else {
                0.0
            },
            ..XentParams::default()
        };
        let gpu = &self.gpu;
        let (uniform, stats_uniform) = gpu.scoped(|| {
            Ok((
                dispatch::uniform(gpu, "softmax xent", &params),
                dispatch::uniform(
                    gpu,
                    "xent stats",
                    &StatsParams {
                        batch: batch_u,
                        ..StatsParams::default()
                    },
                ),
            ))
        })?;
        Ok(XentPlan {
            train: self.clone(),
            batch: batch_u,
            classes: classes_u,
            uniform,
            stats_uniform,
            grid,
        })
    }
}

crate::on_gpu!(XentPlan => train.gpu);

impl XentPlan {
    /// `(batch, classes)`.
    pub fn dims(&self) -> (usize, usize) {
        (self.batch as usize, self.classes as usize)
    }

    crate::record_calls! {
        /// Records the loss and its gradient: from `logits` `[batch, classes]` and `labels`
        /// `[batch]` (u32, below `classes`; a label out of range gives a NaN loss), writes
        /// `dlogits` `[batch, classes]` and `per_sample` `[batch, 2]` (u32 words: the loss's
        /// f32 bits, then 1 for a correct prediction, the first largest logit, else 0). All
        /// `STORAGE`.
        ///
        /// # Errors
        /// Buffer size, usage and aliasing errors; nothing is recorded on error.
        pub fn record(&self, logits, labels, dlogits, per_sample) => |rec| {
            let batch = u64::from(self.batch);
            let n = batch * u64::from(self.classes);
            train_op!(self.train, rec, xent, self.grid, XentBindings {
                p: whole(&self.uniform);
                logits[n], labels[batch], dlogits[n], per_sample[2 * batch]
            }, outputs from 2)
        };

        /// Records the addition of one batch's `per_sample` results to the totals `stats`
        /// ([`XentStats::WORDS`] u32 words, `STORAGE`; zero them to start counting), in a
        /// fixed order.
        ///
        /// # Errors
        /// As [`XentPlan::record`].
        pub fn record_accumulate(&self, per_sample, stats) => |rec| {
            let (per_sample_len, stats_len) = (2 * u64::from(self.batch), XentStats::WORDS as u64);
            train_op!(self.train, rec, stats, Grid::ONE, StatsBindings {
                p: whole(&self.stats_uniform);
                per_sample[per_sample_len], stats[stats_len]
            }, outputs from 1)
        };
    }

    /// Host-slice call: returns `(dlogits, losses, correct)`.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`], recording and readback errors.
    pub async fn run(
        &self,
        logits: &[f32],
        labels: &[u32],
    ) -> Result<(Vec<f32>, Vec<f32>, Vec<bool>)> {
        let (b, c) = self.dims();
        check_len("logits", b * c, logits)?;
        check_len("labels", b, labels)?;
        let gpu = &self.train.gpu;
        let (dl, ps) = dispatch::record_and_submit(gpu, |enc| {
            let lb = dispatch::upload(gpu, "xent logits", logits);
            let labels: Vec<f32> = labels.iter().map(|&l| f32::from_bits(l)).collect();
            let yb = dispatch::upload(gpu, "xent labels", &labels);
            let dl = dispatch::zeros(gpu, "xent dlogits", b * c);
            let ps = dispatch::zeros(gpu, "xent per sample", 2 * b);
            self.record(enc, &lb, &yb, &dl, &ps)?;
            Ok((dl, ps))
        })
        .await?;
        let dlogits = dispatch::read_back(gpu, &dl, b * c).await?;
        let ps = dispatch::read_back(gpu, &ps, 2 * b).await?;
        let losses = ps.iter().step_by(2).copied().collect();
        let correct = ps
            .iter()
            .skip(1)
            .step_by(2)
            .map(|v| v.to_bits() != 0)
            .collect();
        Ok((dlogits, losses, correct))
    }

    crate::blocking_calls! {
        /// Blocking [`XentPlan::run`] (native only).
        pub fn run_blocking(
            &self,
            logits: &[f32],
            labels: &[u32],
        ) -> Result<(Vec<f32>, Vec<f32>, Vec<bool>)> => run;
    }
}
