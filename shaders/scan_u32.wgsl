// Prelude of scan.wgsl: exclusive prefix sum of u32 values (the radix sort's digit offsets,
// the OWL prox's hull sizes).

@group(0) @binding(0) var<uniform> p: ScanParams;

alias Elem = u32;
const ELEM_ZERO: Elem = 0u;
const INCLUSIVE: bool = false;

fn elem_add(a: Elem, b: Elem) -> Elem {
    return a + b;
}
