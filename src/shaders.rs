//! The WGSL sources of the families not yet in the kernel table (`crate::kernels`) (`shaders/` holds the files).
//!
//! The conv GEMM shaders are the shared core (`conv_gemm_common.wgsl`, then the skinny-tile
//! driver `conv_gemm_skinny.wgsl`, then for all but the weight gradient the shared
//! register-tile entry point `conv_gemm_main.wgsl`) followed by one op-specific file. [`all`] lists every
//! complete module, for validation with naga.

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
/// The scalar tied reduction, level by level (`shaders/tie_reduce_runs.wgsl`).
pub const TIE_REDUCE_RUNS: &str = include_str!("../shaders/tie_reduce_runs.wgsl");
/// Tied groups, blocks: piece reduction.
const TIE_REDUCE_BLOCKS: &str = include_str!("../shaders/tie_reduce_blocks.wgsl");
/// Tied groups, blocks: multi-piece groups.
pub const TIE_REDUCE_BLOCK_PIECES: &str = include_str!("../shaders/tie_reduce_block_pieces.wgsl");
/// Tied groups past one binding: combine the windows' partials.
pub const TIE_COMBINE: &str = include_str!("../shaders/tie_combine.wgsl");
/// Stepping a position in an [outer][rows][inner] view without divisions.
const VIEW_CURSOR: &str = include_str!("../shaders/view_cursor.wgsl");
const TIE_BROADCAST: &str = include_str!("../shaders/tie_broadcast.wgsl");
const TIE_BROADCAST_QUADS: &str = include_str!("../shaders/tie_broadcast_quads.wgsl");
/// OWL prox: common part (parameters, 64-bit integer and block-scaled fixed-point helpers).
pub const OWL_COMMON: &str = include_str!("../shaders/owl_prox.wgsl");
/// OWL prox: the cumulative-sum points and orientation test.
pub const OWL_GEOMETRY: &str = include_str!("../shaders/owl_geometry.wgsl");
/// OWL prox stage: magnitudes and indices.
pub const OWL_PREPARE: &str = include_str!("../shaders/owl_prepare.wgsl");
/// OWL prox stage: z = sorted magnitudes - weights.
pub const OWL_MAKE_Z: &str = include_str!("../shaders/owl_make_z.wgsl");
/// OWL prox stage: leaf hulls.
pub const OWL_LEAF: &str = include_str!("../shaders/owl_leaf.wgsl");
/// OWL prox stage: hull compaction.
pub const OWL_COMPACT: &str = include_str!("../shaders/owl_compact.wgsl");
/// OWL prox stage: bridges of neighbouring hulls.
pub const OWL_BRIDGE: &str = include_str!("../shaders/owl_bridge.wgsl");
/// OWL prox stage: hull merge copy.
pub const OWL_COPY: &str = include_str!("../shaders/owl_copy.wgsl");
/// OWL prox stage: slopes, clip, scatter with signs; block ids.
pub const OWL_FINISH: &str = include_str!("../shaders/owl_finish.wgsl");
/// GrOWL: common part.
pub const GROWL_COMMON: &str = include_str!("../shaders/growl_common.wgsl");
/// GrOWL stage: group norms.
const GROWL_NORMS: &str = include_str!("../shaders/growl_norms.wgsl");
const GROWL_NORMS_ELEMENTS: &str = include_str!("../shaders/growl_norms_elements.wgsl");
const GROWL_NORMS_QUADS: &str = include_str!("../shaders/growl_norms_quads.wgsl");
const GROWL_RESCALE_QUADS: &str = include_str!("../shaders/growl_rescale_quads.wgsl");
/// GrOWL stage: group rescale.
const GROWL_RESCALE: &str = include_str!("../shaders/growl_rescale.wgsl");
/// Tied groups, blocks: piece reduction over columns of type `lane` (`f32`, or `vec4<f32>`
/// when the inner extent is whole quads).
pub fn tie_reduce_blocks(lane: &str) -> String {
    format!("alias Lane = {lane};\n{TIE_REDUCE_BLOCKS}")
}

/// Tied groups: broadcast of group values to members, one element at a time.
pub fn tie_broadcast() -> String {
    format!("{VIEW_CURSOR}\n{TIE_BROADCAST}")
}

/// Tied groups: gathers four elements at a time: the broadcast of group values to members,
/// and the staging copy of scattered scalar members (`STAGE_CHUNK` from the host).
pub fn tie_broadcast_quads() -> String {
    let chunk = crate::tying::STAGE_CHUNK;
    format!("const STAGE_CHUNK: u32 = {chunk}u;\n{VIEW_CURSOR}\n{TIE_BROADCAST_QUADS}")
}

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

/// An OWL prox module: the common OWL declarations, then `parts` in order.
pub fn owl_stage(parts: &[&str]) -> String {
    let mut src = crate::growl::gpu::owl_params_wgsl();
    src.push_str(OWL_COMMON);
    for part in parts {
        src.push('\n');
        src.push_str(part);
    }
    src
}

/// A GrOWL module: the common GrOWL declarations, then `stage`.
pub fn growl_stage(stage: &str) -> String {
    format!("{GROWL_COMMON}\n{stage}")
}

/// GrOWL group norms, element by element (any layout).
pub fn growl_norms_elements() -> String {
    growl_stage(&format!("{GROWL_NORMS}\n{GROWL_NORMS_ELEMENTS}"))
}

/// GrOWL group norms of rows of whole quads.
pub fn growl_norms_quads() -> String {
    growl_stage(&format!("{GROWL_NORMS}\n{GROWL_NORMS_QUADS}"))
}

/// GrOWL per-group factors and rescale, element by element (any layout).
pub fn growl_rescale() -> String {
    growl_stage(&format!("{VIEW_CURSOR}\n{GROWL_RESCALE}"))
}

/// GrOWL rescale of tensors whose inner extent is whole quads.
pub fn growl_rescale_quads() -> String {
    growl_stage(&format!("{VIEW_CURSOR}\n{GROWL_RESCALE_QUADS}"))
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
    } else if name == "tie_reduce_runs" {
        vec![vec![("GATHER", 0.0)], vec![("GATHER", 1.0)]]
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
        ("tie_reduce_runs", TIE_REDUCE_RUNS.to_string()),
        ("tie_reduce_blocks", tie_reduce_blocks("f32")),
        ("tie_reduce_blocks_quads", tie_reduce_blocks("vec4<f32>")),
        (
            "tie_reduce_block_pieces",
            TIE_REDUCE_BLOCK_PIECES.to_string(),
        ),
        ("tie_broadcast", tie_broadcast()),
        ("tie_broadcast_quads", tie_broadcast_quads()),
        ("tie_combine", TIE_COMBINE.to_string()),
        ("owl_prepare", owl_stage(&[OWL_PREPARE])),
        ("owl_make_z", owl_stage(&[OWL_MAKE_Z])),
        ("owl_leaf", owl_stage(&[OWL_GEOMETRY, OWL_LEAF])),
        ("owl_compact", owl_stage(&[OWL_COMPACT])),
        ("owl_bridge", owl_stage(&[OWL_GEOMETRY, OWL_BRIDGE])),
        ("owl_copy", owl_stage(&[OWL_COPY])),
        ("owl_finish", owl_stage(&[OWL_GEOMETRY, OWL_FINISH])),
        ("growl_norms", growl_norms_elements()),
        ("growl_norms_quads", growl_norms_quads()),
        ("growl_rescale_quads", growl_rescale_quads()),
        ("growl_rescale", growl_rescale()),
    ]
}
