//! Building a plan's pipelines before the first frame needs them ([`Conv2dPlan::prepare`]).
//!
//! Pipelines are built on first use and cached per device: the first `record_*` of an op
//! builds the kernels it runs (one tile kind per launch, not every kind). `prepare` does the
//! same work up front, so that a frame that records the op never stalls on a compile.

use super::kernels::{CHANNEL_SUM, CONV_COL2IM, CONV_ZERO_UNREACHED, SPLIT_REDUCE};
use super::plan::GemmLaunch;
use super::Conv2dPlan;
use crate::dispatch::KernelDecl;
use crate::error::Result;

/// Which of a plan's ops [`Conv2dPlan::prepare`] builds the pipelines of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Passes {
    /// [`Conv2dPlan::record_forward`] alone (inference).
    Forward,
    /// A training step: the forward, the input gradient and the weight (and bias) gradient.
    Training,
}

/// A kernel declaration and its override variant.
type KernelKey = (&'static KernelDecl, usize);

/// The kernels `launch` records: its GEMM and, with split K, the reduction of the partials.
fn launch_kernels(launch: &GemmLaunch) -> impl Iterator<Item = KernelKey> {
    let reduce = launch.reduce.as_ref().map(|_| (&SPLIT_REDUCE, 0));
    std::iter::once(launch.op.kernel(launch.tile)).chain(reduce)
}

impl Conv2dPlan {
    /// The kernels the ops of `passes` record on this shape, each once.
    fn kernels(&self, passes: Passes) -> Vec<KernelKey> {
        let mut keys: Vec<KernelKey> = launch_kernels(&self.forward).collect();
        if passes == Passes::Training {
            self.input_gradient_kernels(&mut keys);
            keys.extend(launch_kernels(&self.backward_weight));
            if self.shape.bias && !self.bias_passes.is_empty() {
                keys.push((&CHANNEL_SUM, 0));
            }
        }
        let mut unique: Vec<KernelKey> = Vec::with_capacity(keys.len());
        for key in keys {
            if !unique
                .iter()
                .any(|(d, v)| std::ptr::eq(*d, key.0) && *v == key.1)
            {
                unique.push(key);
            }
        }
        unique
    }

    /// The kernels the input gradient records: its stride phases' GEMMs and the zero pass, or,
    /// on the columns path, the columns plan's and the gather.
    fn input_gradient_kernels(&self, keys: &mut Vec<KernelKey>) {
        if let Some(c) = &self.col2im {
            c.columns.input_gradient_kernels(keys);
            keys.push((&CONV_COL2IM, 0));
            return;
        }
        for (launch, _) in &self.backward_data {
            keys.extend(launch_kernels(launch));
        }
        if self.zero_unreached.is_some() {
            keys.push((&CONV_ZERO_UNREACHED, 0));
        }
    }

    /// Builds the pipelines the ops of `passes` run on this shape (those already built on the
    /// device are reused), so that recording them later compiles nothing. Optional: an op
    /// records the same commands without it, building its pipelines on first use. Returns
    /// how many pipelines the plan needs.
    ///
    /// # Errors
    /// Errors captured while building the pipelines (out of memory, device lost). On the web
    /// use [`Conv2dPlan::prepare_async`], which awaits the error scopes.
    pub fn prepare(&self, passes: Passes) -> Result<usize> {
        let gpu = &self.conv.gpu;
        gpu.scoped(|| Ok(self.build(passes)))
    }

    /// [`Conv2dPlan::prepare`], awaiting the error scopes (web-friendly).
    ///
    /// # Errors
    /// As [`Conv2dPlan::prepare`].
    pub async fn prepare_async(&self, passes: Passes) -> Result<usize> {
        let gpu = &self.conv.gpu;
        gpu.scoped_async(|| Ok(self.build(passes))).await
    }

    fn build(&self, passes: Passes) -> usize {
        let kernels = self.kernels(passes);
        for &(decl, variant) in &kernels {
            self.conv.gpu.kernel(decl, variant);
        }
        kernels.len()
    }
}
