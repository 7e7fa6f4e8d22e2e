//! The datasets `ae` knows: their file names, sizes, digests and mirrors.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A dataset in the IDX format with MNIST's layout (28×28 images, labels 0–9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dataset {
    /// LeCun et al.'s handwritten digits.
    Mnist,
    /// Zalando's Fashion-MNIST, a drop-in replacement with clothing images.
    FashionMnist,
}

/// Whether an IDX file holds images or labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdxKind {
    /// `idx3-ubyte`: count × rows × cols pixels.
    Images,
    /// `idx1-ubyte`: one byte per image.
    Labels,
}

/// One of a dataset's four files, as it is known to be when intact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdxFile {
    /// The name without `.gz`, e.g. `train-images-idx3-ubyte`.
    pub name: &'static str,
    /// Images or labels.
    pub kind: IdxKind,
    /// Length of the decompressed file in bytes.
    pub len: u64,
    /// sha256 of the decompressed bytes, lowercase hex (mirror-independent).
    pub sha256: &'static str,
}

/// The images and labels file of one split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitFiles {
    /// The `idx3-ubyte` file.
    pub images: IdxFile,
    /// The `idx1-ubyte` file.
    pub labels: IdxFile,
}

const TRAIN_IMAGES_LEN: u64 = 47_040_016;
const TRAIN_LABELS_LEN: u64 = 60_008;
const TEST_IMAGES_LEN: u64 = 7_840_016;
const TEST_LABELS_LEN: u64 = 10_008;

impl Dataset {
    /// Every dataset, in the order the docs list them.
    pub const ALL: [Dataset; 2] = [Dataset::Mnist, Dataset::FashionMnist];

    /// The name used in configs and as the folder under the data root.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Mnist => "mnist",
            Dataset::FashionMnist => "fashion-mnist",
        }
    }

    /// Mirrors tried in order when a file is missing; each serves `<name>.gz`.
    pub fn default_mirrors(self) -> &'static [&'static str] {
        match self {
            Dataset::Mnist => &[
                "https://ossci-datasets.s3.amazonaws.com/mnist/",
                "https://storage.googleapis.com/cvdf-datasets/mnist/",
            ],
            Dataset::FashionMnist => {
                &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
            }
        }
    }

    /// Number of images in the full training split.
    pub fn train_len(self) -> usize {
        60_000
    }

    /// Number of images in the full test split.
    pub fn test_len(self) -> usize {
        10_000
    }

    /// The training split's files.
    pub fn train_files(self) -> SplitFiles {
        let (images, labels) = match self {
            Dataset::Mnist => (
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            ),
            Dataset::FashionMnist => (
                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            ),
        };
        SplitFiles {
            images: IdxFile {
                name: "train-images-idx3-ubyte",
                kind: IdxKind::Images,
                len: TRAIN_IMAGES_LEN,
                sha256: images,
            },
            labels: IdxFile {
                name: "train-labels-idx1-ubyte",
                kind: IdxKind::Labels,
                len: TRAIN_LABELS_LEN,
                sha256: labels,
            },
        }
    }

    /// The test split's files.
    pub fn test_files(self) -> SplitFiles {
        let (images, labels) = match self {
            Dataset::Mnist => (
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            ),
            Dataset::FashionMnist => (
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            ),
        };
        SplitFiles {
            images: IdxFile {
                name: "t10k-images-idx3-ubyte",
                kind: IdxKind::Images,
                len: TEST_IMAGES_LEN,
                sha256: images,
            },
            labels: IdxFile {
                name: "t10k-labels-idx1-ubyte",
                kind: IdxKind::Labels,
                len: TEST_LABELS_LEN,
                sha256: labels,
            },
        }
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
