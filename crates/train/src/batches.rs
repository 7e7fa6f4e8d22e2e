//! The order of the training split, reshuffled every epoch, and batch gathering.

use ae_model::kernels::simd::prefetch;
use ae_model::kernels::{Isa, widen_rows};
use ae_model::{INPUT, RngStream, seeded_rng};
use ae_store::PixelsRef;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// Hands out each epoch's image order from the config seed's shuffle stream.
pub(crate) struct Order {
    indices: Vec<usize>,
    rng: Option<ChaCha8Rng>,
}

impl Order {
    /// `n` images; `shuffle` draws a fresh permutation each epoch, otherwise
    /// the order is 0, 1, ..., n - 1 every time.
    pub(crate) fn new(n: usize, shuffle: bool, seed: u64) -> Self {
        Self {
            indices: (0..n).collect(),
            rng: shuffle.then(|| seeded_rng(seed, RngStream::Shuffle)),
        }
    }

    /// The order for the next epoch.
    pub(crate) fn next_epoch(&mut self) -> &[usize] {
        if let Some(rng) = &mut self.rng {
            self.indices.shuffle(rng);
        }
        &self.indices
    }
}

/// Copies the images at `indices` into `batch`, row after row, as f32
/// (bytes widened on `isa`'s path).
pub(crate) fn gather(isa: Isa, images: PixelsRef<'_>, indices: &[usize], batch: &mut Vec<f32>) {
    match images {
        PixelsRef::Bytes(bytes) => {
            batch.resize(indices.len() * INPUT, 0.0);
            widen_rows(isa, bytes, indices, batch);
        }
        PixelsRef::Floats(_) => {
            batch.clear();
            for &i in indices {
                images.extend_image(i, batch);
            }
        }
    }
}

/// Asks the CPU to bring the images at `indices` into cache, so that
/// gathering them later (a step later, in training) does not wait on
/// memory for rows scattered over the whole split; a hint with no effect
/// on any result.
pub(crate) fn prefetch_images(images: PixelsRef<'_>, indices: &[usize]) {
    for &i in indices {
        match images {
            PixelsRef::Bytes(bytes) => prefetch(&bytes[i * INPUT..][..INPUT]),
            PixelsRef::Floats(values) => prefetch(&values[i * INPUT..][..INPUT]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffles_reproducibly_and_differently_each_epoch() {
        let mut a = Order::new(100, true, 5);
        let mut b = Order::new(100, true, 5);
        let first = a.next_epoch().to_vec();
        assert_eq!(first, b.next_epoch());
        let second = a.next_epoch().to_vec();
        assert_ne!(first, second);
        let mut sorted = second.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_ne!(first, Order::new(100, true, 6).next_epoch());
        assert_eq!(Order::new(5, false, 5).next_epoch(), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn gathers_rows_of_floats_and_of_bytes_alike() {
        let images: Vec<f32> = (0..3 * INPUT)
            .map(|i| ae_store::byte_value((i / INPUT * 100 + i % 7) as u8))
            .collect();
        let mut batch = Vec::new();
        gather(Isa::detect(), (&images).into(), &[2, 0], &mut batch);
        assert_eq!(batch.len(), 2 * INPUT);
        assert_eq!(batch[..INPUT], images[2 * INPUT..]);
        assert_eq!(batch[INPUT..], images[..INPUT]);
        let compact = ae_store::Pixels::from_floats(&images);
        assert!(matches!(compact, ae_store::Pixels::Bytes(_)));
        for isa in Isa::every_available() {
            let mut from_bytes = vec![f32::NAN; 5 * INPUT];
            gather(isa, compact.view(), &[2, 0], &mut from_bytes);
            assert_eq!(from_bytes, batch, "{}", isa.name());
        }
    }
}
