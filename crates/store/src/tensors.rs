//! safetensors files, written and read as streams.
//!
//! The header is the safetensors crate's own [`Metadata`]; the tensor bytes
//! go straight between the file and the caller's buffers, so a 188 MB split
//! is never held twice in memory.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use safetensors::tensor::{Metadata, TensorInfo};

pub use safetensors::Dtype;

use crate::StoreError;
use crate::pixels::{CompactBuilder, Pixels};

const HEADER_LEN_BYTES: u64 = 8;
const MAX_HEADER: u64 = 100_000_000;

/// One tensor to write: its name, type, shape and a function that writes its
/// little-endian bytes.
pub struct TensorOut<'a> {
    name: &'a str,
    dtype: Dtype,
    shape: Vec<usize>,
    byte_len: usize,
    write: WriteBytes<'a>,
}

/// Writes a tensor's little-endian bytes.
type WriteBytes<'a> = Box<dyn Fn(&mut dyn Write) -> io::Result<()> + 'a>;

impl<'a> TensorOut<'a> {
    /// An f32 tensor of `shape` holding `values`.
    ///
    /// # Panics
    /// If `values` does not have the shape's element count (a caller bug).
    pub fn f32(name: &'a str, shape: Vec<usize>, values: &'a [f32]) -> Self {
        assert_eq!(
            shape.iter().product::<usize>(),
            values.len(),
            "tensor `{name}`: shape and data disagree"
        );
        Self {
            name,
            dtype: Dtype::F32,
            byte_len: values.len() * 4,
            shape,
            write: Box::new(move |out| write_f32_le(out, values)),
        }
    }

    /// A u8 tensor of `shape` holding `values`.
    ///
    /// # Panics
    /// If `values` does not have the shape's element count (a caller bug).
    pub fn u8(name: &'a str, shape: Vec<usize>, values: &'a [u8]) -> Self {
        assert_eq!(
            shape.iter().product::<usize>(),
            values.len(),
            "tensor `{name}`: shape and data disagree"
        );
        Self {
            name,
            dtype: Dtype::U8,
            byte_len: values.len(),
            shape,
            write: Box::new(move |out| out.write_all(values)),
        }
    }

    /// A tensor of `dtype` and `shape` whose bytes are produced on the fly
    /// by `write`, which must write exactly the shape's element count of
    /// little-endian values (e.g. pixels copied or converted image by
    /// image).
    ///
    /// # Panics
    /// If `dtype` is not `F32` or `U8` (a caller bug).
    pub fn streamed(
        name: &'a str,
        dtype: Dtype,
        shape: Vec<usize>,
        write: impl Fn(&mut dyn Write) -> io::Result<()> + 'a,
    ) -> Self {
        let width = match dtype {
            Dtype::F32 => 4,
            Dtype::U8 => 1,
            other => panic!("tensor `{name}`: {other:?} is not written here"),
        };
        Self {
            name,
            dtype,
            byte_len: shape.iter().product::<usize>() * width,
            shape,
            write: Box::new(write),
        }
    }
}

/// Writes f32 values as little-endian bytes in chunks, without a full copy.
pub fn write_f32_le(out: &mut dyn Write, values: &[f32]) -> io::Result<()> {
    if cfg!(target_endian = "little") {
        return out.write_all(bytemuck::cast_slice(values));
    }
    let mut buf = Vec::with_capacity(4096 * 4);
    for chunk in values.chunks(4096) {
        buf.clear();
        buf.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
        out.write_all(&buf)?;
    }
    Ok(())
}

/// Writes `tensors`, in order, as a safetensors file at `path`, atomically.
pub fn write_tensors(path: &Path, tensors: &[TensorOut<'_>]) -> Result<(), StoreError> {
    write_tensors_with_metadata(path, BTreeMap::new(), tensors)
}

/// Writes `tensors`, in order, with `metadata` as the header's
/// `__metadata__` (left out when empty), as a safetensors file at `path`,
/// atomically.
pub fn write_tensors_with_metadata(
    path: &Path,
    metadata: BTreeMap<String, String>,
    tensors: &[TensorOut<'_>],
) -> Result<(), StoreError> {
    let mut offset = 0;
    let infos = tensors
        .iter()
        .map(|t| {
            let info = TensorInfo {
                dtype: t.dtype,
                shape: t.shape.clone(),
                data_offsets: (offset, offset + t.byte_len),
            };
            offset += t.byte_len;
            (t.name.to_string(), info)
        })
        .collect();
    let tensors_err = |source| StoreError::Tensors {
        path: path.to_path_buf(),
        source,
    };
    let json_err = |e| tensors_err(safetensors::SafeTensorError::JsonError(e));
    let tensors_only = Metadata::new(None, infos).map_err(tensors_err)?;
    let mut header = serde_json::to_vec(&tensors_only).map_err(json_err)?;
    if !metadata.is_empty() {
        // The crate keeps `__metadata__` in a HashMap, whose order changes
        // from one process to the next; written here sorted, so that the
        // same metadata gives the same bytes.
        let mut sorted = br#"{"__metadata__":"#.to_vec();
        sorted.extend(serde_json::to_vec(&metadata).map_err(json_err)?);
        if header.len() > 2 {
            sorted.push(b',');
        }
        sorted.extend_from_slice(&header[1..]);
        header = sorted;
    }
    // Pad with spaces so the data starts 8-byte aligned, as the crate does.
    header.resize(header.len().next_multiple_of(8), b' ');
    crate::write_atomic(path, |out| {
        out.write_all(&(header.len() as u64).to_le_bytes())?;
        out.write_all(&header)?;
        for tensor in tensors {
            let mut counted = CountingWriter {
                inner: &mut *out,
                written: 0,
            };
            (tensor.write)(&mut counted)?;
            if counted.written != tensor.byte_len {
                return Err(io::Error::other(format!(
                    "tensor `{}` wrote {} bytes, its shape needs {}",
                    tensor.name, counted.written, tensor.byte_len
                )));
            }
        }
        Ok(())
    })
}

struct CountingWriter<'a> {
    inner: &'a mut dyn Write,
    written: usize,
}

impl Write for CountingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// An open safetensors file whose header has been read and checked; tensors
/// are read one at a time into exactly-sized buffers.
#[derive(Debug)]
pub struct TensorFile {
    path: PathBuf,
    file: File,
    metadata: Metadata,
    data_start: u64,
}

impl TensorFile {
    /// Opens `path` and reads its header; the file's length must match it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let read_err = |source| StoreError::Read {
            path: path.to_path_buf(),
            source,
        };
        let invalid = |reason: String| StoreError::Layout {
            path: path.to_path_buf(),
            problems: vec![reason],
        };
        crate::regular_file(path)?;
        let mut file = File::open(path).map_err(read_err)?;
        let file_len = file.metadata().map_err(read_err)?.len();
        let mut len_bytes = [0u8; 8];
        if file_len < HEADER_LEN_BYTES {
            return Err(invalid(format!(
                "it is {file_len} bytes long, too short for a safetensors header"
            )));
        }
        file.read_exact(&mut len_bytes).map_err(read_err)?;
        let header_len = u64::from_le_bytes(len_bytes);
        if header_len > MAX_HEADER || HEADER_LEN_BYTES + header_len > file_len {
            return Err(invalid(format!(
                "its header length {header_len} does not fit the file ({file_len} bytes)"
            )));
        }
        let mut header = vec![0u8; header_len as usize];
        file.read_exact(&mut header).map_err(read_err)?;
        let metadata: Metadata =
            serde_json::from_slice(&header).map_err(|e| StoreError::Tensors {
                path: path.to_path_buf(),
                source: safetensors::SafeTensorError::InvalidHeaderDeserialization(e),
            })?;
        let data_start = HEADER_LEN_BYTES + header_len;
        let expected_len = data_start + metadata.data_len() as u64;
        if file_len != expected_len {
            return Err(invalid(format!(
                "it is {file_len} bytes long but its header describes {expected_len} (truncated or padded)"
            )));
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
            metadata,
            data_start,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The header's whole `__metadata__` (empty when it has none).
    pub fn metadata_map(&self) -> BTreeMap<String, String> {
        self.metadata
            .metadata()
            .as_ref()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// The value of `key` in the header's `__metadata__`, if present.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata
            .metadata()
            .as_ref()
            .and_then(|m| m.get(key))
            .map(String::as_str)
    }

    /// The element type of tensor `name`, if present.
    pub fn dtype(&self, name: &str) -> Option<Dtype> {
        self.metadata.info(name).map(|info| info.dtype)
    }

    /// The shape of tensor `name`, if present.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.metadata.info(name).map(|info| info.shape.as_slice())
    }

    /// Checks that the file holds exactly the `expected` tensors, each with
    /// its dtype and shape; the error lists every missing, extra, mistyped or
    /// misshaped tensor.
    pub fn expect_exactly(&self, expected: &[(&str, Dtype, &[usize])]) -> Result<(), StoreError> {
        let mut problems = Vec::new();
        let mut extra: Vec<String> = self
            .metadata
            .tensors()
            .into_keys()
            .filter(|name| !expected.iter().any(|(e, _, _)| e == name))
            .collect();
        extra.sort();
        problems.extend(
            extra
                .into_iter()
                .map(|name| format!("unexpected tensor `{name}`")),
        );
        for &(name, dtype, shape) in expected {
            match self.metadata.info(name) {
                None => problems.push(format!("tensor `{name}` is missing")),
                Some(info) => {
                    if info.dtype != dtype {
                        problems.push(format!("`{name}` is {:?}, expected {dtype:?}", info.dtype));
                    }
                    if info.shape != shape {
                        problems.push(format!(
                            "`{name}` has shape {:?}, expected {shape:?}",
                            info.shape
                        ));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Layout {
                path: self.path.clone(),
                problems,
            })
        }
    }

    /// Reads f32 tensor `name` (call [`TensorFile::expect_exactly`] first).
    pub fn read_f32(&mut self, name: &str) -> Result<Vec<f32>, StoreError> {
        let len = self.byte_range(name, Dtype::F32)?.1 / 4;
        let mut values = vec![0f32; len];
        self.read_into(name, bytemuck::cast_slice_mut(&mut values))?;
        if cfg!(target_endian = "big") {
            for v in &mut values {
                *v = f32::from_le_bytes(v.to_ne_bytes());
            }
        }
        Ok(values)
    }

    /// Reads f32 tensor `name` as [`Pixels`]: bytes when every value is
    /// `p / 255`, else floats; a chunk at a time, so the floats of an 8-bit
    /// split are never all in memory (call [`TensorFile::expect_exactly`]
    /// first).
    pub fn read_f32_compact(&mut self, name: &str) -> Result<Pixels, StoreError> {
        const CHUNK: usize = 1 << 16;
        let values = self.byte_range(name, Dtype::F32)?.1 / 4;
        let mut builder = CompactBuilder::with_capacity(values);
        self.for_each_f32_chunk(name, CHUNK, |values| builder.push(values))?;
        Ok(builder.finish())
    }

    /// Hands f32 tensor `name` to `f` in order, `chunk` values at a time
    /// (the last chunk may be shorter), through one buffer of that size, so
    /// that the tensor is never all in memory (call
    /// [`TensorFile::expect_exactly`] first).
    pub fn for_each_f32_chunk(
        &mut self,
        name: &str,
        chunk: usize,
        mut f: impl FnMut(&[f32]),
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let (mut reader, bytes) = self.reader_at(name, Dtype::F32)?;
        let mut left = bytes / 4;
        let mut buffer = vec![0f32; chunk.max(1).min(left)];
        while left > 0 {
            let values = &mut buffer[..chunk.max(1).min(left)];
            reader
                .read_exact(bytemuck::cast_slice_mut(values))
                .map_err(|source| StoreError::Read {
                    path: path.clone(),
                    source,
                })?;
            if cfg!(target_endian = "big") {
                for v in values.iter_mut() {
                    *v = f32::from_le_bytes(v.to_ne_bytes());
                }
            }
            f(values);
            left -= values.len();
        }
        Ok(())
    }

    /// Reads u8 tensor `name` (call [`TensorFile::expect_exactly`] first).
    pub fn read_u8(&mut self, name: &str) -> Result<Vec<u8>, StoreError> {
        let len = self.byte_range(name, Dtype::U8)?.1;
        let mut values = vec![0u8; len];
        self.read_into(name, &mut values)?;
        Ok(values)
    }

    fn byte_range(&self, name: &str, dtype: Dtype) -> Result<(usize, usize), StoreError> {
        match self.metadata.info(name) {
            Some(info) if info.dtype == dtype => {
                let (start, end) = info.data_offsets;
                Ok((start, end - start))
            }
            _ => Err(StoreError::Layout {
                path: self.path.clone(),
                problems: vec![format!("no {dtype:?} tensor `{name}`")],
            }),
        }
    }

    fn read_into(&mut self, name: &str, buf: &mut [u8]) -> Result<(), StoreError> {
        let dtype = self.metadata.info(name).map_or(Dtype::U8, |i| i.dtype);
        let path = self.path.clone();
        let (mut reader, _) = self.reader_at(name, dtype)?;
        reader
            .read_exact(buf)
            .map_err(|source| StoreError::Read { path, source })
    }

    /// A buffered reader at the first byte of tensor `name`, and how many
    /// bytes it has.
    fn reader_at(
        &mut self,
        name: &str,
        dtype: Dtype,
    ) -> Result<(BufReader<&File>, usize), StoreError> {
        let (start, len) = self.byte_range(name, dtype)?;
        self.file
            .seek(SeekFrom::Start(self.data_start + start as u64))
            .map_err(|source| StoreError::Read {
                path: self.path.clone(),
                source,
            })?;
        Ok((BufReader::with_capacity(1 << 20, &self.file), len))
    }
}

#[cfg(test)]
mod metadata_tests {
    use super::*;

    /// Regression: the safetensors crate wrote `__metadata__` in HashMap
    /// order, so the same detector came out as different bytes each run.
    #[test]
    fn metadata_is_written_sorted_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let metadata: BTreeMap<String, String> = (0..20)
            .map(|i| (format!("key{i:02}"), format!("value {i}")))
            .collect();
        let values = [1.0f32, 2.0];
        let write = |name: &str| {
            let path = dir.path().join(name);
            write_tensors_with_metadata(
                &path,
                metadata.clone(),
                &[TensorOut::f32("x", vec![2], &values)],
            )
            .expect("write");
            path
        };
        let first = std::fs::read(write("a.safetensors")).expect("read");
        for name in ["b", "c", "d"] {
            let again = std::fs::read(write(name)).expect("read");
            assert_eq!(again, first, "the same metadata, the same bytes");
        }
        let file = TensorFile::open(&dir.path().join("a.safetensors")).expect("open");
        assert_eq!(file.metadata_map(), metadata);
        assert_eq!(file.shape("x"), Some(&[2][..]));
        let header = String::from_utf8_lossy(&first[8..]);
        assert!(
            header.starts_with(r#"{"__metadata__":{"key00":"value 0","key01""#),
            "{header}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_we_write_are_read_by_the_safetensors_crate_and_by_us() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.safetensors");
        let weights = [1.5f32, -2.0, 0.25, 8.0, 0.0, 1e-7];
        let labels = [3u8, 1, 4];
        write_tensors(
            &path,
            &[
                TensorOut::f32("w", vec![2, 3], &weights),
                TensorOut::u8("labels", vec![3], &labels),
                TensorOut::streamed("halves", Dtype::F32, vec![3], |out| {
                    write_f32_le(out, &[0.5, 1.5, 2.5])
                }),
            ],
        )
        .expect("write");

        let bytes = std::fs::read(&path).expect("read");
        let st = safetensors::SafeTensors::deserialize(&bytes).expect("the crate reads it");
        assert_eq!(st.tensor("w").expect("w").shape(), [2, 3]);
        assert_eq!(st.tensor("labels").expect("labels").data(), labels);

        let mut file = TensorFile::open(&path).expect("open");
        file.expect_exactly(&[
            ("w", Dtype::F32, &[2, 3]),
            ("labels", Dtype::U8, &[3]),
            ("halves", Dtype::F32, &[3]),
        ])
        .expect("layout");
        assert_eq!(file.read_f32("w").expect("w"), weights);
        assert_eq!(file.read_u8("labels").expect("labels"), labels);
        assert_eq!(file.read_f32("halves").expect("halves"), [0.5, 1.5, 2.5]);
    }

    #[test]
    fn a_stream_of_the_wrong_length_fails_and_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.safetensors");
        let err = write_tensors(
            &path,
            &[TensorOut::streamed("x", Dtype::F32, vec![4], |out| {
                write_f32_le(out, &[1.0])
            })],
        )
        .expect_err("short stream");
        assert!(err.to_string().contains("t.safetensors"), "{err}");
        assert!(!path.exists());
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 0);
    }

    #[test]
    fn every_layout_problem_is_listed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.safetensors");
        let values = [0f32; 6];
        write_tensors(
            &path,
            &[
                TensorOut::f32("a", vec![2, 3], &values),
                TensorOut::u8("b", vec![2], &[1, 2]),
            ],
        )
        .expect("write");
        let file = TensorFile::open(&path).expect("open");
        let err = file
            .expect_exactly(&[
                ("a", Dtype::F32, &[3, 2]),
                ("b", Dtype::F32, &[2]),
                ("c", Dtype::F32, &[1]),
            ])
            .expect_err("mismatch")
            .to_string();
        for needle in [
            "`a` has shape [2, 3], expected [3, 2]",
            "`b` is U8, expected F32",
            "tensor `c` is missing",
        ] {
            assert!(err.contains(needle), "{needle}: {err}");
        }
        let file_extra = file
            .expect_exactly(&[("a", Dtype::F32, &[2, 3])])
            .expect_err("extra")
            .to_string();
        assert!(file_extra.contains("unexpected tensor `b`"), "{file_extra}");
    }

    #[test]
    fn truncated_and_junk_files_are_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.safetensors");
        let values = [0f32; 6];
        write_tensors(&path, &[TensorOut::f32("a", vec![6], &values)]).expect("write");
        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&path, &bytes[..bytes.len() - 4]).expect("truncate");
        let err = TensorFile::open(&path).expect_err("truncated").to_string();
        assert!(err.contains("truncated"), "{err}");
        std::fs::write(&path, b"hello").expect("junk");
        assert!(TensorFile::open(&path).is_err());
        std::fs::write(&path, [255u8; 16]).expect("junk");
        assert!(TensorFile::open(&path).is_err());
    }
}
