//! Small tensor helpers the attacks share.

use tch::Tensor;

use crate::Result;

/// A copy of `t` in new storage, for tensors updated in place.
pub(crate) fn duplicate(t: &Tensor) -> Result<Tensor> {
    let mut out = t.f_empty_like()?;
    out.f_copy_(t)?;
    Ok(out)
}

/// `target[index] = source` along dimension 0, in place.
pub(crate) fn put_rows(target: &mut Tensor, index: &Tensor, source: &Tensor) -> Result<()> {
    // libtorch returns another handle to `target` itself.
    let _same = target.f_index_copy_(0, index, source)?;
    Ok(())
}
