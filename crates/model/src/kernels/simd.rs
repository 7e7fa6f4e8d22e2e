//! Runtime CPU dispatch for the kernels: the same Rust code,
//! compiled three times (AVX-512, AVX2 + FMA, and the portable baseline),
//! with the widest the CPU supports chosen when the engine starts. The
//! binary stays portable and still runs 16 lanes wide where it can.
//!
//! Safety by construction: the paths compiled with extra target features may
//! only run on a CPU that has them. An [`Isa`] can be built only by
//! [`Isa::detect`] (its field is private to this module), which checks every
//! feature that the chosen path enables, and [`dispatch_fma!`] takes an `Isa`.

#![allow(unsafe_code)]

/// An instruction set the kernels may use on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Isa {
    level: Level,
}

/// The three compiled paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// x86-64 AVX-512F, compiled with `avx512f,avx2,fma`.
    Avx512,
    /// x86-64 AVX2, compiled with `avx2,fma`.
    Avx2,
    /// Whatever the build targets (SSE2 on plain x86-64).
    Baseline,
}

impl Level {
    /// Wider paths rank higher.
    fn rank(self) -> u8 {
        match self {
            Self::Baseline => 0,
            Self::Avx2 => 1,
            Self::Avx512 => 2,
        }
    }
}

/// The widest path [`Isa::detect`] may choose, when capped ([`Isa::cap`]).
static CAP: std::sync::OnceLock<Level> = std::sync::OnceLock::new();

impl Isa {
    /// The widest path whose every enabled feature this CPU has, or the
    /// path this process was capped to ([`Isa::cap`]) when that is
    /// narrower.
    pub fn detect() -> Self {
        let widest = Self::widest();
        match CAP.get() {
            Some(&cap) if cap.rank() < widest.level.rank() => Self { level: cap },
            _ => widest,
        }
    }

    /// Caps the path every later [`Isa::detect`] of this process chooses at
    /// the one named (`avx512`, `avx2+fma` or `avx2`, `baseline`), to time
    /// or compare the narrower paths on a wider CPU (`ae bench --kernels`).
    /// Once per process; an unknown name, a path this CPU cannot run, or a
    /// second cap is an error saying so.
    pub fn cap(name: &str) -> Result<(), String> {
        let level = match name {
            "avx512" => Level::Avx512,
            "avx2+fma" | "avx2" => Level::Avx2,
            "baseline" => Level::Baseline,
            other => {
                return Err(format!(
                    "unknown kernel path {other:?}; use avx512, avx2 or baseline"
                ));
            }
        };
        let widest = Self::widest();
        if level.rank() > widest.level.rank() {
            return Err(format!(
                "this CPU cannot run the {name} kernels; its widest path is {}",
                widest.name()
            ));
        }
        CAP.set(level)
            .map_err(|_| "the kernel path was already chosen".to_string())
    }

    /// The widest path whose every enabled feature this CPU has.
    fn widest() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let avx2_fma = has!("avx2") && has!("fma");
            if avx2_fma && has!("avx512f") {
                return Self {
                    level: Level::Avx512,
                };
            }
            if avx2_fma {
                return Self { level: Level::Avx2 };
            }
        }
        Self::baseline()
    }

    /// Every path this CPU can run, widest first, for tests that hold
    /// each to the same results.
    pub fn every_available() -> Vec<Self> {
        let widest = Self::widest().level.rank();
        [Level::Avx512, Level::Avx2, Level::Baseline]
            .into_iter()
            .filter(|level| level.rank() <= widest)
            .map(|level| Self { level })
            .collect()
    }

    /// The portable path, valid on every CPU.
    pub fn baseline() -> Self {
        Self {
            level: Level::Baseline,
        }
    }

    /// Which path this is.
    pub fn level(self) -> Level {
        self.level
    }

    /// `avx512`, `avx2+fma` or `baseline`, as `ae bench` prints it.
    pub fn name(self) -> &'static str {
        match self.level {
            Level::Avx512 => "avx512",
            Level::Avx2 => "avx2+fma",
            Level::Baseline => "baseline",
        }
    }
}

/// Asks the CPU to bring `values` into cache, a 64-byte line at a time; a
/// hint with no effect on any result.
#[inline(always)]
pub fn prefetch<T>(values: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let start = values.as_ptr().cast::<i8>();
        for offset in (0..std::mem::size_of_val(values)).step_by(64) {
            // SAFETY: `prefetch` needs SSE, which every x86-64 CPU has (the
            // target's baseline); it reads nothing and cannot fault,
            // whatever the address (`wrapping_add` stays inside `values`).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = values;
}

/// Bit `j` set where byte `j` of `bytes` is nonzero: four SSE2 compares
/// on x86-64 (every x86-64 CPU has SSE2; the compiler does not find this
/// for a loop over the bytes, and widens them to 64-bit lanes instead),
/// the same bits from a loop elsewhere.
#[inline(always)]
pub fn nonzero_bits(bytes: &[u8; 64]) -> u64 {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_setzero_si128,
        };
        let mut zero_bits = 0u64;
        for (k, sixteen) in bytes.as_chunks::<16>().0.iter().enumerate() {
            // SAFETY: the build enables SSE2 (the cfg above; every x86-64
            // target does), and `loadu` reads exactly the 16 bytes of
            // `sixteen`, at any alignment.
            let zeros = unsafe {
                let v = _mm_loadu_si128(sixteen.as_ptr().cast::<__m128i>());
                _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128()))
            };
            zero_bits |= u64::from(zeros as u16) << (16 * k);
        }
        !zero_bits
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        bytes
            .iter()
            .enumerate()
            .fold(0, |bits, (j, &b)| bits | (u64::from(b != 0) << j))
    }
}

/// `dst[cols × rows] = src[rows × cols]ᵀ` for the first `rows / 8 * 8`
/// rows and `cols / 8 * 8` columns, an 8 × 8 block at a time in AVX
/// registers (eight loads, 24 shuffles, eight stores; the compiler makes
/// 64 scalar moves of the same loop). Returns false, having written
/// nothing, on a path without AVX.
///
/// # Panics
/// If either slice is shorter than `rows × cols` (a caller bug).
pub fn transpose_blocks(isa: Isa, src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) -> bool {
    assert!(src.len() >= rows * cols && dst.len() >= rows * cols);
    #[cfg(target_arch = "x86_64")]
    if isa.level() != Level::Baseline {
        // SAFETY: an `Isa` above the baseline was built by `Isa::detect`
        // on a CPU with AVX2 (which includes AVX); the slices hold
        // `rows × cols` values, checked above.
        unsafe { transpose_blocks_avx(src, rows, cols, dst) };
        return true;
    }
    let _ = (isa, src, dst);
    false
}

/// [`transpose_blocks`] with AVX.
///
/// # Safety
/// The CPU has AVX, and `src` and `dst` hold at least `rows × cols` values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn transpose_blocks_avx(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    use std::arch::x86_64::{
        _mm256_loadu_ps, _mm256_permute2f128_ps, _mm256_shuffle_ps, _mm256_storeu_ps,
        _mm256_unpackhi_ps, _mm256_unpacklo_ps,
    };
    for r0 in (0..rows / 8 * 8).step_by(8) {
        for c0 in (0..cols / 8 * 8).step_by(8) {
            // SAFETY: rows r0..r0 + 8 and columns c0..c0 + 8 are inside the
            // `rows × cols` values of `src`, and their transpose inside `dst`.
            unsafe {
                let row = |k: usize| _mm256_loadu_ps(src.as_ptr().add((r0 + k) * cols + c0));
                let (a0, a1) = (
                    _mm256_unpacklo_ps(row(0), row(1)),
                    _mm256_unpackhi_ps(row(0), row(1)),
                );
                let (a2, a3) = (
                    _mm256_unpacklo_ps(row(2), row(3)),
                    _mm256_unpackhi_ps(row(2), row(3)),
                );
                let (a4, a5) = (
                    _mm256_unpacklo_ps(row(4), row(5)),
                    _mm256_unpackhi_ps(row(4), row(5)),
                );
                let (a6, a7) = (
                    _mm256_unpacklo_ps(row(6), row(7)),
                    _mm256_unpackhi_ps(row(6), row(7)),
                );
                let b0 = _mm256_shuffle_ps::<0x44>(a0, a2);
                let b1 = _mm256_shuffle_ps::<0xEE>(a0, a2);
                let b2 = _mm256_shuffle_ps::<0x44>(a1, a3);
                let b3 = _mm256_shuffle_ps::<0xEE>(a1, a3);
                let b4 = _mm256_shuffle_ps::<0x44>(a4, a6);
                let b5 = _mm256_shuffle_ps::<0xEE>(a4, a6);
                let b6 = _mm256_shuffle_ps::<0x44>(a5, a7);
                let b7 = _mm256_shuffle_ps::<0xEE>(a5, a7);
                let columns = [
                    _mm256_permute2f128_ps::<0x20>(b0, b4),
                    _mm256_permute2f128_ps::<0x20>(b1, b5),
                    _mm256_permute2f128_ps::<0x20>(b2, b6),
                    _mm256_permute2f128_ps::<0x20>(b3, b7),
                    _mm256_permute2f128_ps::<0x31>(b0, b4),
                    _mm256_permute2f128_ps::<0x31>(b1, b5),
                    _mm256_permute2f128_ps::<0x31>(b2, b6),
                    _mm256_permute2f128_ps::<0x31>(b3, b7),
                ];
                for (k, column) in columns.into_iter().enumerate() {
                    _mm256_storeu_ps(dst.as_mut_ptr().add((c0 + k) * rows + r0), column);
                }
            }
        }
    }
}

/// `a · b + c` as a path computes it: one fused multiply-add where the CPU
/// has FMA, a product and a sum elsewhere (`f32::mul_add` without the FMA
/// instructions is a slow library call).
pub trait MulAdd {
    /// `a · b + c`.
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
}

/// With FMA: rounded once.
pub struct Fused;

/// Without FMA: the product rounded, then the sum.
pub struct Plain;

impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

impl MulAdd for Plain {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// Defines `$name(isa, args...)` that runs `$body` compiled for `isa`'s
/// path. The body is generic over `$m: MulAdd` ([`Fused`] on the FMA
/// paths, [`Plain`] on the baseline) and gets the path's [`Level`] as
/// `$level`, a constant after inlining, to pick register blocks that fit
/// the path's registers.
#[macro_export]
macro_rules! dispatch_fma {
    ($(#[$doc:meta])* $vis:vis fn $name:ident<$m:ident>($level:ident $(, $arg:ident: $ty:ty)*) -> $ret:ty $body:block) => {
        $(#[$doc])*
        #[allow(unsafe_code, clippy::too_many_arguments)]
        $vis fn $name(isa: $crate::kernels::simd::Isa $(, $arg: $ty)*) -> $ret {
            // A body that only compares or converts has no use for `$m`.
            #[inline(always)]
            #[allow(clippy::extra_unused_type_parameters)]
            fn body<$m: $crate::kernels::simd::MulAdd>(
                $level: $crate::kernels::simd::Level $(, $arg: $ty)*
            ) -> $ret $body

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx2,fma")]
            fn avx512($($arg: $ty),*) -> $ret {
                body::<$crate::kernels::simd::Fused>($crate::kernels::simd::Level::Avx512 $(, $arg)*)
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2($($arg: $ty),*) -> $ret {
                body::<$crate::kernels::simd::Fused>($crate::kernels::simd::Level::Avx2 $(, $arg)*)
            }

            match isa.level() {
                // SAFETY: only `Isa::detect` builds an `Isa` at this level, and
                // only when the CPU has avx512f, avx2 and fma: every feature
                // `avx512` is compiled with.
                #[cfg(target_arch = "x86_64")]
                $crate::kernels::simd::Level::Avx512 => unsafe { avx512($($arg),*) },
                // SAFETY: likewise, only when the CPU has avx2 and fma.
                #[cfg(target_arch = "x86_64")]
                $crate::kernels::simd::Level::Avx2 => unsafe { avx2($($arg),*) },
                _ => body::<$crate::kernels::simd::Plain>($crate::kernels::simd::Level::Baseline $(, $arg)*),
            }
        }
    };
}

pub use dispatch_fma;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_blocks_transpose_exactly_the_whole_blocks() {
        let (rows, cols) = (19, 26);
        let src: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
        for isa in Isa::every_available() {
            let mut dst = vec![f32::NAN; rows * cols];
            let done = transpose_blocks(isa, &src, rows, cols, &mut dst);
            assert_eq!(done, isa.level() != Level::Baseline, "{}", isa.name());
            for r in 0..rows {
                for c in 0..cols {
                    let got = dst[c * rows + r];
                    if done && r < 16 && c < 24 {
                        assert_eq!(got, src[r * cols + c], "{} ({r}, {c})", isa.name());
                    } else {
                        assert!(got.is_nan(), "{} wrote ({r}, {c})", isa.name());
                    }
                }
            }
        }
    }

    #[test]
    fn detection_names_a_path_this_cpu_can_run() {
        let isa = Isa::detect();
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            match isa.level() {
                Level::Avx512 => assert!(has!("avx512f") && has!("avx2") && has!("fma")),
                Level::Avx2 => assert!(has!("avx2") && has!("fma") && !has!("avx512f")),
                Level::Baseline => assert!(!(has!("avx2") && has!("fma"))),
            }
        }
        assert!(["avx512", "avx2+fma", "baseline"].contains(&isa.name()));
        assert_eq!(Isa::baseline().level(), Level::Baseline);
    }
}
