//! The paper's MLP: fc 784 -> 300, ReLU, BatchNorm (after the ReLU), fc 300 -> 10, softmax
//! cross-entropy; GrOWL on fc1's input groups (the columns of its `[300, 784]` weight).

use tied::buffer::zeros;
use tied::growl::GroupLayout;
use tied::train::{
    BatchNormBuffers, BatchNormGradBuffers, BatchNormPlan, Linear, LinearPlan, LinearShape,
    ReluPlan, XentPlan,
};

use super::train_loop::{Core, Net, ParamSpec};
use super::{normals, Protocol, Result, CLASSES, INPUTS};

const HIDDEN: usize = 300;

/// fc1's weight `[HIDDEN, INPUTS]`: GrOWL's groups are its columns, one per input pixel.
const FC1_GROUPS: GroupLayout = GroupLayout::Columns {
    rows: HIDDEN,
    cols: INPUTS,
};

const W1: usize = 0;
const B1: usize = 1;
const W2: usize = 2;
const B2: usize = 3;
const AFFINE: usize = 4;

/// w1, b1, w2, b2 (weight decay on all four), BN's affine (gamma, beta).
pub fn params() -> Vec<ParamSpec> {
    let p = ParamSpec::new;
    vec![
        p("fc1", HIDDEN * INPUTS, true, Some((FC1_GROUPS, 1.0))),
        p("b1", HIDDEN, true, None),
        p("fc2", CLASSES * HIDDEN, true, None),
        p("b2", CLASSES, true, None),
        p("bn", 2 * HIDDEN, false, None),
    ]
}

/// One batch size's plans and activations.
struct Pass {
    fc1: LinearPlan,
    fc2: LinearPlan,
    relu: ReluPlan,
    bn: BatchNormPlan,
    xent: XentPlan,
    h1: wgpu::Buffer,
    a1: wgpu::Buffer,
    z: wgpu::Buffer,
    logits: wgpu::Buffer,
    dlogits: wgpu::Buffer,
    per_sample: wgpu::Buffer,
}

impl Pass {
    fn new(core: &Core, b: usize, p: &Protocol) -> Result<Self> {
        let linear = Linear::new(&core.conv);
        let z = |n| zeros(&core.gpu, "mlp", n);
        let t = &core.train;
        Ok(Self {
            fc1: linear.plan(LinearShape::new(b as u32, INPUTS as u32, HIDDEN as u32))?,
            fc2: linear.plan(LinearShape::new(b as u32, HIDDEN as u32, CLASSES as u32))?,
            relu: t.relu(b * HIDDEN)?,
            bn: t.batch_norm(b, HIDDEN, 1e-3, p.bn_momentum)?,
            xent: t.softmax_xent(b, CLASSES)?,
            h1: z(b * HIDDEN),
            a1: z(b * HIDDEN),
            z: z(b * HIDDEN),
            logits: z(b * CLASSES),
            dlogits: z(b * CLASSES),
            per_sample: z(2 * b),
        })
    }
}

/// The MLP's plans and buffers, reused by every row.
pub struct Mlp {
    train: Pass,
    eval: Pass,
    running: wgpu::Buffer,
    saved: wgpu::Buffer,
    dz: wgpu::Buffer,
    da1: wgpu::Buffer,
    dh1: wgpu::Buffer,
}

impl Mlp {
    pub fn new(core: &Core) -> Result<Self> {
        let z = |n| zeros(&core.gpu, "mlp", n);
        let bt = core.batch;
        Ok(Self {
            train: Pass::new(core, bt, &core.protocol)?,
            eval: Pass::new(core, core.eval_batch, &core.protocol)?,
            running: z(2 * HIDDEN),
            saved: z(2 * HIDDEN),
            dz: z(bt * HIDDEN),
            da1: z(bt * HIDDEN),
            dh1: z(bt * HIDDEN),
        })
    }
}

impl Net for Mlp {
    /// The paper's initialisation (`utils_nn.py`): weights N(0, sqrt(2 / fan_out)), biases
    /// 0.1; BatchNorm gamma 1, beta 0, running mean 0, variance 1.
    fn init(&self, core: &Core, seed: u64) {
        let std1 = (2.0 / HIDDEN as f32).sqrt() * core.protocol.init_scale;
        let w1 = normals(seed, HIDDEN * INPUTS, std1);
        let w2 = normals(
            seed ^ 0x5eed,
            CLASSES * HIDDEN,
            (2.0 / CLASSES as f32).sqrt(),
        );
        let mut affine = vec![1.0f32; HIDDEN];
        affine.extend(vec![0.0f32; HIDDEN]);
        let mut running = vec![0.0f32; HIDDEN];
        running.extend(vec![1.0f32; HIDDEN]);
        let values = [w1, vec![0.1; HIDDEN], w2, vec![0.1; CLASSES], affine];
        for (p, v) in core.params.iter().zip(&values) {
            core.write(&p.buf, v);
        }
        core.write(&self.running, &running);
    }

    fn record_gradients(&self, core: &Core, enc: &mut wgpu::CommandEncoder) -> Result<()> {
        let t = &self.train;
        let w = |i: usize| &core.params[i].buf;
        let g = |i: usize| &core.params[i].grad;
        t.fc1
            .record_forward(enc, &core.x, w(W1), Some(w(B1)), &t.h1)?;
        t.relu.record_forward(enc, &t.h1, &t.a1)?;
        t.bn.record_forward(
            enc,
            &BatchNormBuffers {
                x: &t.a1,
                affine: w(AFFINE),
                y: &t.z,
                saved: &self.saved,
                running: &self.running,
            },
        )?;
        t.fc2
            .record_forward(enc, &t.z, w(W2), Some(w(B2)), &t.logits)?;
        t.xent
            .record(enc, &t.logits, &core.labels, &t.dlogits, &t.per_sample)?;
        t.xent.record_accumulate(enc, &t.per_sample, &core.stats)?;
        t.fc2
            .record_backward_input(enc, &t.dlogits, w(W2), &self.dz)?;
        t.fc2
            .record_backward_weight(enc, &t.dlogits, &t.z, g(W2), Some(g(B2)))?;
        t.bn.record_backward(
            enc,
            &BatchNormGradBuffers {
                x: &t.a1,
                dy: &self.dz,
                affine: w(AFFINE),
                saved: &self.saved,
                dx: &self.da1,
                daffine: g(AFFINE),
            },
        )?;
        t.relu.record_backward(enc, &t.a1, &self.da1, &self.dh1)?;
        t.fc1
            .record_backward_weight(enc, &self.dh1, &core.x, g(W1), Some(g(B1)))?;
        Ok(())
    }

    fn record_eval(&self, core: &Core, enc: &mut wgpu::CommandEncoder) -> Result<()> {
        let e = &self.eval;
        let w = |i: usize| &core.params[i].buf;
        e.fc1
            .record_forward(enc, &core.eval_x, w(W1), Some(w(B1)), &e.h1)?;
        e.relu.record_forward(enc, &e.h1, &e.a1)?;
        e.bn.record_eval(enc, &e.a1, w(AFFINE), &self.running, &e.z)?;
        e.fc2
            .record_forward(enc, &e.z, w(W2), Some(w(B2)), &e.logits)?;
        e.xent
            .record(enc, &e.logits, &core.eval_labels, &e.dlogits, &e.per_sample)?;
        e.xent
            .record_accumulate(enc, &e.per_sample, &core.eval_stats)?;
        Ok(())
    }
}
