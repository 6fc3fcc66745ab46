//! Enforcing a tie map while training: the retraining phase of learning to share.

use super::{Reduction, TiePlan};
use crate::buffer::BufferRange;
use crate::error::Result;

/// Declares the loop hooks of [`Enforcement`]: each takes `self`, `plan: &TiePlan`, the
/// encoder, then the tensor and `scratch` (both `impl Into<BufferRange<'a>>`), and records
/// the named [`TiePlan`] call on the tensor and `scratch` (plus the extra arguments given)
/// when the mode is the one named after `when`, nothing otherwise.
macro_rules! enforcement_hooks {
    ($($(#[$meta:meta])* pub fn $name:ident($tensor:ident) when $mode:ident
        => $call:ident($($extra:expr),*);)*) => {
        $(
            $(#[$meta])*
            pub fn $name<'a>(
                self,
                plan: &TiePlan,
                encoder: &mut wgpu::CommandEncoder,
                $tensor: impl Into<BufferRange<'a>>,
                scratch: impl Into<BufferRange<'a>>,
            ) -> Result<()> {
                if self != Enforcement::$mode {
                    return Ok(());
                }
                plan.$call(encoder, $tensor, scratch $(, $extra)*)
            }
        )*
    };
}

/// When a training loop makes the tied units of a tensor equal (Zhang et al., ICLR 2018,
/// phase 2). Each mode keeps every group's members exactly equal at the points it names, and
/// the last two at every step:
///
/// - [`Enforcement::Epoch`]: group averaging (the projection: every tied unit becomes its
///   group's mean) at the end of every epoch; gradients are untied in between. The paper's
///   MNIST protocol, and the default.
/// - [`Enforcement::Step`]: the same projection after every optimiser step (the paper's VGG).
/// - [`Enforcement::Gradient`]: tied gradients: before every optimiser step each tied
///   gradient becomes its group's mean (a reduce-broadcast), after one projection at the
///   start. With the optimiser state reset at the start (velocities zeroed) and an
///   element-wise optimiser (momentum SGD, weight decay, masks), members that start equal
///   get bitwise-equal updates and stay equal. The mean (not the sum) keeps the step size of
///   a tied unit that of an untied one: it is the gradient projected onto the tied subspace.
///
/// The `record_*` calls record what the mode does at each point of the loop (nothing where it
/// does nothing), through a [`TiePlan`] of the tensor's map and a scratch buffer of
/// [`TiePlan::values_len`] f32 (`STORAGE`). Units that are [`super::UNTIED`] (the zero groups
/// of a discovery) are never touched: re-zero them with the group mask.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Enforcement {
    /// Projection at the end of every epoch.
    #[default]
    Epoch,
    /// Projection after every optimiser step.
    Step,
    /// Mean of the tied gradients before every optimiser step (projection once at the start).
    Gradient,
}

impl Enforcement {
    /// Every mode.
    pub const ALL: [Enforcement; 3] =
        [Enforcement::Epoch, Enforcement::Step, Enforcement::Gradient];

    /// `epoch`, `step` or `grad`.
    pub fn name(self) -> &'static str {
        match self {
            Enforcement::Epoch => "epoch",
            Enforcement::Step => "step",
            Enforcement::Gradient => "grad",
        }
    }

    /// The mode [`Enforcement::name`] names (`gradient` is accepted for `grad`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "gradient" => Some(Enforcement::Gradient),
            _ => Self::ALL.into_iter().find(|m| m.name() == s),
        }
    }

    enforcement_hooks! {
        /// Records the start of retraining: the projection of `weights` for
        /// [`Enforcement::Gradient`] (its members must start equal); nothing for the others.
        ///
        /// # Errors
        /// As [`TiePlan::record_project`]; nothing is recorded on error.
        pub fn record_start(weights) when Gradient => record_project();

        /// Records what happens to a step's gradients before the optimiser: their group means
        /// for [`Enforcement::Gradient`] (in place); nothing for the others.
        ///
        /// # Errors
        /// As [`TiePlan::record_reduce_broadcast`].
        pub fn record_gradients(grads) when Gradient => record_reduce_broadcast(Reduction::Mean);

        /// Records what happens after the optimiser's step: the projection of `weights` for
        /// [`Enforcement::Step`]; nothing for the others.
        ///
        /// # Errors
        /// As [`TiePlan::record_project`].
        pub fn record_after_step(weights) when Step => record_project();

        /// Records the end of an epoch: the projection of `weights` for [`Enforcement::Epoch`];
        /// nothing for the others (their members are already equal).
        ///
        /// # Errors
        /// As [`TiePlan::record_project`].
        pub fn record_after_epoch(weights) when Epoch => record_project();
    }
}
