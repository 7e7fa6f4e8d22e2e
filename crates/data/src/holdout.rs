//! Holding out a seeded, stratified fraction of the training images.

use std::collections::BTreeMap;

use ae_store::{RngStream, seeded_rng};
use rand::seq::SliceRandom;

/// Splits `indices` (into a set with `labels`, if it has labels) into the
/// ones kept for training and the `fraction` held out, both in their
/// original order. With labels, each label gives the same fraction
/// (rounded); the choice is a shuffle from `seed`'s hold-out stream, so the
/// same config holds out the same images.
pub(crate) fn split(
    indices: &[usize],
    labels: Option<&[u8]>,
    fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let mut groups: BTreeMap<u8, Vec<usize>> = BTreeMap::new();
    for &i in indices {
        groups
            .entry(labels.map_or(0, |l| l[i]))
            .or_default()
            .push(i);
    }
    let mut rng = seeded_rng(seed, RngStream::Holdout);
    let mut held = Vec::new();
    for group in groups.values_mut() {
        let take = (group.len() as f64 * fraction).round() as usize;
        group.shuffle(&mut rng);
        held.extend_from_slice(&group[..take.min(group.len())]);
    }
    held.sort_unstable();
    let kept = indices
        .iter()
        .copied()
        .filter(|i| held.binary_search(i).is_err())
        .collect();
    (kept, held)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_out_a_stratified_disjoint_deterministic_fraction() {
        let labels: Vec<u8> = (0..1000).map(|i| if i % 10 == 0 { 1 } else { 0 }).collect();
        let indices: Vec<usize> = (0..1000).collect();
        let (kept, held) = split(&indices, Some(&labels), 0.2, 7);
        assert_eq!((kept.len(), held.len()), (800, 200));
        // Stratified: 20% of each label.
        let ones = held.iter().filter(|&&i| labels[i] == 1).count();
        assert_eq!(ones, 20);
        // Disjoint, and together every index once.
        let mut all: Vec<usize> = kept.iter().chain(&held).copied().collect();
        all.sort_unstable();
        assert_eq!(all, indices);
        // The same seed holds out the same images; another seed others.
        assert_eq!(
            split(&indices, Some(&labels), 0.2, 7),
            (kept.clone(), held.clone())
        );
        let (_, other) = split(&indices, Some(&labels), 0.2, 8);
        assert_ne!(other, held);
        // Without labels, one group.
        let (kept, held) = split(&indices[..10], None, 0.25, 1);
        assert_eq!((kept.len(), held.len()), (7, 3));
        assert!(kept.windows(2).all(|w| w[0] < w[1]) && held.windows(2).all(|w| w[0] < w[1]));
    }
}
