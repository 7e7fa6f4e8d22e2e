//! A safe front for matrixmultiply's `sgemm`: strided matrix views whose
//! bounds are checked before the one `unsafe` call.

#![allow(unsafe_code)]

/// A read-only matrix over a slice: element `(r, c)` is at `r * rs + c * cs`.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

/// A writable matrix over a slice, laid out like [`View`].
#[derive(Debug)]
pub struct ViewMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> View<'a> {
    /// The row-major `rows × cols` matrix at the start of `data`.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose (no copy).
    pub fn t(self) -> Self {
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
    pub fn rows(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
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
/// lies inside a slice of `len` elements.
fn check_bounds(len: usize, rows: usize, cols: usize, rs: usize, cs: usize) {
    if rows > 0 && cols > 0 {
        let last = (rows - 1) * rs + (cols - 1) * cs;
        assert!(
            last < len,
            "matrix view out of bounds: element {last} of {len}"
        );
    }
}

/// `c = alpha · a · b + beta · c`; with `beta == 0` the old `c` is not read.
///
/// # Panics
/// If the shapes do not chain or a view reaches past its slice.
pub fn gemm(alpha: f32, a: View<'_>, b: View<'_>, beta: f32, c: ViewMut<'_>) {
    assert_eq!(a.cols, b.rows, "inner dimensions differ");
    assert_eq!((c.rows, c.cols), (a.rows, b.cols), "output shape differs");
    check_bounds(a.data.len(), a.rows, a.cols, a.rs, a.cs);
    check_bounds(b.data.len(), b.rows, b.cols, b.rs, b.cs);
    check_bounds(c.data.len(), c.rows, c.cols, c.rs, c.cs);
    if c.rows == 0 || c.cols == 0 {
        return;
    }
    // SAFETY: every element each view can address was checked to lie inside
    // its slice just above; `c` is a unique borrow, so it aliases neither `a`
    // nor `b`; strides fit in isize because they index slices that exist.
    unsafe {
        matrixmultiply::sgemm(
            a.rows,
            a.cols,
            b.cols,
            alpha,
            a.data.as_ptr(),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr(),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.data.as_mut_ptr(),
            c.rs as isize,
            c.cs as isize,
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
