//! The paper's MLP (784-300-10, ReLU then BatchNorm after fc1), its rows and its two phases,
//! composed from `tied`'s kernels.

use std::time::Instant;

use tied::buffer::{self, read_back, zeros};
use tied::growl::{GroupLayout, GrowlPlan, GrowlProx, Weights};
use tied::share::discover::DiscoverTies;
use tied::share::idx::Dataset;
use tied::share::metrics::ShareMetrics;
use tied::train::{
    shuffle, step_decay, BatchNormBuffers, BatchNormGradBuffers, BatchNormPlan, DataSet,
    GatherPlan, Linear, LinearPlan, LinearShape, MaskPlan, ReluPlan, Sgd, SgdPlan, Train, XentPlan,
    XentStats,
};
use tied::tying::Ties;
use tied::Gpu;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const INPUTS: usize = 784;
const HIDDEN: usize = 300;
const CLASSES: usize = 10;

/// fc1's weight `[HIDDEN, INPUTS]`: GrOWL's groups are its columns, one per input pixel.
const FC1_GROUPS: GroupLayout = GroupLayout::Columns {
    rows: HIDDEN,
    cols: INPUTS,
};

/// The schedule and sizes of a run.
#[derive(Clone, Debug)]
pub struct Protocol {
    /// Training samples used (the first ones of the training file).
    pub train_samples: usize,
    /// Test samples used (the first ones of the test file).
    pub test_samples: usize,
    /// Epochs of phase 1 and phase 2 (the baseline trains for their sum, without phase 2).
    pub epochs: [u32; 2],
    pub batch: usize,
    pub eval_batch: usize,
    pub lr0: f32,
    pub decay: f32,
    pub decay_every: u32,
    pub momentum: f32,
    /// Multiplies the prox's step (`lr * weights`): 1 in the paper's protocol.
    pub prox_scale: f32,
    /// Multiplies fc1's initial weights: 1 in the paper's protocol. Quick mode starts smaller,
    /// so that a few epochs of learning outweigh the random start and correlated inputs'
    /// groups can align (the full schedule washes the start out over hundreds of epochs).
    pub init_scale: f32,
    /// BatchNorm's running-statistics momentum: TensorFlow's 0.99 in the paper's protocol
    /// (429 steps an epoch); 0.9 in quick mode, whose 78-step epochs would otherwise evaluate
    /// with statistics from before the last prox.
    pub bn_momentum: f32,
}

impl Protocol {
    /// The paper's MNIST protocol: 55,000 training images (5,000 held out), batch 128,
    /// lr 1e-3 x 0.96 every 10 epochs, momentum 0.9, 300 + 100 epochs. Phase 2 runs at the
    /// last rate of phase 1, as the public code does.
    pub fn full() -> Self {
        Self {
            train_samples: 55_000,
            test_samples: 10_000,
            epochs: [300, 100],
            batch: 128,
            eval_batch: 1000,
            lr0: 1e-3,
            decay: 0.96,
            decay_every: 10,
            momentum: 0.9,
            prox_scale: 1.0,
            init_scale: 1.0,
            bn_momentum: 0.99,
        }
    }

    /// Few epochs on a subset, sized for a software GPU: 10,000 training and 2,000 test
    /// images, 8 + 4 epochs, a 10x learning rate, fc1 started at a tenth of the paper's scale
    /// and BatchNorm's running statistics at momentum 0.9 (see the fields). The prox's step is
    /// the learning rate times the weights times 0.2: chosen by measurement on lavapipe
    /// (0.1 zeroed no group; 0.3 zeroed every group of the GrOWL + l2 row, 1.0 and more those
    /// of every GrOWL row; 0.2 gave 6-7x compression near the baseline's accuracy). Quick
    /// mode sits close to that edge: the last epochs of phase 1 can lose test accuracy before
    /// phase 2 recovers it.
    pub fn quick() -> Self {
        Self {
            train_samples: 10_000,
            test_samples: 2_000,
            epochs: [8, 4],
            batch: 128,
            eval_batch: 500,
            lr0: 1e-2,
            decay: 0.96,
            decay_every: 10,
            momentum: 0.9,
            prox_scale: 0.2,
            init_scale: 0.1,
            bn_momentum: 0.9,
        }
    }

    pub fn with_epochs(mut self, epochs: Option<[u32; 2]>) -> Self {
        if let Some(e) = epochs {
            self.epochs = e;
        }
        self
    }

    pub fn with_prox_scale(mut self, scale: Option<f32>) -> Self {
        if let Some(s) = scale {
            self.prox_scale = s;
        }
        self
    }

    fn lr(&self, epoch: u32) -> f32 {
        step_decay(self.lr0, self.decay, self.decay_every, epoch)
    }
}

/// The paper's table rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Row {
    Baseline,
    WeightDecay,
    GroupLasso,
    GroupLassoL2,
    Growl,
    GrowlL2,
}

impl Row {
    pub const ALL: [Row; 6] = [
        Row::Baseline,
        Row::WeightDecay,
        Row::GroupLasso,
        Row::GroupLassoL2,
        Row::Growl,
        Row::GrowlL2,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Row::Baseline => "baseline",
            Row::WeightDecay => "weight_decay",
            Row::GroupLasso => "group_lasso",
            Row::GroupLassoL2 => "group_lasso_l2",
            Row::Growl => "growl",
            Row::GrowlL2 => "growl_l2",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == s)
    }

    /// The group regulariser's weights (`run_exp.py`): group lasso is a constant sequence,
    /// GrOWL the "PLD" form with t = 0.5.
    fn regulariser(self) -> Option<Weights> {
        match self {
            Row::Baseline | Row::WeightDecay => None,
            Row::GroupLasso => Some(Weights::Oscar { l1: 60.0, l2: 0.0 }),
            Row::GroupLassoL2 => Some(Weights::Oscar { l1: 80.0, l2: 0.0 }),
            Row::Growl => Some(Weights::Pld {
                l1: 12.0,
                l2: 0.215,
                transition: 0.5,
            }),
            Row::GrowlL2 => Some(Weights::Pld {
                l1: 12.0,
                l2: 0.235,
                transition: 0.5,
            }),
        }
    }

    /// `wd` of the `0.5 * wd * |w|^2` term on both layers' weights and biases.
    fn weight_decay(self) -> f32 {
        match self {
            Row::WeightDecay => 1e-2,
            Row::GroupLassoL2 | Row::GrowlL2 => 1e-3,
            _ => 0.0,
        }
    }

    /// Every row but the baseline is clustered and retrained (the public code skips the
    /// clustering of the GrOWL-only row by mistake: see `learn-to-share.md`).
    pub fn clusters(self) -> bool {
        self != Row::Baseline
    }
}

/// One epoch of a row's history.
#[derive(Clone, Debug)]
pub struct EpochPoint {
    pub epoch: u32,
    pub train_loss: f32,
    pub test_accuracy: f64,
    /// Compression of fc1 so far: total / unique values (phase 1 counts only zero groups).
    pub compression: f64,
}

/// What a row produced.
#[derive(Clone, Debug)]
pub struct RowResult {
    pub row: Row,
    pub metrics: ShareMetrics,
    pub accuracy: f64,
    pub best_accuracy: f64,
    pub epochs: [u32; 2],
    pub seconds: [f64; 3],
    pub history: Vec<EpochPoint>,
    /// fc1's group norms after phase 1.
    pub norms: Vec<f64>,
    /// The nonzero groups' similarity, ordered by cluster, and the cluster boundaries.
    pub similarity: Option<(usize, Vec<f64>, Vec<usize>)>,
}

/// The measured cost of one training step.
#[derive(Clone, Debug)]
pub struct StepTime {
    pub wall_ms: f64,
    pub gpu_ms: f64,
    pub method: &'static str,
}

impl RowResult {
    pub fn json(&self, model: &str, info: &wgpu::AdapterInfo, step: &StepTime) -> String {
        format!(
            "{{\"row\": \"{}\", \"model\": \"{model}\", \"sparsity\": {:.4}, \"sharing\": {:.3}, \
             \"compression\": {:.3}, \"accuracy\": {:.4}, \"best_accuracy\": {:.4}, \
             \"epochs\": [{}, {}], \"seconds\": {:.1}, \"phase_seconds\": [{:.1}, {:.1}, {:.1}], \
             \"clusters\": {}, \"step_ms_wall\": {:.3}, \"step_ms_gpu\": {:.3}, \
             \"adapter\": \"{}\", \"backend\": \"{:?}\"}}",
            self.row.name(),
            self.metrics.sparsity(),
            self.metrics.sharing(),
            self.metrics.compression(),
            self.accuracy,
            self.best_accuracy,
            self.epochs[0],
            self.epochs[1],
            self.seconds.iter().sum::<f64>(),
            self.seconds[0],
            self.seconds[1],
            self.seconds[2],
            self.metrics.clusters,
            step.wall_ms,
            step.gpu_ms,
            info.name.replace('"', "'"),
            info.backend,
        )
    }
}

pub fn print_table(results: &[RowResult]) {
    println!(
        "{:<15} {:>9} {:>8} {:>12} {:>9} {:>14} {:>9} {:>19}",
        "row",
        "sparsity",
        "sharing",
        "compression",
        "accuracy",
        "best accuracy*",
        "clusters",
        "seconds (p1/cl/p2)"
    );
    for r in results {
        println!(
            "{:<15} {:>8.1}% {:>8.2} {:>11.1}x {:>8.2}% {:>13.2}% {:>9} {:>8.1}/{:.1}/{:.1}",
            r.row.name(),
            100.0 * r.metrics.sparsity(),
            r.metrics.sharing(),
            r.metrics.compression(),
            100.0 * r.accuracy,
            100.0 * r.best_accuracy,
            r.metrics.clusters,
            r.seconds[0],
            r.seconds[2],
            r.seconds[1],
        );
    }
    println!(
        "accuracy: test accuracy after the last epoch; * best test accuracy over the retraining \
         epochs (over all epochs for the baseline), the figure the paper reports"
    );
}

/// The MLP's buffers and plans on one device, reused by every row.
pub struct Mlp {
    gpu: Gpu,
    protocol: Protocol,
    train_set: DataSet,
    test_set: DataSet,
    gather: GatherPlan,
    gather_eval: GatherPlan,
    fc1: LinearPlan,
    fc2: LinearPlan,
    fc1_eval: LinearPlan,
    fc2_eval: LinearPlan,
    relu: ReluPlan,
    relu_eval: ReluPlan,
    bn: BatchNormPlan,
    bn_eval: BatchNormPlan,
    xent: XentPlan,
    xent_eval: XentPlan,
    /// w1, b1, w2, b2, BN affine.
    sgd: [SgdPlan; 5],
    mask: MaskPlan,
    growl: GrowlPlan,
    ties: Ties,
    b: Buffers,
}

/// Parameters, their velocities and gradients, activations.
struct Buffers {
    params: [wgpu::Buffer; 5],
    velocity: [wgpu::Buffer; 5],
    grads: [wgpu::Buffer; 5],
    running: wgpu::Buffer,
    saved: wgpu::Buffer,
    mask: wgpu::Buffer,
    prox_weights: wgpu::Buffer,
    x: wgpu::Buffer,
    labels: wgpu::Buffer,
    h1: wgpu::Buffer,
    a1: wgpu::Buffer,
    z: wgpu::Buffer,
    logits: wgpu::Buffer,
    dlogits: wgpu::Buffer,
    per_sample: wgpu::Buffer,
    dz: wgpu::Buffer,
    da1: wgpu::Buffer,
    dh1: wgpu::Buffer,
    stats: wgpu::Buffer,
    eval: EvalBuffers,
}

struct EvalBuffers {
    x: wgpu::Buffer,
    labels: wgpu::Buffer,
    h1: wgpu::Buffer,
    a1: wgpu::Buffer,
    z: wgpu::Buffer,
    logits: wgpu::Buffer,
    dlogits: wgpu::Buffer,
    per_sample: wgpu::Buffer,
    stats: wgpu::Buffer,
}

const W1: usize = 0;
const B1: usize = 1;
const W2: usize = 2;
const B2: usize = 3;
const AFFINE: usize = 4;
const PARAM_LENS: [usize; 5] = [
    HIDDEN * INPUTS,
    HIDDEN,
    CLASSES * HIDDEN,
    CLASSES,
    2 * HIDDEN,
];

/// Normal samples from a seeded generator (Box-Muller).
fn normals(seed: u64, n: usize, std: f32) -> Vec<f32> {
    let mut rng = tied::verify::Rng::new(seed);
    (0..n)
        .map(|_| {
            let u1 = (f64::from(rng.uniform()) + 1.0) / 2.0;
            let u2 = (f64::from(rng.uniform()) + 1.0) / 2.0;
            let r = (-2.0 * (1.0 - u1).ln()).sqrt();
            (r * (std::f64::consts::TAU * u2).cos()) as f32 * std
        })
        .collect()
}

fn ones(n: usize) -> Vec<f32> {
    vec![1.0; n]
}

impl Mlp {
    pub fn new(gpu: &Gpu, data: &Dataset, p: &Protocol) -> Result<Self> {
        let train = Train::new(gpu)?;
        let conv = tied::conv::Conv2d::new(gpu)?;
        let linear = Linear::new(&conv);
        let n_train = p.train_samples.min(data.train.labels.len());
        let n_test = p.test_samples.min(data.test.labels.len());
        let dim = data.train.images.image_len();
        if dim != INPUTS || data.test.images.image_len() != INPUTS {
            return Err(format!("the MLP needs 28 x 28 images, the data has {dim} pixels").into());
        }
        let train_set = DataSet::upload(
            gpu,
            &data.train.images.pixels[..n_train * dim],
            &data.train.labels[..n_train],
            dim,
        )?;
        let test_set = DataSet::upload(
            gpu,
            &data.test.images.pixels[..n_test * dim],
            &data.test.labels[..n_test],
            dim,
        )?;
        let (bt, be) = (p.batch, p.eval_batch.min(n_test));
        let hyper = Sgd {
            lr: p.lr0,
            momentum: p.momentum,
            weight_decay: 0.0,
        };
        let sgd = [
            train.sgd(PARAM_LENS[W1], Some(FC1_GROUPS), hyper)?,
            train.sgd(PARAM_LENS[B1], None, hyper)?,
            train.sgd(PARAM_LENS[W2], None, hyper)?,
            train.sgd(PARAM_LENS[B2], None, hyper)?,
            train.sgd(PARAM_LENS[AFFINE], None, hyper)?,
        ];
        let mut mask = train.mask(FC1_GROUPS)?;
        mask.set_threshold(f32::EPSILON)?;
        let z = |n| zeros(gpu, "mlp", n);
        let b = Buffers {
            params: PARAM_LENS.map(z),
            velocity: PARAM_LENS.map(z),
            grads: PARAM_LENS.map(z),
            running: z(2 * HIDDEN),
            saved: z(2 * HIDDEN),
            mask: z(INPUTS),
            prox_weights: z(INPUTS),
            x: z(bt * INPUTS),
            labels: z(bt),
            h1: z(bt * HIDDEN),
            a1: z(bt * HIDDEN),
            z: z(bt * HIDDEN),
            logits: z(bt * CLASSES),
            dlogits: z(bt * CLASSES),
            per_sample: z(2 * bt),
            dz: z(bt * HIDDEN),
            da1: z(bt * HIDDEN),
            dh1: z(bt * HIDDEN),
            stats: z(XentStats::WORDS),
            eval: EvalBuffers {
                x: z(be * INPUTS),
                labels: z(be),
                h1: z(be * HIDDEN),
                a1: z(be * HIDDEN),
                z: z(be * HIDDEN),
                logits: z(be * CLASSES),
                dlogits: z(be * CLASSES),
                per_sample: z(2 * be),
                stats: z(XentStats::WORDS),
            },
        };
        Ok(Self {
            gather: train.gather(&train_set, bt, 1.0 / 255.0)?,
            gather_eval: train.gather(&test_set, be, 1.0 / 255.0)?,
            fc1: linear.plan(LinearShape::new(bt as u32, INPUTS as u32, HIDDEN as u32))?,
            fc2: linear.plan(LinearShape::new(bt as u32, HIDDEN as u32, CLASSES as u32))?,
            fc1_eval: linear.plan(LinearShape::new(be as u32, INPUTS as u32, HIDDEN as u32))?,
            fc2_eval: linear.plan(LinearShape::new(be as u32, HIDDEN as u32, CLASSES as u32))?,
            relu: train.relu(bt * HIDDEN)?,
            relu_eval: train.relu(be * HIDDEN)?,
            bn: train.batch_norm(bt, HIDDEN, 1e-3, p.bn_momentum)?,
            bn_eval: train.batch_norm(be, HIDDEN, 1e-3, p.bn_momentum)?,
            xent: train.softmax_xent(bt, CLASSES)?,
            xent_eval: train.softmax_xent(be, CLASSES)?,
            sgd,
            mask,
            growl: GrowlProx::new(gpu)?.plan(FC1_GROUPS)?,
            ties: Ties::new(gpu)?,
            train_set,
            test_set,
            gpu: gpu.clone(),
            protocol: p.clone(),
            b,
        })
    }

    /// The paper's initialisation (`utils_nn.py`): weights N(0, sqrt(2 / fan_out)), biases
    /// 0.1; BatchNorm gamma 1, beta 0, running mean 0, variance 1; velocities 0; no mask.
    fn init(&self, seed: u64) {
        let q = self.gpu.queue();
        let std1 = (2.0 / HIDDEN as f32).sqrt() * self.protocol.init_scale;
        let w1 = normals(seed, PARAM_LENS[W1], std1);
        let w2 = normals(seed ^ 0x5eed, PARAM_LENS[W2], (2.0 / CLASSES as f32).sqrt());
        let mut affine = ones(HIDDEN);
        affine.extend(vec![0.0; HIDDEN]);
        let mut running = vec![0.0; HIDDEN];
        running.extend(ones(HIDDEN));
        let values = [w1, vec![0.1; HIDDEN], w2, vec![0.1; CLASSES], affine];
        for (buf, v) in self.b.params.iter().zip(&values) {
            q.write_buffer(buf, 0, bytemuck::cast_slice(v));
        }
        self.reset_velocity();
        q.write_buffer(&self.b.running, 0, bytemuck::cast_slice(&running));
        q.write_buffer(&self.b.mask, 0, bytemuck::cast_slice(&vec![1u32; INPUTS]));
    }

    /// Zeroes the optimiser's velocities on the GPU (no host upload).
    fn reset_velocity(&self) {
        let mut enc = self
            .gpu
            .device()
            .create_command_encoder(&Default::default());
        for v in &self.b.velocity {
            enc.clear_buffer(v, 0, None);
        }
        self.gpu.queue().submit([enc.finish()]);
    }

    fn set_hyper(&mut self, lr: f32, wd: f32) -> Result<()> {
        for (i, plan) in self.sgd.iter_mut().enumerate() {
            plan.set_hyper(Sgd {
                lr,
                momentum: self.protocol.momentum,
                // The paper's weight decay covers both layers' weights and biases.
                weight_decay: if i == AFFINE { 0.0 } else { wd },
            })?;
        }
        Ok(())
    }

    /// Records training step `step` of the epoch.
    fn record_step(&self, enc: &mut wgpu::CommandEncoder, step: usize) -> Result<()> {
        let b = &self.b;
        let [w1, b1, w2, b2, affine] = &b.params;
        let [dw1, db1, dw2, db2, daffine] = &b.grads;
        self.gather
            .record(enc, &self.train_set, step, &b.x, &b.labels)?;
        self.fc1.record_forward(enc, &b.x, w1, Some(b1), &b.h1)?;
        self.relu.record_forward(enc, &b.h1, &b.a1)?;
        self.bn.record_forward(
            enc,
            &BatchNormBuffers {
                x: &b.a1,
                affine,
                y: &b.z,
                saved: &b.saved,
                running: &b.running,
            },
        )?;
        self.fc2
            .record_forward(enc, &b.z, w2, Some(b2), &b.logits)?;
        self.xent
            .record(enc, &b.logits, &b.labels, &b.dlogits, &b.per_sample)?;
        self.xent.record_accumulate(enc, &b.per_sample, &b.stats)?;
        self.fc2.record_backward_input(enc, &b.dlogits, w2, &b.dz)?;
        self.fc2
            .record_backward_weight(enc, &b.dlogits, &b.z, dw2, Some(db2))?;
        self.bn.record_backward(
            enc,
            &BatchNormGradBuffers {
                x: &b.a1,
                dy: &b.dz,
                affine,
                saved: &b.saved,
                dx: &b.da1,
                daffine,
            },
        )?;
        self.relu.record_backward(enc, &b.a1, &b.da1, &b.dh1)?;
        self.fc1
            .record_backward_weight(enc, &b.dh1, &b.x, dw1, Some(db1))?;
        for (i, plan) in self.sgd.iter().enumerate() {
            let mask = (i == W1).then_some(&b.mask);
            plan.record_step(enc, &b.grads[i], mask, &b.params[i], &b.velocity[i])?;
        }
        Ok(())
    }

    /// One epoch of training in order `order`; returns the mean training loss.
    fn train_epoch(&self, order: &[u32]) -> Result<f32> {
        self.gather.set_order(order)?;
        let device = self.gpu.device();
        let mut enc = device.create_command_encoder(&Default::default());
        enc.clear_buffer(&self.b.stats, 0, None);
        const CHUNK: usize = 16;
        for step in 0..self.gather.steps() {
            self.record_step(&mut enc, step)?;
            if step % CHUNK == CHUNK - 1 {
                self.gpu.queue().submit([enc.finish()]);
                enc = device.create_command_encoder(&Default::default());
            }
        }
        self.gpu.queue().submit([enc.finish()]);
        let stats = pollster::block_on(XentStats::read(&self.gpu, &self.b.stats))?;
        Ok(stats.mean_loss())
    }

    /// Test accuracy with the running BatchNorm statistics.
    fn evaluate(&self) -> Result<f64> {
        let e = &self.b.eval;
        let [w1, b1, w2, b2, affine] = &self.b.params;
        let mut enc = self
            .gpu
            .device()
            .create_command_encoder(&Default::default());
        enc.clear_buffer(&e.stats, 0, None);
        for step in 0..self.gather_eval.steps() {
            self.gather_eval
                .record(&mut enc, &self.test_set, step, &e.x, &e.labels)?;
            self.fc1_eval
                .record_forward(&mut enc, &e.x, w1, Some(b1), &e.h1)?;
            self.relu_eval.record_forward(&mut enc, &e.h1, &e.a1)?;
            self.bn_eval
                .record_eval(&mut enc, &e.a1, affine, &self.b.running, &e.z)?;
            self.fc2_eval
                .record_forward(&mut enc, &e.z, w2, Some(b2), &e.logits)?;
            self.xent_eval
                .record(&mut enc, &e.logits, &e.labels, &e.dlogits, &e.per_sample)?;
            self.xent_eval
                .record_accumulate(&mut enc, &e.per_sample, &e.stats)?;
        }
        self.gpu.queue().submit([enc.finish()]);
        Ok(pollster::block_on(XentStats::read(&self.gpu, &e.stats))?.accuracy())
    }

    /// The prox of fc1 for epoch `epoch`, then the mask's update from the new norms (groups
    /// at f32 epsilon or below are masked for good) and its application.
    fn prox(&self, weights: &Weights, epoch: u32) -> Result<()> {
        let eta = self.protocol.lr(epoch) * self.protocol.prox_scale;
        let seq = weights.sequence(INPUTS, eta)?;
        self.gpu
            .queue()
            .write_buffer(&self.b.prox_weights, 0, bytemuck::cast_slice(&seq));
        let mut enc = self
            .gpu
            .device()
            .create_command_encoder(&Default::default());
        let (w1, v1) = (&self.b.params[W1], &self.b.velocity[W1]);
        self.growl
            .record(&mut enc, w1, &self.b.prox_weights, None)?;
        self.mask
            .record_update(&mut enc, self.growl.new_norms(), &self.b.mask)?;
        self.mask.record_apply(&mut enc, &self.b.mask, w1)?;
        self.mask.record_apply(&mut enc, &self.b.mask, v1)?;
        self.gpu.queue().submit([enc.finish()]);
        Ok(())
    }

    fn alive_groups(&self) -> Result<usize> {
        let mask = pollster::block_on(buffer::read_back(&self.gpu, &self.b.mask, INPUTS))?;
        Ok(mask.iter().filter(|m| m.to_bits() != 0).count())
    }

    /// Times one training step: GPU time from timestamps (or the wall clock), and the wall
    /// time of recording, submitting and finishing an epoch's steps.
    pub fn time_step(&mut self, seed: u64) -> Result<StepTime> {
        self.init(seed);
        self.set_hyper(self.protocol.lr0, 0.0)?;
        let steps = self.gather.steps().min(32);
        let timing = tied::timing::time_gpu(&self.gpu, steps as u32, 2, |enc| {
            self.record_step(enc, 0)
                .map_err(|e| tied::Error::Validation(e.to_string()))
        })?;
        let start = Instant::now();
        let mut enc = self
            .gpu
            .device()
            .create_command_encoder(&Default::default());
        for step in 0..steps {
            self.record_step(&mut enc, step)?;
        }
        self.gpu.queue().submit([enc.finish()]);
        pollster::block_on(read_back(&self.gpu, &self.b.stats, 1))?;
        let wall_ms = start.elapsed().as_secs_f64() * 1e3 / steps as f64;
        Ok(StepTime {
            wall_ms,
            gpu_ms: timing.ms,
            method: timing.method.name(),
        })
    }

    /// One row of the table: phase 1, clustering, phase 2.
    pub fn run_row(
        &mut self,
        row: Row,
        seed: u64,
        progress: &mut dyn FnMut(u32, &str),
    ) -> Result<RowResult> {
        let p = self.protocol.clone();
        self.init(seed);
        let reg = row.regulariser();
        let wd = row.weight_decay();
        let epochs1 = if row.clusters() {
            p.epochs[0]
        } else {
            p.epochs[0] + p.epochs[1]
        };
        let samples = self.train_set.samples();
        let mut history = Vec::new();
        let start = Instant::now();
        let mut epoch = 0;
        let mut alive = INPUTS;
        while epoch < epochs1 {
            self.set_hyper(p.lr(epoch), wd)?;
            let loss = self.train_epoch(&shuffle(samples, seed, u64::from(epoch)))?;
            if let Some(w) = &reg {
                self.prox(w, epoch)?;
                alive = self.alive_groups()?;
            }
            let acc = self.evaluate()?;
            history.push(EpochPoint {
                epoch,
                train_loss: loss,
                test_accuracy: acc,
                compression: INPUTS as f64 / alive.max(1) as f64,
            });
            epoch += 1;
            let msg = format!(
                "phase 1, loss {loss:.3}, test {:.2}%, {alive} groups",
                100.0 * acc
            );
            if std::env::var_os("L2S_DEBUG").is_some() {
                eprintln!("{} epoch {epoch}: {msg}", row.name());
            }
            progress(epoch, &msg);
            // The public code stops when 3 or fewer groups are left.
            if alive <= 3 {
                break;
            }
        }
        let seconds1 = start.elapsed().as_secs_f64();
        let w1 = pollster::block_on(read_back(&self.gpu, &self.b.params[W1], PARAM_LENS[W1]))?;
        let norms = tied::share::discover::group_norms(FC1_GROUPS, &w1)?;
        let mut result = RowResult {
            row,
            metrics: ShareMetrics::from_tensor(FC1_GROUPS, &w1)?,
            accuracy: history.last().map_or(0.0, |h| h.test_accuracy),
            best_accuracy: history.iter().map(|h| h.test_accuracy).fold(0.0, f64::max),
            epochs: [epoch, 0],
            seconds: [seconds1, 0.0, 0.0],
            history,
            norms,
            similarity: None,
        };
        if !row.clusters() {
            return Ok(result);
        }
        // Clustering: zero groups masked, the others tied by affinity propagation.
        let start = Instant::now();
        let found = DiscoverTies::default().discover(FC1_GROUPS, &w1)?;
        let mask: Vec<u32> = found.zero.iter().map(|&z| u32::from(!z)).collect();
        self.gpu
            .queue()
            .write_buffer(&self.b.mask, 0, bytemuck::cast_slice(&mask));
        let tie_plan = self.ties.plan(&found.map)?;
        let scratch = zeros(&self.gpu, "tie values", tie_plan.values_len().max(1));
        result.similarity = Some(similarity_by_cluster(&w1, &found));
        result.seconds[2] = start.elapsed().as_secs_f64();
        // Phase 2: momentum reset, masks kept, group averaging at the end of every epoch, at
        // the last rate of phase 1.
        let start = Instant::now();
        self.reset_velocity();
        let lr2 = p.lr(epoch.saturating_sub(1));
        self.set_hyper(lr2, wd)?;
        let mut best2 = 0.0f64;
        // What the tensor holds after every projection (the map and mask do not change).
        let metrics = ShareMetrics::from_map(&found.map, &found.zero)?;
        for e2 in 0..p.epochs[1] {
            let order = shuffle(samples, seed, u64::from(epoch + e2));
            let loss = self.train_epoch(&order)?;
            let mut enc = self
                .gpu
                .device()
                .create_command_encoder(&Default::default());
            let w1 = &self.b.params[W1];
            tie_plan.record_project(&mut enc, w1, &scratch)?;
            self.mask.record_apply(&mut enc, &self.b.mask, w1)?;
            self.gpu.queue().submit([enc.finish()]);
            let acc = self.evaluate()?;
            best2 = best2.max(acc);
            result.history.push(EpochPoint {
                epoch: epoch + e2,
                train_loss: loss,
                test_accuracy: acc,
                compression: metrics.compression(),
            });
            progress(
                epoch + e2 + 1,
                &format!("phase 2, loss {loss:.3}, test {:.2}%", 100.0 * acc),
            );
        }
        result.seconds[1] = start.elapsed().as_secs_f64();
        let w1 = pollster::block_on(read_back(&self.gpu, &self.b.params[W1], PARAM_LENS[W1]))?;
        let counted = ShareMetrics::from_tensor(FC1_GROUPS, &w1)?;
        // The tensor's own count; the map's when two clusters' means happen to coincide.
        result.metrics = if counted.unique >= metrics.unique {
            counted
        } else {
            metrics
        };
        result.epochs = [epoch, p.epochs[1]];
        result.accuracy = result.history.last().map_or(0.0, |h| h.test_accuracy);
        result.best_accuracy = best2;
        Ok(result)
    }
}

/// The paper's similarity of the nonzero groups, rows and columns ordered by cluster, with
/// the cluster boundaries.
fn similarity_by_cluster(
    w1: &[f32],
    found: &tied::share::discover::Discovery,
) -> (usize, Vec<f64>, Vec<usize>) {
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
    let s = tied::share::discover::similarity(FC1_GROUPS, w1, &order).unwrap_or_default();
    (order.len(), s, bounds)
}
