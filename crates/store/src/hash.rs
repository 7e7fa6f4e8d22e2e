use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

use crate::StoreError;

/// The sha256 of `bytes` as 64 lowercase hex digits.
pub fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(&Sha256::digest(bytes))
}

/// The sha256 of a file's bytes as 64 lowercase hex digits, read in 1 MiB chunks.
pub fn sha256_file(path: &Path) -> Result<String, StoreError> {
    let read_err = |source| StoreError::Read {
        path: path.to_path_buf(),
        source,
    };
    crate::regular_file(path)?;
    let file = File::open(path).map_err(read_err)?;
    sha256_reader(file).map_err(read_err)
}

/// The sha256 of everything `reader` yields, read in 1 MiB chunks.
pub(crate) fn sha256_reader(mut reader: impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(to_hex(&hasher.finalize()))
}

/// A sha256 computed on a thread of its own from the bytes handed to it, so
/// that hashing overlaps whatever produces them (decompression). Bytes are
/// copied into a few reused buffers, at most four waiting at a time.
#[derive(Debug)]
pub struct BackgroundSha256 {
    to_hasher: SyncSender<Vec<u8>>,
    spare: Receiver<Vec<u8>>,
    hasher: JoinHandle<String>,
}

impl BackgroundSha256 {
    /// Starts the hashing thread.
    pub fn start() -> Self {
        Self::resume(Sha256::new())
    }

    /// Starts the hashing thread from a hash of the bytes before.
    fn resume(mut hasher: Sha256) -> Self {
        let (to_hasher, received) = mpsc::sync_channel::<Vec<u8>>(4);
        let (give_back, spare) = mpsc::channel();
        let hasher = std::thread::spawn(move || {
            for bytes in received {
                hasher.update(&bytes);
                // The producer may have finished; then the buffer is dropped.
                let _ = give_back.send(bytes);
            }
            to_hex(&hasher.finalize())
        });
        Self {
            to_hasher,
            spare,
            hasher,
        }
    }

    /// Hashes `bytes` next.
    pub fn update(&mut self, bytes: &[u8]) {
        let mut buffer = self.spare.try_recv().unwrap_or_default();
        buffer.clear();
        buffer.extend_from_slice(bytes);
        self.to_hasher
            .send(buffer)
            .expect("the hashing thread runs until `finish`");
    }

    /// The sha256 of every byte given, as 64 lowercase hex digits.
    pub fn finish(self) -> String {
        drop(self.to_hasher);
        self.hasher
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

/// Bytes hashed inline up to this many, then on a thread of their own.
const INLINE_HASH_BYTES: usize = 1 << 22;

/// A file being written that hashes what is written to it: small files
/// inline, large ones on another thread beside the writing (one hand-off
/// per write; put a buffer in front of it).
pub(crate) struct HashingFile<'f> {
    file: &'f File,
    written: usize,
    digest: Digesting,
}

enum Digesting {
    Inline(Sha256),
    Background(BackgroundSha256),
}

impl<'f> HashingFile<'f> {
    pub(crate) fn new(file: &'f File) -> Self {
        Self {
            file,
            written: 0,
            digest: Digesting::Inline(Sha256::new()),
        }
    }

    /// The sha256 of every byte written, as 64 lowercase hex digits.
    pub(crate) fn finish(self) -> String {
        match self.digest {
            Digesting::Inline(hasher) => to_hex(&hasher.finalize()),
            Digesting::Background(hasher) => hasher.finish(),
        }
    }
}

impl io::Write for HashingFile<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n;
        if let Digesting::Inline(hasher) = &mut self.digest
            && self.written > INLINE_HASH_BYTES
        {
            let so_far = std::mem::take(hasher);
            self.digest = Digesting::Background(BackgroundSha256::resume(so_far));
        }
        match &mut self.digest {
            Digesting::Inline(hasher) => hasher.update(&buf[..n]),
            Digesting::Background(hasher) => hasher.update(&buf[..n]),
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

// sha2 0.11 digests no longer implement `LowerHex`, so format by hand.
pub(crate) fn to_hex(digest: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest {
        hex.push(DIGITS[usize::from(byte >> 4)] as char);
        hex.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_known_digests() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn file_digest_equals_bytes_digest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).expect("write");
        assert_eq!(sha256_file(&path).expect("hash"), sha256_hex(&bytes));
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = sha256_file(Path::new("/nonexistent/x.bin")).expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/x.bin"), "{err}");
    }

    #[test]
    fn hashing_in_the_background_gives_the_digest_of_the_bytes_in_order() {
        let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut hasher = BackgroundSha256::start();
        for chunk in bytes.chunks(77_777) {
            hasher.update(chunk);
        }
        hasher.update(&[]);
        assert_eq!(hasher.finish(), sha256_hex(&bytes));
        assert_eq!(BackgroundSha256::start().finish(), sha256_hex(b""));
    }
}
