//! The WGSL sources of the families not yet in the kernel table (`crate::kernels`) (`shaders/` holds the files).

const CONV_GEMM_COMMON: &str = include_str!("../shaders/conv_gemm_common.wgsl");
const CONV_GEMM_SKINNY: &str = include_str!("../shaders/conv_gemm_skinny.wgsl");
const CONV_GEMM_MAIN: &str = include_str!("../shaders/conv_gemm_main.wgsl");
const CONV_FORWARD: &str = include_str!("../shaders/conv_forward.wgsl");
const CONV_BACKWARD_DATA: &str = include_str!("../shaders/conv_backward_data.wgsl");
const CONV_BACKWARD_DATA_FC: &str = include_str!("../shaders/conv_backward_data_fc.wgsl");
const CONV_BACKWARD_WEIGHT: &str = include_str!("../shaders/conv_backward_weight.wgsl");
/// Conv input gradient: zeros at the positions no kernel tap reaches.
pub const CONV_ZERO_UNREACHED: &str = include_str!("../shaders/conv_zero_unreached.wgsl");
/// Fixed-order sum of split-K partials plus bias.
pub const SPLIT_REDUCE: &str = include_str!("../shaders/split_reduce.wgsl");
/// Per-channel fixed-tree sum (bias gradient).
pub const CHANNEL_SUM: &str = include_str!("../shaders/channel_sum.wgsl");
/// Batched tiled transpose (NCHW <-> NHWC).
pub const LAYOUT_TRANSPOSE: &str = include_str!("../shaders/layout_transpose.wgsl");
const TRAIN_COMMON: &str = include_str!("../shaders/train_common.wgsl");
/// Training: ReLU forward (after [`train_elementwise`]'s common part).
pub const TRAIN_RELU_FORWARD: &str = include_str!("../shaders/train_relu_forward.wgsl");
/// Training: ReLU backward.
pub const TRAIN_RELU_BACKWARD: &str = include_str!("../shaders/train_relu_backward.wgsl");
/// Training: momentum SGD with weight decay and a group mask.
pub const TRAIN_SGD: &str = include_str!("../shaders/train_sgd.wgsl");
/// Training: re-zero masked groups.
pub const TRAIN_MASK_APPLY: &str = include_str!("../shaders/train_mask_apply.wgsl");
/// Training: mask groups whose norm fell to the threshold.
pub const TRAIN_MASK_UPDATE: &str = include_str!("../shaders/train_mask_update.wgsl");
const TRAIN_BATCHNORM: &str = include_str!("../shaders/train_batchnorm.wgsl");
/// Training: BatchNorm1d training forward (after [`train_batchnorm`]'s common part).
pub const TRAIN_BATCHNORM_FORWARD: &str = include_str!("../shaders/train_batchnorm_forward.wgsl");
/// Training: BatchNorm1d inference forward.
pub const TRAIN_BATCHNORM_EVAL: &str = include_str!("../shaders/train_batchnorm_eval.wgsl");
/// Training: BatchNorm1d backward.
pub const TRAIN_BATCHNORM_BACKWARD: &str = include_str!("../shaders/train_batchnorm_backward.wgsl");
/// Training: fused softmax cross-entropy.
pub const TRAIN_SOFTMAX_XENT: &str = include_str!("../shaders/train_softmax_xent.wgsl");
/// Training: running loss and accuracy totals.
pub const TRAIN_STATS: &str = include_str!("../shaders/train_stats.wgsl");
/// Training: batch gather from a u8 data set.
pub const TRAIN_GATHER: &str = include_str!("../shaders/train_gather.wgsl");

/// Conv forward: common core, skinny driver, column-loader main + forward addressing.
pub fn conv_forward() -> String {
    format!("{CONV_GEMM_COMMON}\n{CONV_GEMM_SKINNY}\n{CONV_GEMM_MAIN}\n{CONV_FORWARD}")
}

/// Conv input gradient: common core, skinny driver, column-loader main + transposed-conv
/// addressing.
pub fn conv_backward_data() -> String {
    format!("{CONV_GEMM_COMMON}\n{CONV_GEMM_SKINNY}\n{CONV_GEMM_MAIN}\n{CONV_BACKWARD_DATA}")
}

/// Conv input gradient of a fully connected layer (kernel == input): common core, skinny
/// driver, column-loader main + plain GEMM.
pub fn conv_backward_data_fc() -> String {
    format!("{CONV_GEMM_COMMON}\n{CONV_GEMM_SKINNY}\n{CONV_GEMM_MAIN}\n{CONV_BACKWARD_DATA_FC}")
}

/// Conv weight gradient: common core and skinny driver + split-K addressing.
pub fn conv_backward_weight() -> String {
    format!("{CONV_GEMM_COMMON}\n{CONV_GEMM_SKINNY}\n{CONV_BACKWARD_WEIGHT}")
}

/// An elementwise training module: the common part, then `part`.
pub fn train_elementwise(part: &str) -> String {
    format!("{TRAIN_COMMON}\n{part}")
}

/// A BatchNorm1d module: the common part, then `part`.
pub fn train_batchnorm(part: &str) -> String {
    format!("{TRAIN_BATCHNORM}\n{part}")
}

/// Pipeline-overridable constants each module is compiled with (name, value sets).
pub fn override_sets(name: &str) -> Vec<Vec<(&'static str, f64)>> {
    if matches!(
        name,
        "conv_forward" | "conv_backward_data" | "conv_backward_data_fc" | "conv_backward_weight"
    ) {
        crate::conv::TILE_SHAPES
            .iter()
            .map(|&t| crate::conv::tile_constants(t).to_vec())
            .collect()
    } else {
        vec![Vec::new()]
    }
}

/// Every complete module: (name, WGSL source).
pub fn all() -> Vec<(&'static str, String)> {
    vec![
        ("conv_forward", conv_forward()),
        ("conv_backward_data", conv_backward_data()),
        ("conv_backward_data_fc", conv_backward_data_fc()),
        ("conv_backward_weight", conv_backward_weight()),
        ("conv_zero_unreached", CONV_ZERO_UNREACHED.to_string()),
        ("split_reduce", SPLIT_REDUCE.to_string()),
        ("channel_sum", CHANNEL_SUM.to_string()),
        ("layout_transpose", LAYOUT_TRANSPOSE.to_string()),
        ("train_relu_forward", train_elementwise(TRAIN_RELU_FORWARD)),
        (
            "train_relu_backward",
            train_elementwise(TRAIN_RELU_BACKWARD),
        ),
        ("train_sgd", train_elementwise(TRAIN_SGD)),
        ("train_mask_apply", train_elementwise(TRAIN_MASK_APPLY)),
        ("train_mask_update", train_elementwise(TRAIN_MASK_UPDATE)),
        (
            "train_batchnorm_forward",
            train_batchnorm(TRAIN_BATCHNORM_FORWARD),
        ),
        (
            "train_batchnorm_eval",
            train_batchnorm(TRAIN_BATCHNORM_EVAL),
        ),
        (
            "train_batchnorm_backward",
            train_batchnorm(TRAIN_BATCHNORM_BACKWARD),
        ),
        ("train_softmax_xent", TRAIN_SOFTMAX_XENT.to_string()),
        ("train_stats", TRAIN_STATS.to_string()),
        ("train_gather", TRAIN_GATHER.to_string()),
    ]
}
