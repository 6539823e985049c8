//! CPython's `random.Random` (MT19937) far enough to reproduce `random.seed(int)` followed by
//! `random.shuffle(list)`, which is how NAS-Bench-201 fixed its architecture order.
//!
//! Only what that order needs is here: seeding from a non-negative integer (`init_by_array` on
//! the integer's 32-bit words), `getrandbits(k)` for `k <= 32`, `_randbelow` by rejection and
//! `shuffle` (Fisher-Yates from the end).

use crate::mt19937::Mt19937;

/// A Mersenne Twister that draws the same numbers as CPython's `random` module.
pub struct CPythonRandom {
    generator: Mt19937,
}

impl CPythonRandom {
    /// Same state as `random.seed(seed)` in CPython 3 for a non-negative integer seed.
    pub fn new(seed: u64) -> Self {
        let mut key: Vec<u32> = Vec::new();
        let mut rest = seed;
        while rest > 0 {
            key.push((rest & 0xffff_ffff) as u32);
            rest >>= 32;
        }
        if key.is_empty() {
            key.push(0);
        }
        CPythonRandom { generator: Mt19937::from_key(&key) }
    }

    /// `genrand_uint32` of the reference implementation.
    pub fn next_u32(&mut self) -> u32 {
        self.generator.next_u32()
    }

    /// `random.getrandbits(k)` for `1 <= k <= 32`.
    pub fn getrandbits(&mut self, k: u32) -> u32 {
        debug_assert!((1..=32).contains(&k));
        self.next_u32() >> (32 - k)
    }

    /// `random._randbelow(n)`: rejection sampling on `n.bit_length()` bits, for `1 <= n < 2^32`.
    pub fn randbelow(&mut self, n: u32) -> u32 {
        let k = 32 - n.leading_zeros();
        loop {
            let r = self.getrandbits(k);
            if r < n {
                return r;
            }
        }
    }

    /// `random.shuffle(items)`.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.randbelow(i as u32 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prerequisites::{Installed, require, test_python};

    /// What a local CPython prints for `code`, as whitespace-separated integers.
    fn cpython_numbers(code: &str) -> Option<Vec<u32>> {
        let python = require(test_python(&["random"]), Installed::ByMakeTest)?;
        let out = std::process::Command::new(python).args(["-c", code]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        Some(String::from_utf8_lossy(&out.stdout).split_whitespace().map(|s| s.parse().unwrap()).collect())
    }

    #[test]
    fn matches_cpython_first_outputs() {
        let mut rng = CPythonRandom::new(88);
        let first: Vec<u32> = (0..3).map(|_| rng.next_u32()).collect();
        let code =
            "import random; random.seed(88); print(' '.join(str(random.getrandbits(32)) for _ in range(3)))";
        let Some(expected) = cpython_numbers(code) else { return };
        assert_eq!(first, expected);
    }

    #[test]
    fn shuffle_matches_cpython() {
        let mut items: Vec<u32> = (0..50).collect();
        CPythonRandom::new(1021).shuffle(&mut items);
        let code = "import random; x=list(range(50)); random.seed(1021); random.shuffle(x); print(' '.join(map(str,x)))";
        let Some(expected) = cpython_numbers(code) else { return };
        assert_eq!(items, expected);
    }
}
