//! ImageNet16's batches as NB201 uses them: a pickled dict with a numpy `uint8` array under
//! `data` and a list of ints under `labels`, written by Python 2 or 3 (numpy's `_reconstruct` or
//! `_frombuffer` forms), read through [`crate::pickle`].

use crate::pickle::{self, Value};

/// What an ImageNet16 batch holds.
#[derive(Debug)]
pub struct ImagenetBatch {
    pub data: Vec<u8>,
    pub labels: Vec<i64>,
}

/// Bytes of a py2 str / py3 bytes, or a py3 str holding latin-1 text (Python 2 array data).
fn raw_bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::Bytes(b) => Some(b.as_ref().clone()),
        Value::Str(s) => s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect(),
        Value::Object(o) => match o.callable_name() {
            // Protocol 3+ numpy writes bytes of Python 2 data as `_codecs.encode(text, 'latin1')`.
            Some((_, "encode" | "bytearray")) => o.args.first().and_then(raw_bytes),
            _ => None,
        },
        _ => None,
    }
}

fn dtype_is_u8(v: &Value) -> bool {
    match v {
        Value::Object(o) => {
            o.args.first().and_then(Value::as_text).is_some_and(|s| s == "u1" || s == "uint8")
        }
        _ => false,
    }
}

/// The bytes of a pickled numpy uint8 array.
fn numpy_u8(v: &Value) -> Result<Vec<u8>, String> {
    let Value::Object(o) = v else { return Err("`data` is not a numpy array".into()) };
    let Some((module, name)) = o.callable_name() else { return Err("`data` is not a numpy array".into()) };
    match name {
        "_reconstruct" => {
            let state =
                o.state.borrow().as_ref().and_then(Value::items).ok_or("numpy array without state")?;
            if state.len() < 5 {
                return Err("unexpected numpy array state".into());
            }
            if !dtype_is_u8(&state[2]) {
                return Err("`data` is not a uint8 array".into());
            }
            if matches!(state[3], Value::Bool(true)) {
                return Err("Fortran-ordered arrays are not supported".into());
            }
            raw_bytes(&state[4]).ok_or_else(|| "numpy array data is not raw bytes".into())
        }
        "_frombuffer" => {
            if o.args.len() < 2 || !dtype_is_u8(&o.args[1]) {
                return Err("`data` is not a uint8 array".into());
            }
            raw_bytes(&o.args[0]).ok_or_else(|| "numpy array data is not raw bytes".into())
        }
        other => Err(format!("unsupported array constructor {module}.{other}")),
    }
}

/// Reads an ImageNet16 batch pickle.
pub fn load_imagenet_batch(bytes: &[u8]) -> Result<ImagenetBatch, String> {
    let root = pickle::read(bytes).map_err(|e| format!("not a readable pickle: {e}"))?;
    if root.entries().is_none() {
        return Err("the pickle does not hold a dict".into());
    }
    let data = numpy_u8(&root.get("data").ok_or("no 'data' entry")?)?;
    let labels = match root.get("labels").ok_or("no 'labels' entry")? {
        Value::List(items) => items
            .borrow()
            .iter()
            .map(|v| match v {
                Value::Int(i) => Ok(*i),
                _ => Err("a label is not an integer".to_string()),
            })
            .collect::<Result<Vec<i64>, String>>()?,
        _ => return Err("'labels' is not a list".into()),
    };
    Ok(ImagenetBatch { data, labels })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A protocol-2 pickle as Python 2 + numpy write `{'data': array(uint8), 'labels': [...]}`.
    pub fn imagenet_batch_pickle(data: &[u8], rows: usize, labels: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 2, b'}', b'q', 0, b'('];
        p.extend(b"U\x04data");
        p.extend(b"cnumpy.core.multiarray\n_reconstruct\n");
        p.extend(b"cnumpy\nndarray\n");
        p.extend(b"K\x00\x85U\x01b\x87R");
        // state: (1, (rows, cols), dtype('u1'), False, raw)
        p.extend(b"(K\x01");
        p.extend([b'J']);
        p.extend((rows as u32).to_le_bytes());
        p.extend([b'J']);
        p.extend(((data.len() / rows.max(1)) as u32).to_le_bytes());
        p.extend([0x86]);
        p.extend(
            b"cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb",
        );
        p.push(0x89);
        p.push(b'T');
        p.extend((data.len() as u32).to_le_bytes());
        p.extend(data);
        p.extend(b"tb");
        p.extend(b"U\x06labels]q\x01(");
        for &l in labels {
            p.extend([b'K', l]);
        }
        p.extend(b"eu.");
        p
    }

    #[test]
    fn reads_a_python2_numpy_batch() {
        let data: Vec<u8> = (0..2 * 768).map(|i| (i % 251) as u8).collect();
        let batch = load_imagenet_batch(&imagenet_batch_pickle(&data, 2, &[5, 121])).unwrap();
        assert_eq!(batch.data, data);
        assert_eq!(batch.labels, vec![5, 121]);
    }

    #[test]
    fn rejects_truncated_and_foreign_data() {
        let data = vec![7u8; 768];
        let full = imagenet_batch_pickle(&data, 1, &[1]);
        assert!(load_imagenet_batch(&full[..full.len() / 2]).unwrap_err().contains("truncated"));
        assert!(load_imagenet_batch(b"hello").is_err());
    }

    #[test]
    fn reads_pickles_written_by_python_numpy() {
        let code = "import pickle,sys,numpy as np\n\
                    d={'data':(np.arange(2*768)%251).astype(np.uint8).reshape(2,768),'labels':[3,120],'mean':np.zeros(3)}\n\
                    sys.stdout.buffer.write(pickle.dumps(d,protocol=int(sys.argv[1])))";
        use crate::prerequisites::{Installed, require, test_python};
        let Some(python) = require(test_python(&["numpy"]), Installed::ByMakeTest) else { return };
        for protocol in ["2", "4", "5"] {
            let out = std::process::Command::new(&python).args(["-c", code, protocol]).output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let batch = load_imagenet_batch(&out.stdout).unwrap();
            let expected: Vec<u8> = (0..2 * 768).map(|i| (i % 251) as u8).collect();
            assert_eq!(batch.data, expected, "protocol {protocol}");
            assert_eq!(batch.labels, vec![3, 120]);
        }
    }
}
