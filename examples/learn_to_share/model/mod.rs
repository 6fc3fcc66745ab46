//! The demo's models, rows and protocol: the paper's MLP ([`mlp`]), a small conv net
//! ([`cnn`]), and the two phases they share ([`train_loop`]), composed from `tied`'s kernels.

pub mod cnn;
pub mod mlp;
pub mod train_loop;

use tied::growl::Weights;
use tied::share::metrics::ShareMetrics;
use tied::train::step_decay;
use tied::tying::Enforcement;

pub use train_loop::Model;

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Pixels of an image (28 x 28).
pub const INPUTS: usize = 784;
/// Classes of the labels.
pub const CLASSES: usize = 10;

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

    /// The quick protocol for `model`: the cnn's conv layers cost about four times the
    /// mlp's step, so it trains on fewer images, from He initialisation at full scale.
    pub fn quick_for(model: &str) -> Self {
        match model {
            "cnn" => Self {
                train_samples: 5_000,
                test_samples: 2_000,
                init_scale: 1.0,
                ..Self::quick()
            },
            _ => Self::quick(),
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

    pub fn lr(&self, epoch: u32) -> f32 {
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
    /// Compression of the grouped layers so far: total / unique values (phase 1 counts only
    /// zero groups).
    pub compression: f64,
}

/// One grouped layer's outcome.
#[derive(Clone, Debug)]
pub struct LayerResult {
    pub name: &'static str,
    pub metrics: ShareMetrics,
    /// Group norms after phase 1.
    pub norms: Vec<f64>,
    /// The nonzero groups' similarity, ordered by cluster, and the cluster boundaries.
    pub similarity: Option<(usize, Vec<f64>, Vec<usize>)>,
    /// The largest difference between members of one cluster after phase 2 (0: tied).
    pub deviation: Option<f32>,
}

/// What a row produced.
#[derive(Clone, Debug)]
pub struct RowResult {
    pub row: Row,
    pub enforce: Enforcement,
    /// The grouped layers, in the model's order.
    pub layers: Vec<LayerResult>,
    pub accuracy: f64,
    pub best_accuracy: f64,
    pub epochs: [u32; 2],
    pub seconds: [f64; 3],
    pub history: Vec<EpochPoint>,
}

/// The measured cost of one training step.
#[derive(Clone, Debug)]
pub struct StepTime {
    pub wall_ms: f64,
    pub gpu_ms: f64,
    pub method: &'static str,
}

/// The metrics of several grouped layers as one: counts added (each layer stores its own
/// values, its own 0 included), so compression is total parameters over unique values of
/// the grouped layers, and sparsity the fraction of their parameters in zero groups (for
/// one layer: zero groups / groups, the paper's).
pub fn combined(layers: &[ShareMetrics]) -> Overall {
    let mut o = Overall::default();
    for m in layers {
        o.params += m.params;
        o.zero_params += m.params - m.nonzero_capacity();
        o.nonzero += m.nonzero;
        o.unique_nonzero += m.unique_nonzero;
        o.unique += m.unique;
        o.clusters += m.clusters;
    }
    o
}

/// Counts of several layers together ([`combined`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Overall {
    pub params: usize,
    pub zero_params: usize,
    pub nonzero: usize,
    pub unique_nonzero: usize,
    pub unique: usize,
    pub clusters: usize,
}

impl Overall {
    pub fn sparsity(&self) -> f64 {
        self.zero_params as f64 / self.params.max(1) as f64
    }
    pub fn sharing(&self) -> f64 {
        if self.unique_nonzero == 0 {
            1.0
        } else {
            self.nonzero as f64 / self.unique_nonzero as f64
        }
    }
    pub fn compression(&self) -> f64 {
        if self.unique == 0 {
            1.0
        } else {
            self.params as f64 / self.unique as f64
        }
    }
}

/// Parameters in nonzero groups.
trait Capacity {
    fn nonzero_capacity(&self) -> usize;
}

impl Capacity for ShareMetrics {
    fn nonzero_capacity(&self) -> usize {
        let per_group = self.params / self.groups.max(1);
        (self.groups - self.zero_groups) * per_group
    }
}

impl RowResult {
    pub fn overall(&self) -> Overall {
        let m: Vec<ShareMetrics> = self.layers.iter().map(|l| l.metrics).collect();
        combined(&m)
    }

    /// The largest within-cluster deviation after phase 2 over the layers (None: no phase 2).
    pub fn deviation(&self) -> Option<f32> {
        self.layers
            .iter()
            .filter_map(|l| l.deviation)
            .reduce(f32::max)
    }

    pub fn json(&self, model: &str, info: &wgpu::AdapterInfo, step: &StepTime) -> String {
        let o = self.overall();
        let layers: Vec<String> = self
            .layers
            .iter()
            .map(|l| {
                format!(
                    "{{\"name\": \"{}\", \"sparsity\": {:.4}, \"sharing\": {:.3}, \
                     \"compression\": {:.3}, \"clusters\": {}, \"max_tie_deviation\": {}}}",
                    l.name,
                    l.metrics.sparsity(),
                    l.metrics.sharing(),
                    l.metrics.compression(),
                    l.metrics.clusters,
                    l.deviation.map_or("null".into(), |d| format!("{d:e}")),
                )
            })
            .collect();
        format!(
            "{{\"row\": \"{}\", \"model\": \"{model}\", \"enforce\": \"{}\", \
             \"sparsity\": {:.4}, \"sharing\": {:.3}, \
             \"compression\": {:.3}, \"accuracy\": {:.4}, \"best_accuracy\": {:.4}, \
             \"epochs\": [{}, {}], \"seconds\": {:.1}, \"phase_seconds\": [{:.1}, {:.1}, {:.1}], \
             \"clusters\": {}, \"layers\": [{}], \"step_ms_wall\": {:.3}, \"step_ms_gpu\": {:.3}, \
             \"adapter\": \"{}\", \"backend\": \"{:?}\"}}",
            self.row.name(),
            self.enforce.name(),
            o.sparsity(),
            o.sharing(),
            o.compression(),
            self.accuracy,
            self.best_accuracy,
            self.epochs[0],
            self.epochs[1],
            self.seconds.iter().sum::<f64>(),
            self.seconds[0],
            self.seconds[1],
            self.seconds[2],
            o.clusters,
            layers.join(", "),
            step.wall_ms,
            step.gpu_ms,
            info.name.replace('"', "'"),
            info.backend,
        )
    }
}

pub fn print_table(results: &[RowResult]) {
    println!(
        "{:<15} {:>9} {:>8} {:>12} {:>9} {:>14} {:>9} {:>19} {:>9}",
        "row",
        "sparsity",
        "sharing",
        "compression",
        "accuracy",
        "best accuracy*",
        "clusters",
        "seconds (p1/cl/p2)",
        "tie dev.",
    );
    for r in results {
        let o = r.overall();
        println!(
            "{:<15} {:>8.1}% {:>8.2} {:>11.1}x {:>8.2}% {:>13.2}% {:>9} {:>8.1}/{:.1}/{:.1} {:>9}",
            r.row.name(),
            100.0 * o.sparsity(),
            o.sharing(),
            o.compression(),
            100.0 * r.accuracy,
            100.0 * r.best_accuracy,
            o.clusters,
            r.seconds[0],
            r.seconds[2],
            r.seconds[1],
            r.deviation().map_or("-".into(), |d| if d == 0.0 {
                "0".into()
            } else {
                format!("{d:.1e}")
            }),
        );
        if r.layers.len() > 1 {
            for l in &r.layers {
                println!(
                    "{:<15} {:>8.1}% {:>8.2} {:>11.1}x {:>9} {:>14} {:>9}",
                    format!("  {}", l.name),
                    100.0 * l.metrics.sparsity(),
                    l.metrics.sharing(),
                    l.metrics.compression(),
                    "",
                    "",
                    l.metrics.clusters,
                );
            }
        }
    }
    println!(
        "accuracy: test accuracy after the last epoch; * best test accuracy over the retraining \
         epochs (over all epochs for the baseline), the figure the paper reports; tie dev.: the \
         largest difference between members of one cluster after phase 2 (0: exactly tied)"
    );
    if results.iter().any(|r| r.layers.len() > 1) {
        println!(
            "per layer: sparsity = zero groups / groups; the row's line is over the grouped \
             layers together (sparsity = their parameters in zero groups)"
        );
    }
}

/// Normal samples from a seeded generator (Box-Muller).
pub fn normals(seed: u64, n: usize, std: f32) -> Vec<f32> {
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
