//! Recording a plan's ops: the caller's buffers checked, then the GEMM launches, their split
//! reductions, the zero pass and the bias-gradient passes, each bound through its kernel's
//! bindings struct.

use super::kernels::{
    BackwardDataBindings, BackwardDataFcBindings, BackwardWeightBindings, ChannelSumBindings,
    ForwardBindings, PointwiseBindings, SplitReduceBindings, ZeroUnreachedBindings, CHANNEL_SUM,
    CONV_ZERO_UNREACHED, SPLIT_REDUCE,
};
use super::plan::GemmLaunch;
use super::{
    BackwardDataBuffers, BackwardWeightBuffers, Conv2dPlan, Conv2dShape, ForwardBuffers, GemmTiles,
};
use crate::buffer::BufferRange;
use crate::dispatch::{self, check_buffer, check_distinct, check_op, whole, Bindings, Recording};
use crate::error::{Error, Result};
use crate::gpu::Gpu;

crate::on_gpu!(Conv2dPlan => conv.gpu);

impl Conv2dPlan {
    /// The shape this plan was made for.
    pub fn shape(&self) -> &Conv2dShape {
        &self.shape
    }

    /// The kernel choice this plan runs: `None` fields are the default heuristic's (see
    /// [`Conv2dPlan::tiles`] and [`Conv2dPlan::splits`] for what that resolved to).
    pub fn choice(&self) -> super::Conv2dChoice {
        self.choice
    }

    /// Output size `[out_h, out_w]`.
    pub fn out_size(&self) -> [u32; 2] {
        self.out_size
    }

    /// K splits of (forward, input gradient, weight gradient): 1 means no split. On the
    /// columns path the input gradient's are its columns GEMM's.
    pub fn splits(&self) -> [u32; 3] {
        let input_gradient = match &self.col2im {
            Some(c) => c.columns.splits()[1],
            None => self
                .backward_data
                .iter()
                .map(|(l, _)| l.params.splits)
                .max()
                .unwrap_or(1),
        };
        [
            self.forward.params.splits,
            input_gradient,
            self.backward_weight.params.splits,
        ]
    }

    /// The tile kind of each GEMM launch: forward, input gradient (one launch per stride
    /// phase), weight gradient, as [`Tile::name`](super::Tile::name) gives them: `"square"`
    /// (64 x 64), `"wide"` (16 x 256), `"tall"` (256 x 16), `"skinny"` (4 x 256, one column
    /// per thread), `"narrow"` (4 x 16, 16 threads per column), a pointwise shape's plain-GEMM
    /// tiles (`"pointwise"`, `"pointwise_x2"`, `"pointwise_x4"`, ..., see
    /// [`Tile::POINTWISE`](super::Tile::POINTWISE)), or one of the tiles only a tuned plan
    /// runs: what a benchmark ran, and which kernel a test covered. On the columns path
    /// ([`Conv2dPlan::runs_col2im`]) the input gradient's tile is its columns GEMM's.
    pub fn tiles(&self) -> GemmTiles {
        let input_gradient = match &self.col2im {
            Some(c) => c.columns.tiles().input_gradient,
            None => self
                .backward_data
                .iter()
                .map(|(l, _)| l.tile.name())
                .collect(),
        };
        GemmTiles {
            forward: self.forward.tile.name(),
            input_gradient,
            weight_gradient: self.backward_weight.tile.name(),
        }
    }

    /// The tiles and K splits of each GEMM op in one line, e.g. `fwd square/1 ig skinny/2
    /// wg narrow/4` (`ig` lists each stride phase's tile once, joined by `+`, and is
    /// prefixed `col2im:` on the columns path): what the report and the benches print as a
    /// case's variant.
    pub fn variant(&self) -> String {
        let t = self.tiles();
        let [sf, sd, sw] = self.splits();
        let mut ig = t.input_gradient;
        ig.dedup();
        let path = if self.runs_col2im() { "col2im:" } else { "" };
        format!(
            "fwd {}/{sf} ig {path}{}/{sd} wg {}/{sw}",
            t.forward,
            ig.join("+"),
            t.weight_gradient
        )
    }

    /// Whether the input gradient runs the columns path (a GEMM into columns, then a col2im
    /// gather; see [`GemmChoice::col2im`](super::GemmChoice::col2im)).
    pub fn runs_col2im(&self) -> bool {
        self.col2im.is_some()
    }

    fn device(&self) -> &wgpu::Device {
        self.conv.gpu.device()
    }

    crate::record_calls! {
        /// Records the forward pass into `encoder`. Never submits.
        ///
        /// # Errors
        /// [`Error::BufferTooSmall`], [`Error::MissingUsage`], [`Error::LimitExceeded`] for a
        /// buffer too large to bind, [`Error::Shape`] for a bias that does not match the
        /// shape, [`Error::Aliasing`] for an output range that overlaps an input's,
        /// [`Error::MisalignedRange`] and [`Error::RangeOutOfBounds`] for a range the device
        /// cannot bind (see [`BufferRange`]), [`Error::BufferMapped`], and
        /// [`Error::Validation`] for a buffer wgpu refuses (destroyed, of another device).
        /// Nothing is recorded on error.
        pub fn record_forward(&self, b: &ForwardBuffers<impl Copy + Into<BufferRange<'a>>>)
            => |rec| self.build_forward(rec, b.into());

        /// Records the input gradient into `encoder`: `grad_input` is overwritten.
        ///
        /// # Errors
        /// As [`Conv2dPlan::record_forward`].
        pub fn record_backward_data(
            &self,
            b: &BackwardDataBuffers<impl Copy + Into<BufferRange<'a>>>,
        )
            => |rec| self.build_backward_data(rec, b.into());

        /// Records the weight gradient (and the bias gradient when the shape has a bias) into
        /// `encoder`. Both are overwritten, not accumulated: the sum over the batch and all
        /// positions, in a fixed order.
        ///
        /// # Errors
        /// As [`Conv2dPlan::record_forward`].
        pub fn record_backward_weight(
            &self,
            b: &BackwardWeightBuffers<impl Copy + Into<BufferRange<'a>>>,
        )
            => |rec| self.build_backward_weight(rec, b.into());
    }

    pub(crate) fn build_forward(
        &self,
        rec: &mut Recording,
        b: ForwardBuffers<BufferRange<'_>>,
    ) -> Result<()> {
        let s = &self.shape;
        let [x, w, y] = [s.input_len(), s.weight_len(), s.output_len()].map(|n| n as u64);
        let ranges = [
            ("input", b.input, x),
            ("weight", b.weight, w),
            ("output", b.output, y),
        ];
        self.check_gemm(ranges, ("bias", b.bias))?;
        if let Some(bias) = b.bias {
            check_distinct("output", b.output, &[("bias", bias)])?;
        }
        if s.output_len() == 0 {
            return Ok(());
        }
        let bias = b.bias.unwrap_or(BufferRange::whole(&self.no_bias));
        let launch = &self.forward;
        if let Some(bindings) = self.pointwise(launch, b.weight, b.input, bias, b.output) {
            self.record_gemm(rec, launch, &bindings, b.output, bias);
            return Ok(());
        }
        let bindings = ForwardBindings {
            p: whole(&launch.uniform),
            input: whole(b.input),
            weight: whole(b.weight),
            bias: whole(bias),
            ktab: whole(&self.table_fwd),
            output: whole(self.target(launch, b.output)),
        };
        self.record_gemm(rec, launch, &bindings, b.output, bias);
        Ok(())
    }

    pub(crate) fn build_backward_data(
        &self,
        rec: &mut Recording,
        b: BackwardDataBuffers<BufferRange<'_>>,
    ) -> Result<()> {
        let s = &self.shape;
        let [x, w, y] = [s.input_len(), s.weight_len(), s.output_len()].map(|n| n as u64);
        let ranges = [
            ("grad_output", b.grad_output, y),
            ("weight", b.weight, w),
            ("grad_input", b.grad_input, x),
        ];
        check_op(&self.conv.gpu, &ranges, 2)?;
        if s.input_len() == 0 {
            return Ok(());
        }
        if let Some(columns) = &self.col2im {
            return columns.record(rec, b);
        }
        for (launch, table) in &self.backward_data {
            let pointwise = self.pointwise(
                launch,
                b.weight,
                b.grad_output,
                self.no_bias(),
                b.grad_input,
            );
            if let Some(bindings) = pointwise {
                self.record_gemm(rec, launch, &bindings, b.grad_input, self.no_bias());
                continue;
            }
            let grad_in = whole(self.target(launch, b.grad_input));
            let (p, grad_out, weight) = (
                whole(&launch.uniform),
                whole(b.grad_output),
                whole(b.weight),
            );
            match table {
                Some(table) => {
                    let bindings = BackwardDataBindings {
                        p,
                        grad_out,
                        weight,
                        ktab: whole(table),
                        grad_in,
                    };
                    self.record_gemm(rec, launch, &bindings, b.grad_input, self.no_bias());
                }
                None => {
                    let bindings = BackwardDataFcBindings {
                        p,
                        grad_out,
                        weight,
                        grad_in,
                    };
                    self.record_gemm(rec, launch, &bindings, b.grad_input, self.no_bias());
                }
            }
        }
        if let Some(zero) = &self.zero_unreached {
            let bindings = ZeroUnreachedBindings {
                p: whole(&zero.uniform),
                reached: whole(&zero.reached),
                grad_in: whole(b.grad_input),
            };
            let kernel = self.conv.gpu.kernel(&CONV_ZERO_UNREACHED, 0);
            kernel.run(self.device(), rec, &bindings, zero.grid);
        }
        Ok(())
    }

    pub(crate) fn build_backward_weight(
        &self,
        rec: &mut Recording,
        b: BackwardWeightBuffers<BufferRange<'_>>,
    ) -> Result<()> {
        self.check_backward_weight(&b)?;
        let s = &self.shape;
        if s.output_len() == 0 {
            return clear_gradients(s, rec, &b);
        }
        if s.weight_len() > 0 {
            let launch = &self.backward_weight;
            let (dy, x, gw) = (b.grad_output, b.input, b.grad_weight);
            if let Some(bindings) = self.pointwise(launch, dy, x, self.no_bias(), gw) {
                self.record_gemm(rec, launch, &bindings, b.grad_weight, self.no_bias());
            } else {
                let bindings = BackwardWeightBindings {
                    p: whole(&launch.uniform),
                    grad_out: whole(b.grad_output),
                    input: whole(b.input),
                    ktab: whole(&self.table_fwd),
                    grad_weight: whole(self.target(launch, b.grad_weight)),
                };
                self.record_gemm(rec, launch, &bindings, b.grad_weight, self.no_bias());
            }
        }
        if let Some(gb) = b.grad_bias {
            self.record_bias_grad(rec, b.grad_output, gb);
        }
        Ok(())
    }

    fn check_backward_weight(&self, b: &BackwardWeightBuffers<BufferRange<'_>>) -> Result<()> {
        let s = &self.shape;
        let [x, w, y] = [s.input_len(), s.weight_len(), s.output_len()].map(|n| n as u64);
        let ranges = [
            ("grad_output", b.grad_output, y),
            ("input", b.input, x),
            ("grad_weight", b.grad_weight, w),
        ];
        self.check_gemm(ranges, ("grad_bias", b.grad_bias))?;
        if let Some(gb) = b.grad_bias {
            check_distinct(
                "grad_bias",
                gb,
                &[
                    ("grad_output", b.grad_output),
                    ("input", b.input),
                    ("grad_weight", b.grad_weight),
                ],
            )?;
        }
        Ok(())
    }

    /// The checks of a GEMM op's caller ranges: `ranges` (two inputs, then the output) as
    /// [`check_buffer`] with `STORAGE`, the optional bias (or bias gradient) as
    /// [`check_bias_buffer`], then the output against the two inputs.
    fn check_gemm(
        &self,
        ranges: [(&'static str, BufferRange<'_>, u64); 3],
        (bias_name, bias): (&'static str, Option<BufferRange<'_>>),
    ) -> Result<()> {
        let dev = &self.conv.gpu;
        for (name, range, elements) in ranges {
            check_buffer(dev, name, range, elements, wgpu::BufferUsages::STORAGE)?;
        }
        check_bias_buffer(dev, &self.shape, bias_name, bias)?;
        let [(a, ra, _), (b, rb, _), (out, r_out, _)] = ranges;
        check_distinct(out, r_out, &[(a, ra), (b, rb)])
    }

    /// Where `launch` writes: the split-K scratch when K is split, else `output`.
    fn target<'b>(&'b self, launch: &GemmLaunch, output: BufferRange<'b>) -> BufferRange<'b> {
        if launch.params.splits > 1 {
            BufferRange::whole(&self.scratch)
        } else {
            output
        }
    }

    /// The bindings of `launch` when it runs a pointwise tile: operands `a` and `b` (see
    /// [`PointwiseBindings`]), `bias` (or the stand-in) and the output `c` (or the partials).
    fn pointwise<'b>(
        &'b self,
        launch: &'b GemmLaunch,
        a: BufferRange<'b>,
        b: BufferRange<'b>,
        bias: BufferRange<'b>,
        c: BufferRange<'b>,
    ) -> Option<PointwiseBindings<'b>> {
        Some(PointwiseBindings {
            p: whole(&launch.uniform),
            q: whole(launch.strides.as_ref()?),
            a_src: whole(a),
            b_src: whole(b),
            bias: whole(bias),
            c_dst: whole(self.target(launch, c)),
        })
    }

    /// Bound as the bias of GEMMs without one.
    fn no_bias(&self) -> BufferRange<'_> {
        BufferRange::whole(&self.no_bias)
    }

    /// One GEMM launch on `bindings` (its output bound to [`Conv2dPlan::target`]), then,
    /// when it ends a split op, the reduction of the partials (plus `bias`) into `output`.
    fn record_gemm<'a, B: Bindings<'a>>(
        &self,
        rec: &mut Recording,
        launch: &GemmLaunch,
        bindings: &B,
        output: BufferRange<'_>,
        bias: BufferRange<'_>,
    ) {
        let gpu = &self.conv.gpu;
        let (decl, variant) = launch.op.kernel(launch.tile);
        gpu.kernel(decl, variant)
            .run(self.device(), rec, bindings, launch.grid);
        if let Some((uniform, grid)) = &launch.reduce {
            let bindings = SplitReduceBindings {
                p: whole(uniform),
                partials: whole(&self.scratch),
                bias: whole(bias),
                out: whole(output),
            };
            gpu.kernel(&SPLIT_REDUCE, 0)
                .run(self.device(), rec, &bindings, *grid);
        }
    }

    fn record_bias_grad(
        &self,
        rec: &mut Recording,
        grad_output: BufferRange<'_>,
        grad_bias: BufferRange<'_>,
    ) {
        let kernel = self.conv.gpu.kernel(&CHANNEL_SUM, 0);
        let last = self.bias_passes.len().saturating_sub(1);
        for (i, pass) in self.bias_passes.iter().enumerate() {
            let src = if i == 0 {
                grad_output
            } else {
                BufferRange::whole(&self.sum_scratch[(i - 1) % 2])
            };
            let dst = if i == last {
                grad_bias
            } else {
                BufferRange::whole(&self.sum_scratch[i % 2])
            };
            let bindings = ChannelSumBindings {
                p: whole(&pass.uniform),
                src: whole(src),
                dst: whole(dst),
            };
            kernel.run(self.device(), rec, &bindings, pass.grid);
        }
    }
}

/// No positions: the gradients are zero (a clear, not a dispatch). Checks every buffer before
/// clearing any.
fn clear_gradients(
    s: &Conv2dShape,
    rec: &mut Recording,
    b: &BackwardWeightBuffers<BufferRange<'_>>,
) -> Result<()> {
    let outputs = [
        ("grad_weight", Some(b.grad_weight), s.weight_len()),
        ("grad_bias", b.grad_bias, s.bias_len()),
    ];
    let outputs = outputs
        .into_iter()
        .filter_map(|(name, buf, len)| Some((name, buf?, len as u64)));
    for (name, buf, _) in outputs.clone() {
        if buf.size() > 0 {
            let copy_dst = wgpu::BufferUsages::COPY_DST;
            dispatch::check_buffer_unbound(name, buf, 0, copy_dst)?;
        }
    }
    for (_, buf, len) in outputs {
        if len > 0 {
            rec.clear(buf, len * 4);
        }
    }
    Ok(())
}

/// A bias (or bias-gradient) buffer is given exactly when the shape has a bias, and holds one
/// value per output channel.
fn check_bias_buffer(
    dev: &Gpu,
    s: &Conv2dShape,
    name: &'static str,
    buffer: Option<BufferRange<'_>>,
) -> Result<()> {
    match (s.bias, buffer) {
        (true, Some(b)) => check_buffer(
            dev,
            name,
            b,
            s.bias_len() as u64,
            wgpu::BufferUsages::STORAGE,
        ),
        (false, None) => Ok(()),
        _ => Err(Error::shape(format!(
            "{name} buffer given iff the shape has a bias"
        ))),
    }
}
