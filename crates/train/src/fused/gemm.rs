//! A safe front for matrixmultiply's `sgemm`: strided matrix views whose
//! bounds are checked, in overflow-checked arithmetic, before the one
//! `unsafe` call.

#![allow(unsafe_code)]

/// A read-only matrix over a slice: element `(r, c)` is at `r * rs + c * cs`.
#[derive(Debug, Clone, Copy)]
pub(super) struct View<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

/// A writable matrix over a slice, laid out like [`View`].
#[derive(Debug)]
pub(super) struct ViewMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> View<'a> {
    /// The row-major `rows × cols` matrix at the start of `data`.
    pub(super) fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose (no copy).
    pub(super) fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }
}

impl<'a> ViewMut<'a> {
    /// The row-major `rows × cols` matrix at the start of `data`.
    pub(super) fn rows(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }
}

/// Panics unless every element of a `rows × cols` view with these strides
/// lies inside a slice of `len` elements. The offset of the last element is
/// computed with checked arithmetic: an offset too large for `usize` is out
/// of bounds too, not a wrapped-around small number.
fn check_bounds(len: usize, rows: usize, cols: usize, rs: usize, cs: usize) {
    if rows == 0 || cols == 0 {
        return;
    }
    let last = (rows - 1)
        .checked_mul(rs)
        .and_then(|down| (cols - 1).checked_mul(cs)?.checked_add(down));
    match last {
        Some(last) if last < len => {}
        _ => panic!(
            "matrix view out of bounds: {rows} × {cols} with strides ({rs}, {cs}) over {len} elements"
        ),
    }
}

/// A stride as the signed offset `sgemm` takes.
fn signed(stride: usize) -> isize {
    isize::try_from(stride).expect("a stride within a slice fits in isize")
}

/// `c = alpha · a · b + beta · c`; with `beta == 0` the old `c` is not read.
///
/// # Panics
/// If the shapes do not chain or a view reaches past its slice.
pub(super) fn gemm(alpha: f32, a: View<'_>, b: View<'_>, beta: f32, c: ViewMut<'_>) {
    assert_eq!(a.cols, b.rows, "inner dimensions differ");
    assert_eq!((c.rows, c.cols), (a.rows, b.cols), "output shape differs");
    check_bounds(a.data.len(), a.rows, a.cols, a.rs, a.cs);
    check_bounds(b.data.len(), b.rows, b.cols, b.rs, b.cs);
    check_bounds(c.data.len(), c.rows, c.cols, c.rs, c.cs);
    if c.rows == 0 || c.cols == 0 {
        return;
    }
    let (a_rs, a_cs, b_rs, b_cs) = (signed(a.rs), signed(a.cs), signed(b.rs), signed(b.cs));
    let (c_rs, c_cs) = (signed(c.rs), signed(c.cs));
    // SAFETY: every element each view can address was checked to lie inside
    // its slice just above (with overflow-checked arithmetic), and the strides
    // were converted to isize without wrapping; `c` is a unique borrow, so it
    // aliases neither `a` nor `b`.
    unsafe {
        matrixmultiply::sgemm(
            a.rows,
            a.cols,
            b.cols,
            alpha,
            a.data.as_ptr(),
            a_rs,
            a_cs,
            b.data.as_ptr(),
            b_rs,
            b_cs,
            beta,
            c.data.as_mut_ptr(),
            c_rs,
            c_cs,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        (0..m * n)
            .map(|idx| {
                (0..k)
                    .map(|p| a[idx / n * k + p] * b[p * n + idx % n])
                    .sum()
            })
            .collect()
    }

    #[test]
    fn multiplies_plain_and_transposed_views() {
        let (m, k, n) = (3, 5, 4);
        let a: Vec<f32> = (0..m * k).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32 - 2.0).collect();
        let mut c = vec![f32::NAN; m * n];
        gemm(
            1.0,
            View::rows(&a, m, k),
            View::rows(&b, k, n),
            0.0,
            ViewMut::rows(&mut c, m, n),
        );
        assert_eq!(c, naive(&a, &b, m, k, n));

        // (bᵀ aᵀ) = (a b)ᵀ, with both operands transposed views.
        let mut ct = vec![0.0; n * m];
        gemm(
            1.0,
            View::rows(&b, k, n).t(),
            View::rows(&a, m, k).t(),
            0.0,
            ViewMut::rows(&mut ct, n, m),
        );
        for i in 0..m {
            for j in 0..n {
                assert_eq!(ct[j * m + i], c[i * n + j]);
            }
        }
    }

    #[test]
    fn bounds_that_overflow_are_out_of_bounds() {
        check_bounds(10, 2, 5, 5, 1);
        let overflowing =
            std::panic::catch_unwind(|| check_bounds(10, 3, 1, usize::MAX / 2 + 1, 1));
        assert!(overflowing.is_err(), "a wrapped offset is not a small one");
        let past = std::panic::catch_unwind(|| check_bounds(10, 2, 6, 5, 1));
        assert!(past.is_err());
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn a_view_past_its_slice_panics_before_any_access() {
        let a = vec![0.0; 5];
        let mut c = vec![0.0; 4];
        gemm(
            1.0,
            View::rows(&a, 2, 3),
            View::rows(&a, 3, 2),
            0.0,
            ViewMut::rows(&mut c, 2, 2),
        );
    }
}
