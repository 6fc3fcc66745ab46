//! Recording: the public `record_*` calls of a [`TiePlan`], the checks of the caller's
//! buffers, and the passes of each binding's plan, every buffer bound by name.

use super::broadcast::{BroadcastBindings, BroadcastRunsBindings, QuadBindings, QuadRunsBindings};
use super::plan::{Body, BroadcastKernel, ReducePlan, RunPass, Single, TiePlan};
use super::reduce_blocks::{BlocksBindings, PiecesBindings};
use super::reduce_runs::{
    EmptyGroupsBindings, ReduceGatherBindings, ReduceQuadsBindings, ReduceValuesBindings,
};
use super::windows::CombineBindings;
use super::{Reduction, TieKernels};
use crate::buffer::BufferRange;
use crate::dispatch::{self, check_buffer, check_distinct, range, whole, Recording};
use crate::error::Result;

/// A caller's buffer with the caller's name for it (in errors).
type Named<'a> = (&'static str, BufferRange<'a>);

crate::on_gpu!(TiePlan => ties.gpu);

impl TiePlan {
    crate::record_calls! {
        /// Records the per-group reduction of `src` (the parameter tensor's layout) into
        /// `values` (`[groups][unit_len]`, overwritten; empty groups get 0). Never submits.
        ///
        /// # Errors
        /// [`Error::BufferTooSmall`](crate::Error::BufferTooSmall),
        /// [`Error::MissingUsage`](crate::Error::MissingUsage) (both need `STORAGE`),
        /// [`Error::Aliasing`](crate::Error::Aliasing) (overlapping ranges),
        /// [`Error::MisalignedRange`](crate::Error::MisalignedRange) and
        /// [`Error::RangeOutOfBounds`](crate::Error::RangeOutOfBounds) (see [`BufferRange`]),
        /// [`Error::BufferMapped`](crate::Error::BufferMapped), a buffer past the binding
        /// limit, or [`Error::Validation`](crate::Error::Validation) for a buffer wgpu
        /// refuses. Nothing is recorded on error.
        pub fn record_reduce(&self, src, values, how: Reduction)
            => |rec| self.build_reduce(rec, ("src", src), ("values", values), how);

        /// Records the broadcast of `values` (`[groups][unit_len]`) into `target` (the
        /// parameter tensor's layout): tied units are overwritten with their group's value,
        /// untied units are left as they are. Never submits.
        ///
        /// # Errors
        /// As [`TiePlan::record_reduce`].
        pub fn record_broadcast(&self, target, values)
            => |rec| self.build_broadcast(rec, ("target", target), ("values", values));

        /// Records the training step's fused reduce-then-broadcast: `grads` is reduced into
        /// `scratch_values` (`[groups][unit_len]`) and every tied gradient is replaced by its
        /// group's sum or mean, in place.
        ///
        /// # Errors
        /// As [`TiePlan::record_reduce`].
        pub fn record_reduce_broadcast(&self, grads, scratch_values, how: Reduction)
            => |rec| self.build_fused(rec, ("grads", grads), scratch_values, how);

        /// Records the tying projection: every tied unit of `weights` becomes its group's mean
        /// (the group averaging of the GrOWL retraining phase), in place.
        ///
        /// # Errors
        /// As [`TiePlan::record_reduce`].
        pub fn record_project(&self, weights, scratch_values)
            => |rec| self.build_fused(rec, ("weights", weights), scratch_values, Reduction::Mean);
    }

    /// The fused reduce-then-broadcast of `tensor`, through `scratch_values`.
    pub(super) fn build_fused(
        &self,
        rec: &mut Recording,
        tensor: Named<'_>,
        scratch_values: BufferRange<'_>,
        how: Reduction,
    ) -> Result<()> {
        let scratch = ("scratch_values", scratch_values);
        self.build_reduce(rec, tensor, scratch, how)?;
        self.build_broadcast(rec, tensor, scratch)
    }

    /// Checks a tensor-sized caller buffer: whole-binding limits only apply to unwindowed plans.
    fn check_tensor(&self, (name, buffer): Named<'_>) -> Result<()> {
        dispatch::check_buffer_windowed(
            &self.ties.gpu,
            name,
            buffer,
            self.layout.params_len() as u64,
            wgpu::BufferUsages::STORAGE,
            matches!(self.body, Body::Windowed(_)),
        )
    }

    /// Checks the group values buffer.
    fn check_values(&self, (name, values): Named<'_>) -> Result<()> {
        let st = wgpu::BufferUsages::STORAGE;
        check_buffer(&self.ties.gpu, name, values, self.values_len() as u64, st)
    }

    /// The reduction of `src` into `values`.
    fn build_reduce(
        &self,
        rec: &mut Recording,
        src: Named<'_>,
        values: Named<'_>,
        how: Reduction,
    ) -> Result<()> {
        self.check_tensor(src)?;
        self.check_values(values)?;
        check_distinct(values.0, values.1, &[src])?;
        if self.values_len() == 0 {
            return Ok(());
        }
        let (k, dev) = (&*self.ties.kernels, self.ties.gpu.device());
        let (src, values) = (src.1, values.1);
        let windows = match &self.body {
            Body::Single(single) => {
                single.record_reduce(k, dev, rec, whole(src), whole(values), how);
                return Ok(());
            }
            Body::Windowed(win) => win,
        };
        let Some(combine) = &windows.combine else {
            // Windows of outer slabs write their columns in place.
            for window in &windows.windows {
                let src = range(src, window.offset, window.bytes);
                window
                    .plan
                    .record_reduce(k, dev, rec, src, whole(values), how);
            }
            return Ok(());
        };
        let values_bytes = self.values_len() as u64 * 4;
        for (w, window) in windows.windows.iter().enumerate() {
            let slot = w as u64 * combine.slot_bytes;
            let out = range(&combine.partials, slot, values_bytes);
            let src = range(src, window.offset, window.bytes);
            window
                .plan
                .record_reduce(k, dev, rec, src, out, Reduction::Sum);
        }
        let buffers = CombineBindings {
            p: whole(combine.pass.uniform(how)),
            partials: whole(&combine.partials),
            sizes: whole(&combine.sizes),
            values: whole(values),
        };
        k.combine.run(dev, rec, &buffers, combine.pass.grid);
        Ok(())
    }

    /// The broadcast of `values` into `target`.
    pub(super) fn build_broadcast(
        &self,
        rec: &mut Recording,
        target: Named<'_>,
        values: Named<'_>,
    ) -> Result<()> {
        self.check_values(values)?;
        self.check_tensor(target)?;
        check_distinct(target.0, target.1, &[values])?;
        if self.values_len() == 0 || self.layout.params_len() == 0 {
            // No group values, so no tied unit; or no unit at all.
            return Ok(());
        }
        let (k, dev) = (&*self.ties.kernels, self.ties.gpu.device());
        let (target, values) = (target.1, values.1);
        match &self.body {
            Body::Single(single) => single.record_broadcast(k, dev, rec, values, whole(target)),
            Body::Windowed(win) => {
                for window in &win.windows {
                    let target = range(target, window.offset, window.bytes);
                    window.plan.record_broadcast(k, dev, rec, values, target);
                }
            }
        }
        Ok(())
    }
}

impl Single {
    /// The reduction of `src` (this plan's tensor or window) into `values`.
    fn record_reduce(
        &self,
        k: &TieKernels,
        dev: &wgpu::Device,
        rec: &mut Recording,
        src: wgpu::BufferBinding<'_>,
        values: wgpu::BufferBinding<'_>,
        how: Reduction,
    ) {
        match &self.reduce {
            ReducePlan::Scalar { .. } => self.record_scalar(k, dev, rec, src, values, how),
            ReducePlan::Blocks {
                row_perm,
                pieces,
                entries,
                partials,
                quads,
                first,
                second,
            } => {
                let buffers = BlocksBindings {
                    p: whole(first.uniform(how)),
                    src,
                    row_perm: whole(row_perm),
                    pieces: whole(pieces),
                    out: values.clone(),
                    partials: whole(partials),
                };
                k.reduce_blocks[usize::from(*quads)].run(dev, rec, &buffers, first.grid);
                let buffers = PiecesBindings {
                    p: whole(second.uniform(how)),
                    entries: whole(entries),
                    partials: whole(partials),
                    out: values,
                };
                k.reduce_block_pieces.run(dev, rec, &buffers, second.grid);
            }
        }
    }

    /// The scalar reduction's levels (after the staging pass, when staged).
    fn record_scalar(
        &self,
        k: &TieKernels,
        dev: &wgpu::Device,
        rec: &mut Recording,
        src: wgpu::BufferBinding<'_>,
        out: wgpu::BufferBinding<'_>,
        how: Reduction,
    ) {
        let ReducePlan::Scalar {
            perm,
            staged,
            levels,
            partials,
            empty,
        } = &self.reduce
        else {
            return;
        };
        // Level 1 gathers from the staged copy when there is one.
        let src = match staged {
            Some(staged) => {
                let buffers = QuadBindings {
                    p: whole(&staged.uniform),
                    ids: whole(&staged.offsets),
                    values: src,
                    dst: whole(&staged.values),
                };
                k.stage.run(dev, rec, &buffers, staged.grid);
                whole(&staged.values)
            }
            None => src,
        };
        for (i, passes) in levels.iter().enumerate() {
            for RunPass { runs, quads, pass } in passes {
                // Level 1 reads the members (through `perm` unless read in place), later
                // levels the partials of the level below.
                let input = match i {
                    0 => src.clone(),
                    _ => whole(&partials[(i - 1) % 2]),
                };
                let (p, runs, out) = (whole(pass.uniform(how)), whole(runs), out.clone());
                let partials = whole(&partials[i % 2]);
                match (i, perm) {
                    (0, Some(perm)) => {
                        let buffers = ReduceGatherBindings {
                            p,
                            runs,
                            src: input,
                            at: whole(perm),
                            out,
                            partials,
                        };
                        k.reduce_gather[usize::from(*quads)].run(dev, rec, &buffers, pass.grid);
                    }
                    _ if *quads => {
                        let buffers = ReduceQuadsBindings {
                            p,
                            runs,
                            src_quads: input,
                            out,
                            partials,
                        };
                        k.reduce_quads.run(dev, rec, &buffers, pass.grid);
                    }
                    _ => {
                        let buffers = ReduceValuesBindings {
                            p,
                            runs,
                            src: input,
                            out,
                            partials,
                        };
                        k.reduce_values.run(dev, rec, &buffers, pass.grid);
                    }
                }
            }
        }
        if let Some((list, pass)) = empty {
            let buffers = EmptyGroupsBindings {
                p: whole(pass.uniform(how)),
                at: whole(list),
                out,
            };
            k.reduce_empty.run(dev, rec, &buffers, pass.grid);
        }
    }

    /// The broadcast of `values` into `target` (this plan's tensor or window).
    fn record_broadcast(
        &self,
        k: &TieKernels,
        dev: &wgpu::Device,
        rec: &mut Recording,
        values: BufferRange<'_>,
        target: wgpu::BufferBinding<'_>,
    ) {
        for pass in &self.broadcast {
            let (p, table, grid) = (whole(&pass.uniform), whole(&pass.table), pass.grid);
            let (values, dst) = (whole(values), target.clone());
            // Runs `$kernel` on `$Bindings` with the pass's table bound as its field `$table`.
            macro_rules! run {
                ($kernel:expr, $Bindings:ident { $table:ident }) => {{
                    let buffers = $Bindings {
                        p,
                        values,
                        dst,
                        $table: table,
                    };
                    $kernel.run(dev, rec, &buffers, grid)
                }};
            }
            match pass.kernel {
                BroadcastKernel::Runs => {
                    run!(k.broadcast_runs, BroadcastRunsBindings { run_table })
                }
                BroadcastKernel::QuadRuns => {
                    run!(k.broadcast_quad_runs, QuadRunsBindings { run_table })
                }
                BroadcastKernel::Quads => run!(k.broadcast_quads, QuadBindings { ids }),
                BroadcastKernel::BlockQuads => run!(k.broadcast_block_quads, QuadBindings { ids }),
                BroadcastKernel::Scalar => run!(k.broadcast_scalar, BroadcastBindings { ids }),
                BroadcastKernel::Blocks => run!(k.broadcast_blocks, BroadcastBindings { ids }),
            }
        }
    }
}
