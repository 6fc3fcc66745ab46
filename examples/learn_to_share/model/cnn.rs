//! A small conv net trained with the crate's conv: conv 1 -> 8 (5 x 5, stride 2, pad 2),
//! ReLU, conv 8 -> 16 (5 x 5, stride 2, pad 2), ReLU, fc 16 * 7 * 7 -> 10, softmax
//! cross-entropy. No BatchNorm. The group regulariser acts on conv2's input channels (8
//! groups of 16 x 25 weights) and on fc's input groups (the 784 columns of its `[10, 784]`
//! weight), so conv weights are proxed, clustered and tied like dense ones. (Twice the
//! channels, 16 and 32, made a step 3.7x slower on lavapipe: 706 ms at batch 128.)

use tied::buffer::zeros;
use tied::conv::{
    BackwardDataBuffers, BackwardWeightBuffers, Conv2dPlan, Conv2dShape, ForwardBuffers,
};
use tied::growl::GroupLayout;
use tied::train::{Linear, LinearPlan, LinearShape, ReluPlan, XentPlan};

use super::train_loop::{Core, Net, ParamSpec};
use super::{normals, Result, CLASSES};

const C1: usize = 8;
const C2: usize = 16;
const K: usize = 5;
/// Sides of the activations: 28 -> 14 -> 7.
const S1: usize = 14;
const S2: usize = 7;
const FLAT: usize = C2 * S2 * S2;

const CONV2_GROUPS: GroupLayout = GroupLayout::ConvInChannels {
    c_out: C2,
    c_in: C1,
    khw: K * K,
};
const FC_GROUPS: GroupLayout = GroupLayout::Columns {
    rows: CLASSES,
    cols: FLAT,
};

/// The prox's step on each grouped layer, relative to the mlp's fc1 (quick mode, measured
/// on lavapipe with seed 1): conv2's group lasso at 4 zeroed 5 of its 8 channels by epoch 5
/// (and the run stops at 3 groups left); fc's GrOWL at 0.25 zeroed none of its 784 groups,
/// at 4 all of them after one epoch.
const CONV2_PROX: f32 = 2.0;
const FC_PROX: f32 = 0.5;

const W1: usize = 0;
const B1: usize = 1;
const W2: usize = 2;
const B2: usize = 3;
const W3: usize = 4;
const B3: usize = 5;

/// conv1, conv2, fc weights and biases (weight decay on all).
pub fn params() -> Vec<ParamSpec> {
    let p = |name, len, group| ParamSpec::new(name, len, true, group);
    vec![
        p("conv1", C1 * K * K, None),
        p("b1", C1, None),
        p("conv2", C2 * C1 * K * K, Some((CONV2_GROUPS, CONV2_PROX))),
        p("b2", C2, None),
        p("fc", CLASSES * FLAT, Some((FC_GROUPS, FC_PROX))),
        p("b3", CLASSES, None),
    ]
}

fn conv_shape(batch: usize, c_in: usize, c_out: usize, side: usize) -> Conv2dShape {
    let [c_in, c_out, side] = [c_in, c_out, side].map(|v| v as u32);
    Conv2dShape::new(batch as u32, c_in, c_out, [side, side], [K as u32; 2])
        .stride(2)
        .padding(2)
        .with_bias(true)
}

/// One batch size's plans and activations.
struct Pass {
    conv1: Conv2dPlan,
    conv2: Conv2dPlan,
    fc: LinearPlan,
    relu1: ReluPlan,
    relu2: ReluPlan,
    xent: XentPlan,
    h1: wgpu::Buffer,
    a1: wgpu::Buffer,
    h2: wgpu::Buffer,
    a2: wgpu::Buffer,
    logits: wgpu::Buffer,
    dlogits: wgpu::Buffer,
    per_sample: wgpu::Buffer,
}

impl Pass {
    fn new(core: &Core, b: usize) -> Result<Self> {
        let z = |n| zeros(&core.gpu, "cnn", n);
        let t = &core.train;
        let (n1, n2) = (b * C1 * S1 * S1, b * FLAT);
        Ok(Self {
            conv1: core.conv.plan(&conv_shape(b, 1, C1, 28))?,
            conv2: core.conv.plan(&conv_shape(b, C1, C2, S1))?,
            fc: Linear::new(&core.conv).plan(LinearShape::new(
                b as u32,
                FLAT as u32,
                CLASSES as u32,
            ))?,
            relu1: t.relu(n1)?,
            relu2: t.relu(n2)?,
            xent: t.softmax_xent(b, CLASSES)?,
            h1: z(n1),
            a1: z(n1),
            h2: z(n2),
            a2: z(n2),
            logits: z(b * CLASSES),
            dlogits: z(b * CLASSES),
            per_sample: z(2 * b),
        })
    }

    /// Records the forward pass from `x` to the loss totals in `stats`.
    fn record_forward(
        &self,
        core: &Core,
        enc: &mut wgpu::CommandEncoder,
        x: &wgpu::Buffer,
        labels: &wgpu::Buffer,
        stats: &wgpu::Buffer,
    ) -> Result<()> {
        let w = |i: usize| &core.params[i].buf;
        let conv = |plan: &Conv2dPlan, enc: &mut wgpu::CommandEncoder, i, wi: usize, o| {
            plan.record_forward(
                enc,
                &ForwardBuffers {
                    input: i,
                    weight: w(wi),
                    bias: Some(w(wi + 1)),
                    output: o,
                },
            )
        };
        conv(&self.conv1, enc, x, W1, &self.h1)?;
        self.relu1.record_forward(enc, &self.h1, &self.a1)?;
        conv(&self.conv2, enc, &self.a1, W2, &self.h2)?;
        self.relu2.record_forward(enc, &self.h2, &self.a2)?;
        self.fc
            .record_forward(enc, &self.a2, w(W3), Some(w(B3)), &self.logits)?;
        self.xent
            .record(enc, &self.logits, labels, &self.dlogits, &self.per_sample)?;
        self.xent.record_accumulate(enc, &self.per_sample, stats)?;
        Ok(())
    }
}

/// The conv net's plans and buffers, reused by every row.
pub struct Cnn {
    train: Pass,
    eval: Pass,
    /// Gradients of a2 / h2 and a1 / h1.
    da2: wgpu::Buffer,
    dh2: wgpu::Buffer,
    da1: wgpu::Buffer,
    dh1: wgpu::Buffer,
}

impl Cnn {
    pub fn new(core: &Core) -> Result<Self> {
        let z = |n| zeros(&core.gpu, "cnn", n);
        let b = core.batch;
        Ok(Self {
            train: Pass::new(core, b)?,
            eval: Pass::new(core, core.eval_batch)?,
            da2: z(b * FLAT),
            dh2: z(b * FLAT),
            da1: z(b * C1 * S1 * S1),
            dh1: z(b * C1 * S1 * S1),
        })
    }
}

impl Net for Cnn {
    /// He initialisation, N(0, sqrt(2 / fan_in)) (without BatchNorm the paper's fan-out rule
    /// would scale fc's 1568 inputs up ~20x), conv weights and fc times the protocol's
    /// `init_scale`; biases 0.1.
    fn init(&self, core: &Core, seed: u64) {
        let s = core.protocol.init_scale;
        let he = |fan_in: usize| (2.0 / fan_in as f32).sqrt();
        let values = [
            normals(seed, C1 * K * K, he(K * K)),
            vec![0.1; C1],
            normals(seed ^ 0x5eed, C2 * C1 * K * K, he(C1 * K * K) * s),
            vec![0.1; C2],
            normals(seed ^ 0xfc, CLASSES * FLAT, he(FLAT) * s),
            vec![0.1; CLASSES],
        ];
        for (p, v) in core.params.iter().zip(&values) {
            core.write(&p.buf, v);
        }
    }

    fn record_gradients(&self, core: &Core, enc: &mut wgpu::CommandEncoder) -> Result<()> {
        let t = &self.train;
        let w = |i: usize| &core.params[i].buf;
        let g = |i: usize| &core.params[i].grad;
        t.record_forward(core, enc, &core.x, &core.labels, &core.stats)?;
        t.fc.record_backward_input(enc, &t.dlogits, w(W3), &self.da2)?;
        t.fc.record_backward_weight(enc, &t.dlogits, &t.a2, g(W3), Some(g(B3)))?;
        t.relu2.record_backward(enc, &t.a2, &self.da2, &self.dh2)?;
        t.conv2.record_backward_data(
            enc,
            &BackwardDataBuffers {
                grad_output: &self.dh2,
                weight: w(W2),
                grad_input: &self.da1,
            },
        )?;
        t.conv2.record_backward_weight(
            enc,
            &BackwardWeightBuffers {
                grad_output: &self.dh2,
                input: &t.a1,
                grad_weight: g(W2),
                grad_bias: Some(g(B2)),
            },
        )?;
        t.relu1.record_backward(enc, &t.a1, &self.da1, &self.dh1)?;
        // conv1 needs no input gradient.
        t.conv1.record_backward_weight(
            enc,
            &BackwardWeightBuffers {
                grad_output: &self.dh1,
                input: &core.x,
                grad_weight: g(W1),
                grad_bias: Some(g(B1)),
            },
        )?;
        Ok(())
    }

    fn record_eval(&self, core: &Core, enc: &mut wgpu::CommandEncoder) -> Result<()> {
        self.eval
            .record_forward(core, enc, &core.eval_x, &core.eval_labels, &core.eval_stats)
    }
}
