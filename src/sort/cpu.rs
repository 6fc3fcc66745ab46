//! CPU twin of the radix sort: a stable sort by `f32::total_cmp`.

use super::SortOrder;

/// Stable sort of `keys` with their `values`, ordered like the GPU sort.
pub fn sort(keys: &[f32], values: &[u32], order: SortOrder) -> (Vec<f32>, Vec<u32>) {
    let mut idx: Vec<usize> = (0..keys.len()).collect();
    match order {
        SortOrder::Ascending => idx.sort_by(|&a, &b| keys[a].total_cmp(&keys[b])),
        SortOrder::Descending => idx.sort_by(|&a, &b| keys[b].total_cmp(&keys[a])),
    }
    (
        idx.iter().map(|&i| keys[i]).collect(),
        idx.iter()
            .map(|&i| values.get(i).copied().unwrap_or(i as u32))
            .collect(),
    )
}
