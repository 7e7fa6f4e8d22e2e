//! The random streams of an experiment: one config seed, one independent
//! ChaCha8 stream per use.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The independent random streams one config seed drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum RngStream {
    /// Weight initialisation.
    Init = 1,
    /// The training split's order, epoch after epoch.
    Shuffle = 2,
    /// Which training images are held out as the validation split.
    Holdout = 3,
}

/// A portable, reproducible generator for `stream` of `seed`: ChaCha8, whose
/// output is fixed by its specification (unlike `StdRng`'s).
pub fn seeded_rng(seed: u64, stream: RngStream) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream as u64);
    rng
}
