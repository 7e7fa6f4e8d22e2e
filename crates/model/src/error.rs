use ae_store::StoreError;

/// Why a model could not be built, saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A latent size that is not compiled in.
    #[error("latent size {0} is not compiled in; use one of 8, 16, 32, 64 or 128")]
    UnsupportedLatent(usize),
    /// The model file is missing, unreadable, or holds other tensors than the
    /// model's (the message lists each difference).
    #[error(transparent)]
    Store(#[from] StoreError),
}
