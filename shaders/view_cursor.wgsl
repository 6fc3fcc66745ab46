// A position (o, r, i) in a tensor viewed as [outer][rows][inner], advanced by a fixed number
// of elements with additions and compares only: the host splits the step into (o, r, i)
// parts once (step_i < inner, step_r < rows), so a thread divides once, where it starts, and
// never per element (an integer division per element dominates on GPUs without a divider
// and on software drivers).

struct ViewCursor {
    o: u32,
    r: u32,
    i: u32,
}

fn cursor_at(e: u32, rows: u32, inner: u32) -> ViewCursor {
    let q = e / inner;
    let o = q / rows;
    return ViewCursor(o, q - o * rows, e - q * inner);
}

fn cursor_advance(c: ViewCursor, step: vec3<u32>, rows: u32, inner: u32) -> ViewCursor {
    var i = c.i + step.z;
    let carry_i = i >= inner;
    i = select(i, i - inner, carry_i);
    var r = c.r + step.y + select(0u, 1u, carry_i);
    let carry_r = r >= rows;
    r = select(r, r - rows, carry_r);
    return ViewCursor(c.o + step.x + select(0u, 1u, carry_r), r, i);
}
