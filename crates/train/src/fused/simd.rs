//! Runtime CPU dispatch for the element-wise passes: the same Rust code,
//! compiled three times (AVX-512, AVX2 + FMA, and the portable baseline),
//! with the widest the CPU supports chosen when the engine starts. The
//! binary stays portable and still runs 16 lanes wide where it can.

#![allow(unsafe_code)]

/// The instruction set the element-wise passes run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// x86-64 AVX-512F.
    Avx512,
    /// x86-64 AVX2 with FMA.
    Avx2,
    /// Whatever the build targets (SSE2 on plain x86-64).
    Baseline,
}

impl Isa {
    /// The widest instruction set this CPU supports.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Isa::Avx2;
            }
        }
        Isa::Baseline
    }
}

/// Defines `$name(isa, args...)` that runs `$body` compiled for `isa`.
macro_rules! dispatch {
    ($(#[$doc:meta])* pub fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty $body:block) => {
        $(#[$doc])*
        #[allow(unsafe_code)]
        pub fn $name(isa: $crate::fused::simd::Isa, $($arg: $ty),*) -> $ret {
            #[inline(always)]
            fn body($($arg: $ty),*) -> $ret $body

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx2,fma")]
            fn avx512($($arg: $ty),*) -> $ret { body($($arg),*) }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2($($arg: $ty),*) -> $ret { body($($arg),*) }

            match isa {
                // SAFETY: `Isa::detect` returns these only when the CPU has the features.
                #[cfg(target_arch = "x86_64")]
                $crate::fused::simd::Isa::Avx512 => unsafe { avx512($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                $crate::fused::simd::Isa::Avx2 => unsafe { avx2($($arg),*) },
                _ => body($($arg),*),
            }
        }
    };
}

pub(crate) use dispatch;
