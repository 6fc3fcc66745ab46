//! Conv2d against its CPU twin.

mod common;

use tied::conv::{cpu, Conv2dShape};
use tied::verify::{abs, max_rel_err, Rng};

const TOL: f64 = 2e-5;

/// Runs forward and both gradients on the GPU and checks each against the CPU twin.
fn check_shape(shape: &Conv2dShape, seed: u64) {
    let conv = common::conv();
    let mut rng = Rng::new(seed);
    let x = rng.vec(shape.input_len());
    let w = rng.vec(shape.weight_len());
    let b = rng.vec(shape.bias_len());
    let dy = rng.vec(shape.output_len());
    let bias = shape.bias.then_some(&b[..]);

    let y = conv.forward_blocking(shape, &x, &w, bias).expect("forward");
    let y_ref = cpu::forward(shape, &x, &w, bias);
    let y_scale = cpu::forward(
        shape,
        &abs(&x),
        &abs(&w),
        shape.bias.then_some(&abs(&b)[..]),
    );
    let e = max_rel_err(&y, &y_ref, &y_scale);
    assert!(e <= TOL, "forward {}: max rel err {e}", shape.describe());

    let g = conv
        .backward_blocking(shape, &x, &w, &dy)
        .expect("backward");
    let gi_ref = cpu::backward_data(shape, &dy, &w);
    let gi_scale = cpu::backward_data(shape, &abs(&dy), &abs(&w));
    let e = max_rel_err(&g.input, &gi_ref, &gi_scale);
    assert!(
        e <= TOL,
        "backward_data {}: max rel err {e}",
        shape.describe()
    );

    let gw_ref = cpu::backward_weight(shape, &dy, &x);
    let gw_scale = cpu::backward_weight(shape, &abs(&dy), &abs(&x));
    let e = max_rel_err(&g.weight, &gw_ref, &gw_scale);
    assert!(
        e <= TOL,
        "backward_weight {}: max rel err {e}",
        shape.describe()
    );

    let gb_ref = if shape.bias {
        cpu::backward_bias(shape, &dy)
    } else {
        vec![]
    };
    let gb_scale = if shape.bias {
        cpu::backward_bias(shape, &abs(&dy))
    } else {
        vec![]
    };
    let e = max_rel_err(&g.bias, &gb_ref, &gb_scale);
    assert!(
        e <= TOL,
        "backward_bias {}: max rel err {e}",
        shape.describe()
    );
}

#[test]
fn basic_3x3() {
    check_shape(
        &Conv2dShape::new(2, 3, 5, [7, 9], [3, 3])
            .padding(1)
            .with_bias(true),
        1,
    );
}
