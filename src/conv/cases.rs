//! The conv shapes the report and the benches measure (NCHW; batch, in -> out channels,
//! input size, kernel, stride, padding).

use super::Conv2dShape;

/// Full cases: the list plus a fully connected layer (4096 -> 1024, batch 32, as a
/// 256-channel 4x4 input with a 4x4 kernel) and a depthwise 3x3 layer (128 channels).
pub fn full() -> Vec<Conv2dShape> {
    vec![
        Conv2dShape::new(4, 16, 16, [64, 64], [3, 3])
            .padding(1)
            .with_bias(true),
        Conv2dShape::new(4, 64, 64, [28, 28], [3, 3])
            .padding(1)
            .with_bias(true),
        Conv2dShape::new(4, 128, 128, [14, 14], [3, 3])
            .padding(1)
            .with_bias(true),
        Conv2dShape::new(4, 3, 64, [56, 56], [7, 7])
            .stride(2)
            .padding(3)
            .with_bias(true),
        Conv2dShape::new(4, 64, 64, [28, 28], [1, 1]).with_bias(true),
        Conv2dShape::new(8, 1, 32, [28, 28], [5, 5])
            .padding(2)
            .with_bias(true),
        Conv2dShape::new(32, 256, 1024, [4, 4], [4, 4]).with_bias(true),
        Conv2dShape::new(4, 128, 128, [28, 28], [3, 3])
            .padding(1)
            .groups(128)
            .with_bias(true),
    ]
}

/// Small cases that finish quickly on a software GPU (same kinds: 3x3, strided 7x7-like,
/// 1x1, single input channel, fully connected, depthwise).
pub fn quick() -> Vec<Conv2dShape> {
    vec![
        Conv2dShape::new(2, 8, 8, [16, 16], [3, 3])
            .padding(1)
            .with_bias(true),
        Conv2dShape::new(2, 3, 16, [20, 20], [5, 5])
            .stride(2)
            .padding(2)
            .with_bias(true),
        Conv2dShape::new(2, 16, 16, [8, 8], [1, 1]).with_bias(true),
        Conv2dShape::new(4, 1, 8, [12, 12], [5, 5])
            .padding(2)
            .with_bias(true),
        Conv2dShape::new(4, 32, 64, [4, 4], [4, 4]).with_bias(true),
        Conv2dShape::new(2, 16, 16, [12, 12], [3, 3])
            .padding(1)
            .groups(16)
            .with_bias(true),
    ]
}
