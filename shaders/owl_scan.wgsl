// Prelude of scan.wgsl for the OWL prox (after owl_prox.wgsl, which declares `p` and the
// 64-bit helpers): inclusive prefix sum of 64-bit fixed-point integers (low word, high word).

alias Elem = vec2<u32>;
const ELEM_ZERO: Elem = vec2<u32>(0u, 0u);
const INCLUSIVE: bool = true;

fn elem_add(a: Elem, b: Elem) -> Elem {
    return i64_add(a, b);
}
