//! What the OWL and the GrOWL plans share, written once: the prox of one caller buffer (the
//! *target*: `v` or `matrix`) with weights `w` and optional block ids, recorded in place
//! (`build`) or out of place (`build_into`, a checked copy first), everything checked before
//! anything is recorded. Each plan states only its own checks ([`ProxPlan::check_named`]) and
//! its commands ([`ProxPlan::build_checked`]); its public `record` / `record_into` come from
//! `crate::record_calls!` over the two builds here.

use crate::buffer::{BufferRange, MaybeRange};
use crate::dispatch::{check_distinct, OnGpu, Recording};
use crate::error::Result;

/// A plan for the prox of target buffers of one size.
pub(crate) trait ProxPlan: OnGpu {
    /// The caller's name for the target (in error messages).
    const TARGET: &'static str;

    /// f32 elements of the target.
    fn elements(&self) -> u64;

    /// Checks a target-sized caller buffer (size, `usage`, map state).
    fn check_target(
        &self,
        name: &'static str,
        buffer: BufferRange<'_>,
        usage: wgpu::BufferUsages,
    ) -> Result<()>;

    /// Everything the in-place record checks, with the caller's name for the target.
    fn check_named(
        &self,
        name: &'static str,
        target: BufferRange<'_>,
        w: BufferRange<'_>,
        blocks: Option<BufferRange<'_>>,
    ) -> Result<()>;

    /// The prox's commands, after [`ProxPlan::check_named`]: only plan-owned buffers are left
    /// to fail, which they do not.
    fn build_checked(
        &self,
        rec: &mut Recording,
        target: BufferRange<'_>,
        w: BufferRange<'_>,
        blocks: Option<BufferRange<'_>>,
    ) -> Result<()>;

    /// The in-place prox of `target`: checks, then commands.
    fn build(
        &self,
        rec: &mut Recording,
        target: BufferRange<'_>,
        w: BufferRange<'_>,
        blocks: MaybeRange<'_>,
    ) -> Result<()> {
        let blocks = blocks.0;
        self.check_named(Self::TARGET, target, w, blocks)?;
        self.build_checked(rec, target, w, blocks)
    }

    /// The out-of-place prox: `src` (needs `COPY_SRC`) copied into `out` (needs
    /// `STORAGE | COPY_DST`), then the prox there. The copy's buffers are checked here; the
    /// recording checks the copy itself before anything reaches the caller's encoder.
    fn build_into(
        &self,
        rec: &mut Recording,
        src: BufferRange<'_>,
        w: BufferRange<'_>,
        out: BufferRange<'_>,
        blocks: MaybeRange<'_>,
    ) -> Result<()> {
        let (len, blocks) = (self.elements(), blocks.0);
        self.check_target(Self::TARGET, src, wgpu::BufferUsages::COPY_SRC)?;
        self.check_target(
            "out",
            out,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        )?;
        check_distinct("out", out, &[(Self::TARGET, src), ("w", w)])?;
        self.check_named("out", out, w, blocks)?;
        if let Some(b) = blocks {
            check_distinct("blocks", b, &[(Self::TARGET, src)])?;
        }
        if len > 0 {
            rec.copy(src, out, len * 4);
        }
        self.build_checked(rec, out, w, blocks)
    }
}
