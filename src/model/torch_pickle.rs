//! PyTorch tensors inside Python pickles, as NATS-Bench's archive holds them: pickled without
//! `torch.save`, each tensor is `torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
//! ...)` and each storage `torch.storage._load_from_bytes(b)`, where `b` is a legacy (non-zip)
//! `torch.save` stream of that one storage.

use std::rc::Rc;

use crate::pickle::{self, Value};

/// A storage's raw elements.
#[derive(Debug)]
pub struct Storage {
    pub dtype: DType,
    pub bytes: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    F64,
    F16,
    I64,
    I32,
    U8,
    Bool,
}

impl DType {
    fn of_storage(class: &str) -> Option<DType> {
        Some(match class.rsplit('.').next()? {
            "FloatStorage" => DType::F32,
            "DoubleStorage" => DType::F64,
            "HalfStorage" => DType::F16,
            "LongStorage" => DType::I64,
            "IntStorage" => DType::I32,
            "ByteStorage" => DType::U8,
            "BoolStorage" => DType::Bool,
            _ => return None,
        })
    }

    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 => 2,
            DType::U8 | DType::Bool => 1,
        }
    }
}

/// A strided view of a storage, as `torch._utils._rebuild_tensor_v2` makes it.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub storage: Rc<Storage>,
    pub offset: usize,
    pub shape: Vec<usize>,
    pub stride: Vec<usize>,
}

impl Tensor {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The elements in row-major order as float32, or why not (an index past the storage, an
    /// element type that is not floating point).
    pub fn to_f32(&self) -> Result<Vec<f32>, String> {
        let size = self.storage.dtype.size();
        let available = self.storage.bytes.len() / size;
        let mut out = Vec::with_capacity(self.numel());
        let mut position = vec![0usize; self.shape.len()];
        for _ in 0..self.numel() {
            let element = self.offset + position.iter().zip(&self.stride).map(|(p, s)| p * s).sum::<usize>();
            if element >= available {
                return Err(format!("element {element} lies past the storage's {available}"));
            }
            let b = &self.storage.bytes[element * size..(element + 1) * size];
            out.push(match self.storage.dtype {
                DType::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                DType::F64 => f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32,
                DType::F16 => half_to_f32(u16::from_le_bytes([b[0], b[1]])),
                other => return Err(format!("{other:?} elements where weights are floating point")),
            });
            for axis in (0..position.len()).rev() {
                position[axis] += 1;
                if position[axis] < self.shape[axis] {
                    break;
                }
                position[axis] = 0;
            }
        }
        Ok(out)
    }
}

fn half_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exponent = u32::from((h >> 10) & 0x1f);
    let mantissa = u32::from(h & 0x3ff);
    let bits = match (exponent, mantissa) {
        (0, 0) => sign,
        (0, m) => {
            let value = m as f32 * 2f32.powi(-24);
            return if sign != 0 { -value } else { value };
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// The tensor a pickled value rebuilds, or why it is none.
pub fn tensor_of(value: &Value) -> Result<Tensor, String> {
    let Value::Object(object) = value else { return Err("not a tensor".into()) };
    match object.callable_name() {
        Some(("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor")) => {}
        Some(("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state")) => {
            return tensor_of(object.args.first().ok_or("a parameter without its tensor")?);
        }
        _ => return Err("not a tensor".into()),
    }
    let args = &object.args;
    let storage = match args.first() {
        Some(Value::Object(s)) if s.callable_name() == Some(("torch.storage", "_load_from_bytes")) => {
            match s.args.first() {
                Some(Value::Bytes(bytes)) => legacy_storage(bytes)?,
                _ => return Err("_load_from_bytes without its bytes".into()),
            }
        }
        _ => return Err("a tensor rebuilt from something that is not a pickled storage".into()),
    };
    let number = |v: &Value| v.as_int().and_then(|i| usize::try_from(i).ok());
    let offset = args.get(1).and_then(number).ok_or("a tensor without its storage offset")?;
    let list = |i: usize, what: &str| -> Result<Vec<usize>, String> {
        let items =
            args.get(i).and_then(Value::items).ok_or_else(|| format!("a tensor without its {what}"))?;
        items.iter().map(|v| number(v).ok_or_else(|| format!("a tensor's {what} entry"))).collect()
    };
    let shape = list(2, "size")?;
    let stride = list(3, "stride")?;
    if shape.len() != stride.len() {
        return Err("a tensor whose size and stride differ in length".into());
    }
    Ok(Tensor { storage: Rc::new(storage), offset, shape, stride })
}

/// The storage of a legacy `torch.save` stream: magic number, protocol version and system
/// information as three pickles, then the object pickled with persistent ids for its storages,
/// the list of storage keys, and for each key its element count (int64) and raw elements.
fn legacy_storage(bytes: &[u8]) -> Result<Storage, String> {
    // 0x1950a86a20f9469cfc6c, little-endian, as pickle writes the long.
    const MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
    let mut no_ids = |_| Err("a persistent id outside the stream's object".to_string());
    let (magic, at) = pickle::read_at(bytes, 0, &mut no_ids)?;
    if !matches!(&magic, Value::BigInt(b) if b[..] == MAGIC) {
        return Err("an embedded storage that is not a legacy torch.save stream".into());
    }
    let (_protocol_version, at) = pickle::read_at(bytes, at, &mut no_ids)?;
    let (_system_info, at) = pickle::read_at(bytes, at, &mut no_ids)?;
    let mut storages = Vec::new();
    let (_object, at) = pickle::read_at(bytes, at, &mut |id| {
        // ('storage', storage_type, key, location, numel[, view_metadata])
        let class = id.items().and_then(|parts| match parts.get(1) {
            Some(Value::Global(g)) => Some(g.1.clone()),
            _ => None,
        });
        let class = class.ok_or("a storage id without its type")?;
        storages.push(DType::of_storage(&class).ok_or_else(|| format!("storage type {class}"))?);
        Ok(id)
    })?;
    let (keys, at) = pickle::read_at(bytes, at, &mut no_ids)?;
    let keys = keys.items().ok_or("a torch.save stream without its storage keys")?.len();
    let [dtype] = storages[..] else {
        return Err(format!("{} storages in a stream that should hold one", storages.len()));
    };
    if keys != 1 {
        return Err(format!("{keys} storage keys in a stream that should hold one"));
    }
    let count = bytes.get(at..at + 8).ok_or("a storage without its element count")?;
    let count = u64::from_le_bytes(count.try_into().map_err(|_| "a short element count")?);
    let start = at + 8;
    let end = usize::try_from(count)
        .ok()
        .and_then(|n| n.checked_mul(dtype.size()))
        .and_then(|n| n.checked_add(start))
        .filter(|&e| e <= bytes.len())
        .ok_or("a storage shorter than its element count")?;
    Ok(Storage { dtype, bytes: bytes[start..end].to_vec() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_floats_widen_exactly() {
        for (bits, value) in
            [(0x3c00, 1.0), (0xc000, -2.0), (0x0001, 2f32.powi(-24)), (0x7bff, 65504.0), (0, 0.0)]
        {
            assert_eq!(half_to_f32(bits), value, "{bits:#06x}");
        }
        assert_eq!(half_to_f32(0x7c00), f32::INFINITY);
        assert!(half_to_f32(0x7e00).is_nan());
    }
}
