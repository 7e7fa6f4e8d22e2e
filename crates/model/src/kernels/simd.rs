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

/// Asks the CPU to bring `bytes` into cache, a line at a time; a hint
/// with no effect on any result.
#[inline(always)]
pub fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(64) {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: `prefetch` needs SSE, which every x86-64 CPU has (the
        // target's baseline); it reads nothing and cannot fault, whatever
        // the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
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
