//! Conv2d shapes: parameters, validation and derived sizes.

use crate::error::{Error, Result};

/// The shape of a 2D convolution with shared weights, in NCHW layout.
///
/// Layouts (all f32, row-major, densely packed):
/// - input `[batch, in_channels, in_h, in_w]`
/// - weight `[out_channels, in_channels / groups, kernel_h, kernel_w]`
/// - bias `[out_channels]` (when [`Conv2dShape::bias`] is set)
/// - output `[batch, out_channels, out_h, out_w]`
///
/// with `out = (in + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1` per axis.
/// For NHWC data, convert with [`crate::conv::LayoutTranspose`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dShape {
    /// Images in the batch (N). Zero is allowed: every op is then a no-op.
    pub batch: u32,
    /// Input channels (C_in).
    pub in_channels: u32,
    /// Output channels (C_out).
    pub out_channels: u32,
    /// Input height and width.
    pub in_size: [u32; 2],
    /// Kernel height and width.
    pub kernel: [u32; 2],
    /// Stride (height, width), at least 1.
    pub stride: [u32; 2],
    /// Zero padding added on both sides (height, width).
    pub padding: [u32; 2],
    /// Dilation (height, width), at least 1.
    pub dilation: [u32; 2],
    /// Groups: input and output channels are split into this many independent groups.
    /// `groups == in_channels == out_channels` is a depthwise convolution.
    pub groups: u32,
    /// Whether a per-output-channel bias is added.
    pub bias: bool,
}

/// Product of u32 factors, saturating at u64::MAX (validation then rejects it).
fn product(xs: &[u32]) -> u64 {
    xs.iter()
        .fold(1u64, |acc, &x| acc.saturating_mul(u64::from(x)))
}

fn saturate(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl Conv2dShape {
    /// A stride-1, unpadded, undilated, ungrouped convolution without bias.
    pub fn new(
        batch: u32,
        in_channels: u32,
        out_channels: u32,
        in_size: [u32; 2],
        kernel: [u32; 2],
    ) -> Self {
        Self {
            batch,
            in_channels,
            out_channels,
            in_size,
            kernel,
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
            bias: false,
        }
    }

    /// Sets the stride on both axes.
    pub fn stride(self, s: u32) -> Self {
        self.stride_hw(s, s)
    }

    /// Sets the stride per axis: `sh` along the height, `sw` along the width.
    pub fn stride_hw(mut self, sh: u32, sw: u32) -> Self {
        self.stride = [sh, sw];
        self
    }

    /// Sets the padding on both axes.
    pub fn padding(self, p: u32) -> Self {
        self.padding_hw(p, p)
    }

    /// Sets the padding per axis: `ph` rows above and below, `pw` columns left and right.
    pub fn padding_hw(mut self, ph: u32, pw: u32) -> Self {
        self.padding = [ph, pw];
        self
    }

    /// Sets the dilation on both axes.
    pub fn dilation(self, d: u32) -> Self {
        self.dilation_hw(d, d)
    }

    /// Sets the dilation per axis: `dh` along the height, `dw` along the width.
    pub fn dilation_hw(mut self, dh: u32, dw: u32) -> Self {
        self.dilation = [dh, dw];
        self
    }

    /// Sets the number of groups.
    pub fn groups(mut self, g: u32) -> Self {
        self.groups = g;
        self
    }

    /// Adds (or removes) the bias.
    pub fn with_bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// Checks the parameters and returns the output size `[out_h, out_w]`.
    ///
    /// # Errors
    /// [`Error::Shape`] for zero stride/dilation/kernel/groups, channels not divisible by
    /// `groups`, a kernel that does not fit the padded input, or sizes past `u32`.
    pub fn validate(&self) -> Result<[u32; 2]> {
        if self.groups == 0 {
            return Err(Error::shape("groups must be at least 1"));
        }
        if !self.in_channels.is_multiple_of(self.groups)
            || !self.out_channels.is_multiple_of(self.groups)
        {
            return Err(Error::shape(format!(
                "in_channels ({}) and out_channels ({}) must both be divisible by groups ({})",
                self.in_channels, self.out_channels, self.groups
            )));
        }
        let mut out = [0u32; 2];
        for (axis, name) in ["height", "width"].iter().enumerate() {
            let (i, k, s, p, d) = (
                u64::from(self.in_size[axis]),
                u64::from(self.kernel[axis]),
                u64::from(self.stride[axis]),
                u64::from(self.padding[axis]),
                u64::from(self.dilation[axis]),
            );
            if k == 0 || s == 0 || d == 0 {
                return Err(Error::shape(format!(
                    "kernel, stride and dilation must be at least 1 ({name}: kernel {k}, stride {s}, dilation {d})"
                )));
            }
            let reach = d * (k - 1) + 1;
            if i + 2 * p < reach {
                return Err(Error::shape(format!(
                    "the kernel's reach ({reach} = dilation {d} * (kernel {k} - 1) + 1) exceeds the padded input {name} ({i} + 2 * {p})"
                )));
            }
            if p > i32::MAX as u64 / 2 {
                return Err(Error::shape(format!("padding {p} is too large")));
            }
            let o = (i + 2 * p - reach) / s + 1;
            out[axis] = u32::try_from(o)
                .map_err(|_| Error::shape(format!("the output {name} {o} does not fit u32")))?;
        }
        // Every product the kernels index with must fit 32 bits, channels or batch zero or
        // not: a zero factor counts as 1, so it cannot hide the others.
        let wide = |xs: &[u32]| xs.iter().map(|&x| u128::from(x.max(1))).product::<u128>();
        let limit = u128::from(u32::MAX / 4);
        for (name, n) in [
            (
                "batch * output positions",
                wide(&[self.batch, out[0], out[1]]),
            ),
            (
                "batch * input positions",
                wide(&[self.batch, self.in_size[0], self.in_size[1]]),
            ),
            // The kernel tables index one image's planes: bounded even when the batch is 0.
            (
                "one image's input (channels * positions)",
                wide(&[self.in_channels, self.in_size[0], self.in_size[1]]),
            ),
            (
                "one image's output (channels * positions)",
                wide(&[self.out_channels, out[0], out[1]]),
            ),
            (
                "kernel taps per group",
                wide(&[
                    self.in_channels.max(self.out_channels),
                    self.kernel[0],
                    self.kernel[1],
                ]),
            ),
        ] {
            if n > limit {
                return Err(Error::shape(format!(
                    "{name} is {n}; at most 2^30 are supported"
                )));
            }
        }
        for (name, n) in [
            ("input", self.input_len_u64()),
            ("weight", self.weight_len_u64()),
            ("output", self.output_len_u64(out)),
        ] {
            if n > u64::from(u32::MAX) / 4 {
                return Err(Error::shape(format!(
                    "the {name} has {n} elements; at most 2^30 fit one binding"
                )));
            }
        }
        Ok(out)
    }

    fn input_len_u64(&self) -> u64 {
        product(&[
            self.batch,
            self.in_channels,
            self.in_size[0],
            self.in_size[1],
        ])
    }

    fn weight_len_u64(&self) -> u64 {
        product(&[
            self.out_channels,
            self.in_channels / self.groups.max(1),
            self.kernel[0],
            self.kernel[1],
        ])
    }

    fn output_len_u64(&self, out: [u32; 2]) -> u64 {
        product(&[self.batch, self.out_channels, out[0], out[1]])
    }

    /// Output size `[out_h, out_w]` (zeros if the shape is invalid).
    pub fn out_size(&self) -> [u32; 2] {
        self.validate().unwrap_or([0, 0])
    }

    /// Elements of the input tensor (saturating at `usize::MAX`, which no valid shape has).
    pub fn input_len(&self) -> usize {
        saturate(self.input_len_u64())
    }

    /// Elements of the weight tensor (saturating as [`Conv2dShape::input_len`]).
    pub fn weight_len(&self) -> usize {
        saturate(self.weight_len_u64())
    }

    /// Elements of the bias (0 without bias).
    pub fn bias_len(&self) -> usize {
        if self.bias {
            self.out_channels as usize
        } else {
            0
        }
    }

    /// Elements of the output tensor (saturating as [`Conv2dShape::input_len`]).
    pub fn output_len(&self) -> usize {
        saturate(self.output_len_u64(self.out_size()))
    }

    /// Input channels per group.
    pub fn in_per_group(&self) -> u32 {
        self.in_channels / self.groups.max(1)
    }

    /// Output channels per group.
    pub fn out_per_group(&self) -> u32 {
        self.out_channels / self.groups.max(1)
    }

    /// Multiply-adds of the forward pass, counted as 2 FLOPs each (the same count holds for
    /// each gradient).
    pub fn flops(&self) -> f64 {
        let [oh, ow] = self.out_size();
        2.0 * f64::from(self.batch)
            * f64::from(self.out_channels)
            * f64::from(oh)
            * f64::from(ow)
            * f64::from(self.in_per_group())
            * f64::from(self.kernel[0])
            * f64::from(self.kernel[1])
    }

    /// A short human-readable description, e.g. `n4 16->16 64x64 k3 s1 p1`. A per-axis
    /// value is written once when both axes agree, else height x width: `k3x1 s2x1 p1x0 d1x2`.
    pub fn describe(&self) -> String {
        let axes = |[h, w]: [u32; 2]| {
            if h == w {
                h.to_string()
            } else {
                format!("{h}x{w}")
            }
        };
        let mut s = format!(
            "n{} {}->{} {}x{} k{} s{} p{}",
            self.batch,
            self.in_channels,
            self.out_channels,
            self.in_size[0],
            self.in_size[1],
            axes(self.kernel),
            axes(self.stride),
            axes(self.padding),
        );
        if self.dilation != [1, 1] {
            s += &format!(" d{}", axes(self.dilation));
        }
        if self.groups != 1 {
            s += &format!(" g{}", self.groups);
        }
        if self.bias {
            s += " +b";
        }
        s
    }
}
