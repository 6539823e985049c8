//! Eight f32 lanes for the surrogate's training loop: plain arrays on any machine
//! ([`Portable`]), or one AVX register where the CPU has AVX2 and FMA ([`Fma`]). Every operation
//! is element-wise and IEEE-exact, multiply-adds fused in both, so both round identically and a
//! network trains to the same bits on every machine.
//!
//! A [`Kit`] value is the licence to use its lanes: [`Fma::detect`] hands one out only on a CPU
//! that has the instructions, which is what makes its operations safe to call.

pub(super) const LANES: usize = 8;

pub(super) trait Kit: Copy {
    type V: Copy;
    fn splat(self, x: f32) -> Self::V;
    fn load(self, from: &[f32; LANES]) -> Self::V;
    fn store(self, value: Self::V, to: &mut [f32; LANES]);
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a * b + c`, rounded once.
    fn mul_add(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    fn div(self, a: Self::V, b: Self::V) -> Self::V;
    fn sqrt(self, a: Self::V) -> Self::V;
    /// Each lane of `a` where the same lane of `gate` is above zero, else zero.
    fn gated(self, a: Self::V, gate: Self::V) -> Self::V;
}

#[derive(Clone, Copy)]
pub(super) struct Portable;

impl Kit for Portable {
    type V = [f32; LANES];

    #[inline(always)]
    fn splat(self, x: f32) -> Self::V {
        [x; LANES]
    }

    #[inline(always)]
    fn load(self, from: &[f32; LANES]) -> Self::V {
        *from
    }

    #[inline(always)]
    fn store(self, value: Self::V, to: &mut [f32; LANES]) {
        *to = value;
    }

    #[inline(always)]
    fn add(self, a: Self::V, b: Self::V) -> Self::V {
        std::array::from_fn(|k| a[k] + b[k])
    }

    #[inline(always)]
    fn mul(self, a: Self::V, b: Self::V) -> Self::V {
        std::array::from_fn(|k| a[k] * b[k])
    }

    #[inline(always)]
    fn mul_add(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        std::array::from_fn(|k| a[k].mul_add(b[k], c[k]))
    }

    #[inline(always)]
    fn div(self, a: Self::V, b: Self::V) -> Self::V {
        std::array::from_fn(|k| a[k] / b[k])
    }

    #[inline(always)]
    fn sqrt(self, a: Self::V) -> Self::V {
        std::array::from_fn(|k| a[k].sqrt())
    }

    #[inline(always)]
    fn gated(self, a: Self::V, gate: Self::V) -> Self::V {
        std::array::from_fn(|k| if gate[k] > 0.0 { a[k] } else { 0.0 })
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) use fma::Fma;

#[cfg(target_arch = "x86_64")]
mod fma {
    use std::arch::x86_64::{
        __m256, _CMP_GT_OQ, _mm256_add_ps, _mm256_and_ps, _mm256_cmp_ps, _mm256_div_ps, _mm256_fmadd_ps,
        _mm256_loadu_ps, _mm256_mul_ps, _mm256_set1_ps, _mm256_setzero_ps, _mm256_sqrt_ps, _mm256_storeu_ps,
    };

    use super::{Kit, LANES};

    /// AVX2 and FMA lanes. Only [`Fma::detect`] makes one, on a CPU that has both.
    #[derive(Clone, Copy)]
    pub(in super::super) struct Fma(());

    impl Fma {
        pub(in super::super) fn detect() -> Option<Fma> {
            (is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")).then_some(Fma(()))
        }
    }

    // SAFETY (every `unsafe` below): an `Fma` exists only where the CPU has AVX2 and FMA, and
    // the loads and stores go through references to exactly eight f32.
    impl Kit for Fma {
        type V = __m256;

        #[inline(always)]
        fn splat(self, x: f32) -> __m256 {
            unsafe { _mm256_set1_ps(x) }
        }

        #[inline(always)]
        fn load(self, from: &[f32; LANES]) -> __m256 {
            unsafe { _mm256_loadu_ps(from.as_ptr()) }
        }

        #[inline(always)]
        fn store(self, value: __m256, to: &mut [f32; LANES]) {
            unsafe { _mm256_storeu_ps(to.as_mut_ptr(), value) }
        }

        #[inline(always)]
        fn add(self, a: __m256, b: __m256) -> __m256 {
            unsafe { _mm256_add_ps(a, b) }
        }

        #[inline(always)]
        fn mul(self, a: __m256, b: __m256) -> __m256 {
            unsafe { _mm256_mul_ps(a, b) }
        }

        #[inline(always)]
        fn mul_add(self, a: __m256, b: __m256, c: __m256) -> __m256 {
            unsafe { _mm256_fmadd_ps(a, b, c) }
        }

        #[inline(always)]
        fn div(self, a: __m256, b: __m256) -> __m256 {
            unsafe { _mm256_div_ps(a, b) }
        }

        #[inline(always)]
        fn sqrt(self, a: __m256) -> __m256 {
            unsafe { _mm256_sqrt_ps(a) }
        }

        #[inline(always)]
        fn gated(self, a: __m256, gate: __m256) -> __m256 {
            unsafe { _mm256_and_ps(a, _mm256_cmp_ps::<_CMP_GT_OQ>(gate, _mm256_setzero_ps())) }
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// Values that round differently when a multiply-add is not fused, plus zeros of both signs,
    /// a subnormal and a NaN for the gate.
    #[test]
    fn both_kits_give_the_same_bits() {
        let found = Fma::detect()
            .ok_or_else(|| "this CPU has no AVX2 and FMA: only the portable lanes run here".to_string());
        let Some(fma) = crate::prerequisites::require(found, crate::prerequisites::Installed::Elsewhere)
        else {
            return;
        };
        let a = [1.0 + f32::EPSILON, -3.5, 0.0, -0.0, 1e-40, 7.25, 2.0, f32::NAN];
        let b = [1.0 - f32::EPSILON, 0.1, 5.0, 2.0, 3.0, -0.3, 1e-3, 1.0];
        let c = [-1.0, 0.7, -0.0, 0.0, 1e-38, 9.0, 4.0, 2.0];
        let bits = |v: [f32; LANES]| v.map(f32::to_bits);
        let via_fma = |f: &dyn Fn(Fma, Triple) -> std::arch::x86_64::__m256| {
            let mut out = [0.0; LANES];
            fma.store(f(fma, (fma.load(&a), fma.load(&b), fma.load(&c))), &mut out);
            out
        };
        let p = Portable;
        assert_eq!(bits(p.mul_add(a, b, c)), bits(via_fma(&|k, (x, y, z)| k.mul_add(x, y, z))));
        assert_ne!(
            bits(p.mul_add(a, b, c)),
            bits(p.add(p.mul(a, b), c)),
            "the inputs do not tell fused from unfused"
        );
        assert_eq!(bits(p.add(a, c)), bits(via_fma(&|k, (x, _, z)| k.add(x, z))));
        assert_eq!(bits(p.mul(a, b)), bits(via_fma(&|k, (x, y, _)| k.mul(x, y))));
        assert_eq!(bits(p.div(a, b)), bits(via_fma(&|k, (x, y, _)| k.div(x, y))));
        assert_eq!(bits(p.sqrt(b)), bits(via_fma(&|k, (_, y, _)| k.sqrt(y))));
        assert_eq!(bits(p.gated(b, a)), bits(via_fma(&|k, (x, y, _)| k.gated(y, x))));
        assert_eq!(bits(p.splat(0.3)), bits(via_fma(&|k, _| k.splat(0.3))));
    }

    type Triple = (std::arch::x86_64::__m256, std::arch::x86_64::__m256, std::arch::x86_64::__m256);
}
