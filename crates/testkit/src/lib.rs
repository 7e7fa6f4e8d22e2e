//! Test helpers shared by the crates' tests and the end-to-end tests:
//! synthetic IDX files (patterns, or digit-like strokes a model can learn)
//! and a local HTTP mirror on 127.0.0.1, so that no test touches the
//! internet or needs a downloaded dataset. A dev-dependency only; nothing
//! ships it.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;

use flate2::{Compression, write::GzEncoder};

/// The four MNIST file names (without `.gz`), training split first.
pub const MNIST_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// A NumPy `.npy` file as `np.save` writes it (format 1.0, the header
/// padded to a multiple of 64 bytes) holding `body`, an array of `descr`
/// (`|u1`, `<f4`, `<i8`, ...) and `shape`.
pub fn npy(descr: &str, shape: &[usize], body: &[u8]) -> Vec<u8> {
    let shape = match shape {
        [n] => format!("({n},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((dict.len() as u16).to_le_bytes());
    out.extend(dict.as_bytes());
    out.extend(body);
    out
}

/// gzip-compresses `bytes`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A well-formed idx3 file of `count` 28×28 images; pixel `i` overall is `i % 256`.
pub fn idx_images(count: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    for word in [2051u32, count, 28, 28] {
        bytes.extend(word.to_be_bytes());
    }
    bytes.extend((0..count as usize * 784).map(|i| (i % 256) as u8));
    bytes
}

/// A well-formed idx1 file of `count` labels `0, 1, ..., 9, 0, ...`.
pub fn idx_labels(count: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    for word in [2049u32, count] {
        bytes.extend(word.to_be_bytes());
    }
    bytes.extend((0..count).map(|i| (i % 10) as u8));
    bytes
}

/// An idx3 file holding `pixels` as 28×28 images (`pixels.len()` a multiple of 784).
pub fn idx_images_of(pixels: &[u8]) -> Vec<u8> {
    assert_eq!(pixels.len() % 784, 0, "whole images");
    let mut bytes = Vec::with_capacity(16 + pixels.len());
    for word in [2051u32, (pixels.len() / 784) as u32, 28, 28] {
        bytes.extend(word.to_be_bytes());
    }
    bytes.extend_from_slice(pixels);
    bytes
}

/// An idx1 file holding `labels`.
pub fn idx_labels_of(labels: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(8 + labels.len());
    for word in [2049u32, labels.len() as u32] {
        bytes.extend(word.to_be_bytes());
    }
    bytes.extend_from_slice(labels);
    bytes
}

/// `n` digit-like 28×28 images and their labels, the same for the same
/// `seed`: image `i` has label `i % 10` and shows a bright stroke at an
/// angle of its label's (18° apart), jittered in position, length, width
/// and brightness, on a dark background with faint noise. An autoencoder
/// learns them in a few epochs, and each class looks unlike the others.
pub fn synthetic_digits(n: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut pixels = Vec::with_capacity(n * 784);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let label = (i % 10) as u8;
        let angle = f32::from(label) * std::f32::consts::PI / 10.0;
        let (dx, dy) = (angle.cos(), angle.sin());
        let centre = (13.5 + rng.uniform(-2.0, 2.0), 13.5 + rng.uniform(-2.0, 2.0));
        let half_length = rng.uniform(7.0, 10.0);
        let half_width = rng.uniform(1.0, 2.2);
        let brightness = rng.uniform(180.0, 255.0);
        for row in 0..28 {
            for col in 0..28 {
                let (x, y) = (col as f32 - centre.0, row as f32 - centre.1);
                let along = x * dx + y * dy;
                let across = (-x * dy + y * dx).abs();
                let stroke = if along.abs() <= half_length {
                    (1.0 - (across - half_width).max(0.0)).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let noise = rng.uniform(0.0, 12.0);
                pixels.push((stroke * brightness + noise).min(255.0) as u8);
            }
        }
        labels.push(label);
    }
    (pixels, labels)
}

/// xorshift64*: a tiny seeded generator, enough for test data.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[low, high)`.
    fn uniform(&mut self, low: f32, high: f32) -> f32 {
        let unit = (self.next() >> 40) as f32 / (1u64 << 24) as f32;
        low + (high - low) * unit
    }
}

/// Serves fixed files over HTTP on 127.0.0.1 until dropped; any other path is a 404.
pub struct LocalMirror {
    server: Arc<tiny_http::Server>,
    /// The base URL, ending in `/`: `http://127.0.0.1:PORT<prefix>`.
    pub url: String,
}

impl LocalMirror {
    /// Serves `files`, keyed by file name, under the URL path `prefix` (e.g. `/mnist/`).
    pub fn serve(prefix: &str, files: HashMap<String, Vec<u8>>) -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let serving = Arc::clone(&server);
        let prefix_owned = prefix.to_string();
        thread::spawn(move || {
            for request in serving.incoming_requests() {
                let body = request
                    .url()
                    .strip_prefix(&prefix_owned)
                    .and_then(|name| files.get(name));
                let response = match body {
                    Some(body) => tiny_http::Response::from_data(body.clone()).boxed(),
                    None => tiny_http::Response::empty(404).boxed(),
                };
                let _ = request.respond(response);
            }
        });
        Self {
            server,
            url: format!("http://127.0.0.1:{port}{prefix}"),
        }
    }
}

impl Drop for LocalMirror {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

/// How a [`hostile_mirror`] misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostile {
    /// Sends bytes without end and without a length.
    Endless,
    /// Claims a body of 10^15 bytes.
    ClaimsHuge,
    /// Sends one byte every half second (never long enough to trip a read
    /// timeout of a second or more).
    Drip,
}

/// A mirror on 127.0.0.1 that answers every request as `how` says, until
/// the test process ends; returns its base URL.
pub fn hostile_mirror(how: Hostile) -> String {
    use std::io::Read;
    use std::time::Duration;

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            thread::spawn(move || {
                // Read the request's head before answering.
                let mut head = [0u8; 4096];
                let _ = stream.read(&mut head);
                let header = match how {
                    Hostile::Endless => "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_string(),
                    Hostile::ClaimsHuge => {
                        "HTTP/1.1 200 OK\r\nContent-Length: 1000000000000000\r\n\r\n".to_string()
                    }
                    Hostile::Drip => "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_string(),
                };
                if stream.write_all(header.as_bytes()).is_err() {
                    return;
                }
                let block = [0x1fu8; 64 * 1024];
                loop {
                    let sent = match how {
                        Hostile::Endless | Hostile::ClaimsHuge => stream.write_all(&block),
                        Hostile::Drip => {
                            thread::sleep(Duration::from_millis(500));
                            stream.write_all(&block[..1])
                        }
                    };
                    if sent.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://127.0.0.1:{port}/mnist/")
}

/// A mirror URL on 127.0.0.1 where nothing listens (the port was free a moment ago).
pub fn dead_mirror() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/mnist/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_digits_are_seeded_labelled_and_distinct_by_class() {
        let (pixels, labels) = synthetic_digits(20, 7);
        assert_eq!((pixels.len(), labels.len()), (20 * 784, 20));
        assert_eq!(synthetic_digits(20, 7), (pixels.clone(), labels.clone()));
        assert_ne!(synthetic_digits(20, 8).0, pixels);
        assert_eq!(labels[..12], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
        // Bright strokes on a dark ground.
        let bright = pixels.iter().filter(|&&p| p > 150).count();
        assert!(
            (20 * 20..20 * 200).contains(&bright),
            "{bright} bright pixels"
        );
        // A horizontal stroke (class 0) and a vertical one (class 5) differ.
        let image = |k: usize| &pixels[k * 784..(k + 1) * 784];
        let differ = image(0)
            .iter()
            .zip(image(5))
            .filter(|(a, b)| a.abs_diff(**b) > 100)
            .count();
        assert!(differ > 20, "{differ}");
        let file = idx_images_of(&pixels);
        assert_eq!(file[..16], idx_images(20)[..16]);
        assert_eq!(idx_labels_of(&labels)[..8], idx_labels(20)[..8]);
    }
}
