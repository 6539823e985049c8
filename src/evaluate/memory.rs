//! Running out of device memory: the one place that turns it into a smaller batch.

use crate::{Error, Result};

/// Whether `error` is a device (or host) allocation failure that a smaller batch may avoid.
pub fn is_out_of_memory(error: &Error) -> bool {
    error.to_string().to_lowercase().contains("out of memory")
}

/// Runs `work` with `batch_size` images per batch, halving the batch after each out-of-memory
/// error until one image per batch; other errors, and running out of memory at one image, end it.
pub fn halving_batch_on_oom<T>(batch_size: usize, mut work: impl FnMut(usize) -> Result<T>) -> Result<T> {
    let mut batch = batch_size.max(1);
    loop {
        match work(batch) {
            Err(e) if is_out_of_memory(&e) && batch > 1 => batch /= 2,
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_memory_halves_the_batch_and_other_errors_end_it() {
        let mut tried = Vec::new();
        let result = halving_batch_on_oom(100, |batch| {
            tried.push(batch);
            if batch > 20 { Err(Error::Internal("CUDA out of memory".into())) } else { Ok(batch) }
        });
        assert_eq!(result.unwrap(), 12);
        assert_eq!(tried, vec![100, 50, 25, 12]);
        let mut calls = 0;
        let err = halving_batch_on_oom(8, |_| -> Result<()> {
            calls += 1;
            Err(Error::input("label 7 is out of range"))
        })
        .unwrap_err();
        assert_eq!((calls, err.exit_code()), (1, 2));
        let always =
            halving_batch_on_oom(4, |_| -> Result<()> { Err(Error::Internal("out of memory".into())) });
        assert!(is_out_of_memory(&always.unwrap_err()));
    }
}
