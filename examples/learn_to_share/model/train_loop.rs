//! The machinery every model shares: parameters with their velocities, gradients and SGD
//! plans, the grouped layers (mask, GrOWL prox, ties), the data, and the two phases of a row.
//! A model ([`Net`]) only records its forward and backward passes.

use std::time::Instant;

use tied::buffer::{self, read_back, zeros};
use tied::conv::Conv2d;
use tied::growl::{GroupLayout, GrowlPlan, GrowlProx, Weights};
use tied::share::discover::{DiscoverTies, Discovery};
use tied::share::idx::Dataset;
use tied::share::metrics::ShareMetrics;
use tied::share::Similarity;
use tied::train::{shuffle, DataSet, GatherPlan, MaskPlan, Sgd, SgdPlan, Train, XentStats};
use tied::tying::{Enforcement, TiePlan, Ties};
use tied::Gpu;

use super::{EpochPoint, LayerResult, Protocol, Result, Row, RowResult, StepTime};

/// One parameter tensor of a model.
pub struct ParamSpec {
    pub name: &'static str,
    pub len: usize,
    /// Whether the rows' weight decay applies (the paper: weights and biases, not BN).
    pub decay: bool,
    /// A grouped tensor: its group layout and a factor on the prox's step for this layer.
    pub group: Option<(GroupLayout, f32)>,
}

impl ParamSpec {
    /// A tensor of `len` f32 named `name`, under weight decay when `decay`, grouped as `group`.
    pub fn new(
        name: &'static str,
        len: usize,
        decay: bool,
        group: Option<(GroupLayout, f32)>,
    ) -> Self {
        Self {
            name,
            len,
            decay,
            group,
        }
    }
}

pub struct Param {
    pub buf: wgpu::Buffer,
    pub velocity: wgpu::Buffer,
    pub grad: wgpu::Buffer,
    decay: bool,
    sgd: SgdPlan,
    /// Index into [`Core::grouped`].
    group: Option<usize>,
}

/// A tensor with a group regulariser: masked, proxed, clustered and tied.
pub struct Grouped {
    pub name: &'static str,
    pub param: usize,
    pub layout: GroupLayout,
    prox_factor: f32,
    mask_buf: wgpu::Buffer,
    mask: MaskPlan,
    growl: GrowlPlan,
    prox_weights: wgpu::Buffer,
}

/// Everything but the model's own layers.
pub struct Core {
    pub gpu: Gpu,
    pub protocol: Protocol,
    pub train: Train,
    pub conv: Conv2d,
    pub params: Vec<Param>,
    pub grouped: Vec<Grouped>,
    /// The batch being trained on: `[batch, 784]` pixels in [0, 1] and labels.
    pub x: wgpu::Buffer,
    pub labels: wgpu::Buffer,
    /// The loss and correct-count totals of the epoch.
    pub stats: wgpu::Buffer,
    /// The evaluation batch and totals.
    pub eval_x: wgpu::Buffer,
    pub eval_labels: wgpu::Buffer,
    pub eval_stats: wgpu::Buffer,
    /// Batch sizes of training and evaluation.
    pub batch: usize,
    pub eval_batch: usize,
    train_set: DataSet,
    test_set: DataSet,
    gather: GatherPlan,
    gather_eval: GatherPlan,
    ties: Ties,
    discover: DiscoverTies,
    /// The paper's similarity on the GPU (the gram GEMM plus a scaling kernel).
    similarity: Similarity,
}

/// A model: its layers' plans and activations. Parameters live in [`Core::params`], in the
/// order of the model's [`ParamSpec`]s.
pub trait Net {
    /// Writes the initial parameters (and the model's own state, e.g. BN statistics).
    fn init(&self, core: &Core, seed: u64);
    /// Records forward and backward of the batch in `core.x` / `core.labels`: every
    /// parameter's gradient into `core.params[i].grad`, the loss totals added to
    /// `core.stats`.
    fn record_gradients(&self, core: &Core, enc: &mut wgpu::CommandEncoder) -> Result<()>;
    /// Records inference on `core.eval_x` / `core.eval_labels`, the totals added to
    /// `core.eval_stats`.
    fn record_eval(&self, core: &Core, enc: &mut wgpu::CommandEncoder) -> Result<()>;
}

/// A grouped layer's ties in phase 2.
struct Tied {
    grouped: usize,
    found: Discovery,
    plan: TiePlan,
    scratch: wgpu::Buffer,
}

impl Core {
    pub fn new(gpu: &Gpu, data: &Dataset, p: &Protocol, specs: &[ParamSpec]) -> Result<Self> {
        let train = Train::new(gpu)?;
        let conv = Conv2d::new(gpu)?;
        let n_train = p.train_samples.min(data.train.labels.len());
        let n_test = p.test_samples.min(data.test.labels.len());
        let dim = data.train.images.image_len();
        if dim != super::INPUTS || data.test.images.image_len() != super::INPUTS {
            return Err(
                format!("the models need 28 x 28 images, the data has {dim} pixels").into(),
            );
        }
        let upload = |set: &tied::share::idx::Split, n: usize| {
            DataSet::upload(gpu, &set.images.pixels[..n * dim], &set.labels[..n], dim)
        };
        let train_set = upload(&data.train, n_train)?;
        let test_set = upload(&data.test, n_test)?;
        let (bt, be) = (p.batch, p.eval_batch.min(n_test));
        let hyper = Sgd {
            lr: p.lr0,
            momentum: p.momentum,
            weight_decay: 0.0,
        };
        let z = |n| zeros(gpu, "model", n);
        let growl = GrowlProx::new(gpu)?;
        let mut params = Vec::new();
        let mut grouped = Vec::new();
        for (i, s) in specs.iter().enumerate() {
            let layout = s.group.map(|g| g.0);
            if let Some((layout, prox_factor)) = s.group {
                let mut mask = train.mask(layout)?;
                mask.set_threshold(f32::EPSILON)?;
                grouped.push(Grouped {
                    name: s.name,
                    param: i,
                    layout,
                    prox_factor,
                    mask_buf: z(layout.groups()),
                    mask,
                    growl: growl.plan(layout)?,
                    prox_weights: z(layout.groups()),
                });
            }
            params.push(Param {
                buf: z(s.len),
                velocity: z(s.len),
                grad: z(s.len),
                decay: s.decay,
                sgd: train.sgd(s.len, layout, hyper)?,
                group: layout.map(|_| grouped.len() - 1),
            });
        }
        Ok(Self {
            gather: train.gather(&train_set, bt, 1.0 / 255.0)?,
            gather_eval: train.gather(&test_set, be, 1.0 / 255.0)?,
            x: z(bt * dim),
            labels: z(bt),
            stats: z(XentStats::WORDS),
            eval_x: z(be * dim),
            eval_labels: z(be),
            eval_stats: z(XentStats::WORDS),
            batch: bt,
            eval_batch: be,
            gpu: gpu.clone(),
            protocol: p.clone(),
            train,
            conv: conv.clone(),
            params,
            grouped,
            train_set,
            test_set,
            ties: Ties::new(gpu)?,
            discover: DiscoverTies::default(),
            similarity: Similarity::with_conv(&conv)?,
        })
    }

    /// Writes f32 values into `buf` (typed, so that no f64 vector is written by mistake).
    pub fn write(&self, buf: &wgpu::Buffer, values: &[f32]) {
        self.gpu
            .queue()
            .write_buffer(buf, 0, bytemuck::cast_slice(values));
    }

    fn encoder(&self) -> wgpu::CommandEncoder {
        self.gpu
            .device()
            .create_command_encoder(&Default::default())
    }

    /// Velocities zeroed and masks cleared (every group kept), on the GPU.
    fn reset_state(&self, masks: bool) {
        let mut enc = self.encoder();
        for p in &self.params {
            enc.clear_buffer(&p.velocity, 0, None);
        }
        self.gpu.queue().submit([enc.finish()]);
        if masks {
            for g in &self.grouped {
                let ones = vec![1u32; g.layout.groups()];
                self.gpu
                    .queue()
                    .write_buffer(&g.mask_buf, 0, bytemuck::cast_slice(&ones));
            }
        }
    }

    fn set_hyper(&mut self, lr: f32, wd: f32) -> Result<()> {
        let momentum = self.protocol.momentum;
        for p in &mut self.params {
            let weight_decay = if p.decay { wd } else { 0.0 };
            p.sgd.set_hyper(Sgd {
                lr,
                momentum,
                weight_decay,
            })?;
        }
        Ok(())
    }

    /// Grouped layer `g`'s weights.
    fn read(&self, g: usize) -> Result<Vec<f32>> {
        let g = &self.grouped[g];
        let p = &self.params[g.param];
        Ok(pollster::block_on(read_back(
            &self.gpu,
            &p.buf,
            g.layout.len(),
        ))?)
    }
}

/// A model on its core: the generic two-phase protocol.
pub struct Trainer<N> {
    pub core: Core,
    pub net: N,
}

/// What the `main` of the demo drives, whatever the model.
pub trait Model {
    fn time_step(&mut self, seed: u64) -> Result<StepTime>;
    fn run_row(
        &mut self,
        row: Row,
        seed: u64,
        enforce: Enforcement,
        progress: &mut dyn FnMut(u32, &str),
    ) -> Result<RowResult>;
}

impl<N: Net> Trainer<N> {
    fn init(&self, seed: u64) {
        self.net.init(&self.core, seed);
        self.core.reset_state(true);
    }

    /// Records training step `step` of the epoch (with the ties of phase 2, if any).
    fn record_step(
        &self,
        enc: &mut wgpu::CommandEncoder,
        step: usize,
        ties: &[Tied],
        enforce: Enforcement,
    ) -> Result<()> {
        let c = &self.core;
        c.gather.record(enc, &c.train_set, step, &c.x, &c.labels)?;
        self.net.record_gradients(c, enc)?;
        for t in ties {
            let p = &c.params[c.grouped[t.grouped].param];
            enforce.record_gradients(&t.plan, enc, &p.grad, &t.scratch)?;
        }
        for p in &c.params {
            let mask = p.group.map(|g| &c.grouped[g].mask_buf);
            p.sgd.record_step(enc, &p.grad, mask, &p.buf, &p.velocity)?;
        }
        for t in ties {
            let p = &c.params[c.grouped[t.grouped].param];
            enforce.record_after_step(&t.plan, enc, &p.buf, &t.scratch)?;
        }
        Ok(())
    }

    /// Records `call` (an [`Enforcement`] call on a tie plan, the weights and the scratch) for
    /// every tied layer, then re-applies the layer's mask to its weights, and submits.
    fn enforce_on_weights(
        &self,
        ties: &[Tied],
        call: impl Fn(
            &TiePlan,
            &mut wgpu::CommandEncoder,
            &wgpu::Buffer,
            &wgpu::Buffer,
        ) -> tied::Result<()>,
    ) -> Result<()> {
        let c = &self.core;
        let mut enc = c.encoder();
        for t in ties {
            let g = &c.grouped[t.grouped];
            let w = &c.params[g.param].buf;
            call(&t.plan, &mut enc, w, &t.scratch)?;
            g.mask.record_apply(&mut enc, &g.mask_buf, w)?;
        }
        c.gpu.queue().submit([enc.finish()]);
        Ok(())
    }

    /// One epoch of training in order `order`; returns the mean training loss.
    fn train_epoch(&self, order: &[u32], ties: &[Tied], enforce: Enforcement) -> Result<f32> {
        let c = &self.core;
        c.gather.set_order(order)?;
        let mut enc = c.encoder();
        enc.clear_buffer(&c.stats, 0, None);
        const CHUNK: usize = 16;
        for step in 0..c.gather.steps() {
            self.record_step(&mut enc, step, ties, enforce)?;
            if step % CHUNK == CHUNK - 1 {
                c.gpu.queue().submit([enc.finish()]);
                enc = c.encoder();
            }
        }
        c.gpu.queue().submit([enc.finish()]);
        let stats = pollster::block_on(XentStats::read(&c.gpu, &c.stats))?;
        Ok(stats.mean_loss())
    }

    /// Test accuracy (BatchNorm with its running statistics).
    fn evaluate(&self) -> Result<f64> {
        let c = &self.core;
        let mut enc = c.encoder();
        enc.clear_buffer(&c.eval_stats, 0, None);
        for step in 0..c.gather_eval.steps() {
            c.gather_eval
                .record(&mut enc, &c.test_set, step, &c.eval_x, &c.eval_labels)?;
            self.net.record_eval(c, &mut enc)?;
        }
        c.gpu.queue().submit([enc.finish()]);
        Ok(pollster::block_on(XentStats::read(&c.gpu, &c.eval_stats))?.accuracy())
    }

    /// The prox of every grouped layer for epoch `epoch`, then the masks' update from the new
    /// norms (groups at f32 epsilon or below are masked for good) and their application.
    fn prox(&self, weights: &Weights, epoch: u32) -> Result<()> {
        let c = &self.core;
        let mut enc = c.encoder();
        for g in &c.grouped {
            let eta = c.protocol.lr(epoch) * c.protocol.prox_scale * g.prox_factor;
            let seq = weights.sequence(g.layout.groups(), eta)?;
            c.gpu
                .queue()
                .write_buffer(&g.prox_weights, 0, bytemuck::cast_slice(&seq));
            let p = &c.params[g.param];
            g.growl.record(&mut enc, &p.buf, &g.prox_weights, None)?;
            g.mask
                .record_update(&mut enc, g.growl.new_norms(), &g.mask_buf)?;
            g.mask.record_apply(&mut enc, &g.mask_buf, &p.buf)?;
            g.mask.record_apply(&mut enc, &g.mask_buf, &p.velocity)?;
        }
        c.gpu.queue().submit([enc.finish()]);
        Ok(())
    }

    /// Nonzero groups of each grouped layer.
    fn alive_groups(&self) -> Result<Vec<usize>> {
        let c = &self.core;
        c.grouped
            .iter()
            .map(|g| {
                let m =
                    pollster::block_on(buffer::read_back(&c.gpu, &g.mask_buf, g.layout.groups()))?;
                Ok(m.iter().filter(|m| m.to_bits() != 0).count())
            })
            .collect()
    }

    /// The grouped layers' compression when only zero groups are counted.
    fn alive_compression(&self, alive: &[usize]) -> f64 {
        let (mut total, mut unique) = (0usize, 0usize);
        for (g, &a) in self.core.grouped.iter().zip(alive) {
            let n = g.layout.groups();
            total += g.layout.len();
            unique += a * (g.layout.len() / n.max(1)) + usize::from(a < n);
        }
        total as f64 / unique.max(1) as f64
    }
}

impl<N: Net> Model for Trainer<N> {
    /// Times one training step: GPU time from timestamps (or the wall clock), and the wall
    /// time of recording, submitting and finishing an epoch's steps.
    fn time_step(&mut self, seed: u64) -> Result<StepTime> {
        self.init(seed);
        self.core.set_hyper(self.core.protocol.lr0, 0.0)?;
        let steps = self.core.gather.steps().min(32);
        let en = Enforcement::Epoch;
        let timing = tied::timing::time_gpu(&self.core.gpu, steps as u32, 2, |enc| {
            self.record_step(enc, 0, &[], en)
                .map_err(|e| tied::Error::Validation(e.to_string()))
        })?;
        let start = Instant::now();
        let mut enc = self.core.encoder();
        for step in 0..steps {
            self.record_step(&mut enc, step, &[], en)?;
        }
        self.core.gpu.queue().submit([enc.finish()]);
        pollster::block_on(read_back(&self.core.gpu, &self.core.stats, 1))?;
        let wall_ms = start.elapsed().as_secs_f64() * 1e3 / steps as f64;
        Ok(StepTime {
            wall_ms,
            gpu_ms: timing.ms,
            method: timing.method.name(),
        })
    }

    /// One row of the table: phase 1, clustering, phase 2 with ties enforced as `enforce`.
    fn run_row(
        &mut self,
        row: Row,
        seed: u64,
        enforce: Enforcement,
        progress: &mut dyn FnMut(u32, &str),
    ) -> Result<RowResult> {
        let p = self.core.protocol.clone();
        self.init(seed);
        let reg = row.regulariser();
        let wd = row.weight_decay();
        let epochs1 = if row.clusters() {
            p.epochs[0]
        } else {
            p.epochs[0] + p.epochs[1]
        };
        let samples = self.core.train_set.samples();
        let mut history = Vec::new();
        let start = Instant::now();
        let mut epoch = 0;
        let mut alive: Vec<usize> = self
            .core
            .grouped
            .iter()
            .map(|g| g.layout.groups())
            .collect();
        while epoch < epochs1 {
            self.core.set_hyper(p.lr(epoch), wd)?;
            let order = shuffle(samples, seed, u64::from(epoch));
            let loss = self.train_epoch(&order, &[], enforce)?;
            if let Some(w) = &reg {
                self.prox(w, epoch)?;
                alive = self.alive_groups()?;
            }
            let acc = self.evaluate()?;
            history.push(EpochPoint {
                epoch,
                train_loss: loss,
                test_accuracy: acc,
                compression: self.alive_compression(&alive),
            });
            epoch += 1;
            let groups: Vec<String> = alive.iter().map(|a| a.to_string()).collect();
            let msg = format!(
                "phase 1, loss {loss:.3}, test {:.2}%, {} groups",
                100.0 * acc,
                groups.join("/")
            );
            if std::env::var_os("L2S_DEBUG").is_some() {
                eprintln!("{} epoch {epoch}: {msg}", row.name());
            }
            progress(epoch, &msg);
            // The public code stops when 3 or fewer groups are left.
            if alive.iter().any(|&a| a <= 3) {
                break;
            }
        }
        let seconds1 = start.elapsed().as_secs_f64();
        let mut layers = Vec::new();
        for (i, g) in self.core.grouped.iter().enumerate() {
            let w = self.core.read(i)?;
            layers.push(LayerResult {
                name: g.name,
                metrics: ShareMetrics::from_tensor(g.layout, &w)?,
                norms: tied::share::discover::group_norms(g.layout, &w)?,
                similarity: None,
                deviation: None,
            });
        }
        let mut result = RowResult {
            row,
            enforce,
            layers,
            accuracy: history.last().map_or(0.0, |h| h.test_accuracy),
            best_accuracy: history.iter().map(|h| h.test_accuracy).fold(0.0, f64::max),
            epochs: [epoch, 0],
            seconds: [seconds1, 0.0, 0.0],
            history,
        };
        if !row.clusters() {
            return Ok(result);
        }
        // Clustering: zero groups masked, the others tied by affinity propagation.
        let start = Instant::now();
        let mut ties = Vec::new();
        for (i, g) in self.core.grouped.iter().enumerate() {
            let w = self.core.read(i)?;
            let c = &self.core;
            let found = c
                .discover
                .discover_on_blocking(&c.similarity, g.layout, &w)?;
            let mask: Vec<u32> = found.zero.iter().map(|&z| u32::from(!z)).collect();
            self.core
                .gpu
                .queue()
                .write_buffer(&g.mask_buf, 0, bytemuck::cast_slice(&mask));
            let plan = self.core.ties.plan(&found.map)?;
            let scratch = zeros(&self.core.gpu, "tie values", plan.values_len().max(1));
            result.layers[i].similarity = Some(similarity_by_cluster(c, g.layout, &w, &found)?);
            ties.push(Tied {
                grouped: i,
                found,
                plan,
                scratch,
            });
        }
        result.seconds[2] = start.elapsed().as_secs_f64();
        // Phase 2: momentum reset, masks kept, ties enforced as `enforce`, at the last rate
        // of phase 1.
        let start = Instant::now();
        self.core.reset_state(false);
        self.enforce_on_weights(&ties, |plan, enc, w, scratch| {
            enforce.record_start(plan, enc, w, scratch)
        })?;
        self.core.set_hyper(p.lr(epoch.saturating_sub(1)), wd)?;
        let mut best2 = 0.0f64;
        // What the tensors hold when tied (the maps and masks do not change).
        let mapped: Vec<ShareMetrics> = ties
            .iter()
            .map(|t| ShareMetrics::from_map(&t.found.map, &t.found.zero))
            .collect::<tied::Result<_>>()?;
        let compression2 = super::combined(&mapped).compression();
        for e2 in 0..p.epochs[1] {
            let order = shuffle(samples, seed, u64::from(epoch + e2));
            let loss = self.train_epoch(&order, &ties, enforce)?;
            self.enforce_on_weights(&ties, |plan, enc, w, scratch| {
                enforce.record_after_epoch(plan, enc, w, scratch)
            })?;
            let acc = self.evaluate()?;
            best2 = best2.max(acc);
            result.history.push(EpochPoint {
                epoch: epoch + e2,
                train_loss: loss,
                test_accuracy: acc,
                compression: compression2,
            });
            progress(
                epoch + e2 + 1,
                &format!("phase 2, loss {loss:.3}, test {:.2}%", 100.0 * acc),
            );
        }
        result.seconds[1] = start.elapsed().as_secs_f64();
        for (t, mapped) in ties.iter().zip(mapped) {
            let g = &self.core.grouped[t.grouped];
            let w = self.core.read(t.grouped)?;
            let deviation = t.found.map.max_deviation(&w)?;
            // Every mode leaves the tied groups exactly tied after the last epoch.
            if deviation != 0.0 {
                return Err(format!(
                    "{}: {} groups came apart in phase 2 ({}): max deviation {deviation:e}",
                    row.name(),
                    g.name,
                    enforce.name()
                )
                .into());
            }
            let counted = ShareMetrics::from_tensor(g.layout, &w)?;
            let layer = &mut result.layers[t.grouped];
            // The tensor's own count; the map's when two clusters' means happen to coincide.
            layer.metrics = if counted.unique >= mapped.unique {
                counted
            } else {
                mapped
            };
            layer.deviation = Some(deviation);
        }
        result.epochs = [epoch, p.epochs[1]];
        result.accuracy = result.history.last().map_or(0.0, |h| h.test_accuracy);
        result.best_accuracy = best2;
        Ok(result)
    }
}

/// The paper's similarity of the nonzero groups, rows and columns ordered by cluster, with
/// the cluster boundaries.
fn similarity_by_cluster(
    core: &Core,
    layout: GroupLayout,
    w: &[f32],
    found: &Discovery,
) -> Result<(usize, Vec<f64>, Vec<usize>)> {
    let members = found.clustering.members();
    let order: Vec<usize> = members
        .iter()
        .flat_map(|m| m.iter().map(|&i| found.nonzero[i]))
        .collect();
    let mut bounds = Vec::new();
    let mut at = 0;
    for m in &members {
        at += m.len();
        bounds.push(at);
    }
    let s = core.similarity.similarity_blocking(layout, w, &order)?;
    Ok((order.len(), s.into_iter().map(f64::from).collect(), bounds))
}
