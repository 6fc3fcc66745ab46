// Prelude of scan.wgsl for the OWL prox (after owl_prox.wgsl, which declares `p` and the
// block-scaled helpers): inclusive scan of packed block-scaled sums. The addition rounds the
// finer operand to the coarser grid: not associative, but the scan's tree depends only on the
// length, so the results are deterministic.

alias Elem = vec2<u32>;
// Zero on the lowest grid: an exact identity on either side.
const ELEM_ZERO: Elem = vec2<u32>(0u, CODE_MIN << 24u);
const INCLUSIVE: bool = true;

fn elem_add(a: Elem, b: Elem) -> Elem {
    return sc_add_packed(a, b);
}
