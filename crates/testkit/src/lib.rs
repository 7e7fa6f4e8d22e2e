//! Test helpers shared by the crates' tests and the end-to-end tests:
//! synthetic IDX files and a local HTTP mirror on 127.0.0.1, so that no test
//! touches the internet. A dev-dependency only; nothing ships it.

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

/// A mirror URL on 127.0.0.1 where nothing listens (the port was free a moment ago).
pub fn dead_mirror() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/mnist/")
}
