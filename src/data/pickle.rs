//! Just enough of Python's pickle format to read the ImageNet16 batches NB201 uses: a dict with a
//! numpy `uint8` array under `data` and a list of ints under `labels`, written by Python 2 or 3
//! (protocols 0–5, numpy's `_reconstruct` or `_frombuffer` forms). Nothing is executed: globals
//! are recorded by name and only numpy's array constructors are understood.

use std::collections::HashMap;
use std::rc::Rc;

#[derive(Clone, Debug)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// A float, whose value no reader here needs.
    Float,
    Bytes(Rc<Vec<u8>>),
    Str(Rc<String>),
    Tuple(Rc<Vec<Value>>),
    List(Rc<Vec<Value>>),
    Dict(Rc<Vec<(Value, Value)>>),
    Global(Rc<(String, String)>),
    /// `callable(*args)` with the state a BUILD gave it.
    Object(Rc<(Value, Value, Option<Value>)>),
    Mark,
}

/// What an ImageNet16 batch holds.
#[derive(Debug)]
pub struct ImagenetBatch {
    pub data: Vec<u8>,
    pub labels: Vec<i64>,
}

struct Machine<'a> {
    bytes: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    memo: HashMap<u64, Value>,
}

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or("truncated pickle")?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn uint(&mut self, n: usize) -> Result<u64, String> {
        let b = self.take(n)?;
        Ok(b.iter().rev().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }

    fn line(&mut self) -> Result<&'a str, String> {
        let rest = &self.bytes[self.pos..];
        let len = rest.iter().position(|&b| b == b'\n').ok_or("truncated pickle (no newline)")?;
        self.pos += len + 1;
        std::str::from_utf8(&rest[..len]).map_err(|_| "non-UTF-8 text in pickle".to_string())
    }

    fn pop(&mut self) -> Result<Value, String> {
        self.stack.pop().ok_or_else(|| "pickle stack underflow".to_string())
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let at = self.stack.iter().rposition(|v| matches!(v, Value::Mark)).ok_or("pickle MARK missing")?;
        let items = self.stack.split_off(at + 1);
        self.stack.pop();
        Ok(items)
    }

    fn top_mut(&mut self) -> Result<&mut Value, String> {
        self.stack.last_mut().ok_or_else(|| "pickle stack underflow".to_string())
    }

    fn push_bytes(&mut self, n: usize) -> Result<(), String> {
        let b = self.take(n)?.to_vec();
        self.stack.push(Value::Bytes(Rc::new(b)));
        Ok(())
    }

    fn push_str(&mut self, n: usize) -> Result<(), String> {
        let b = self.take(n)?;
        let s = std::str::from_utf8(b).map_err(|_| "invalid UTF-8 string in pickle")?;
        self.stack.push(Value::Str(Rc::new(s.to_string())));
        Ok(())
    }

    fn run(mut self) -> Result<Value, String> {
        loop {
            let op = self.take(1)?[0];
            match op {
                0x80 => {
                    self.take(1)?;
                }
                0x95 => {
                    self.take(8)?;
                }
                b'.' => return self.pop(),
                b'(' => self.stack.push(Value::Mark),
                b'}' => self.stack.push(Value::Dict(Rc::new(Vec::new()))),
                b']' => self.stack.push(Value::List(Rc::new(Vec::new()))),
                b')' => self.stack.push(Value::Tuple(Rc::new(Vec::new()))),
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(Rc::new(items)));
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    if self.stack.len() < n {
                        return Err("pickle stack underflow".into());
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(Rc::new(items)));
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::List(Rc::new(items)));
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let pairs = items
                        .chunks(2)
                        .filter(|c| c.len() == 2)
                        .map(|c| (c[0].clone(), c[1].clone()))
                        .collect();
                    self.stack.push(Value::Dict(Rc::new(pairs)));
                }
                b'a' => {
                    let v = self.pop()?;
                    match self.top_mut()? {
                        Value::List(l) => Rc::make_mut(l).push(v),
                        _ => return Err("APPEND to a non-list".into()),
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    match self.top_mut()? {
                        Value::List(l) => Rc::make_mut(l).extend(items),
                        _ => return Err("APPENDS to a non-list".into()),
                    }
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    match self.top_mut()? {
                        Value::Dict(d) => Rc::make_mut(d).push((k, v)),
                        _ => return Err("SETITEM on a non-dict".into()),
                    }
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    match self.top_mut()? {
                        Value::Dict(d) => {
                            let d = Rc::make_mut(d);
                            for c in items.chunks(2).filter(|c| c.len() == 2) {
                                d.push((c[0].clone(), c[1].clone()));
                            }
                        }
                        _ => return Err("SETITEMS on a non-dict".into()),
                    }
                }
                b'J' => {
                    let v = self.uint(4)? as u32 as i32;
                    self.stack.push(Value::Int(v.into()));
                }
                b'K' => {
                    let v = self.uint(1)?;
                    self.stack.push(Value::Int(v as i64));
                }
                b'M' => {
                    let v = self.uint(2)?;
                    self.stack.push(Value::Int(v as i64));
                }
                0x8a => {
                    let n = self.uint(1)? as usize;
                    let b = self.take(n)?;
                    if n > 8 {
                        return Err("integer too large in pickle".into());
                    }
                    let mut v: i64 = b.iter().rev().fold(0i64, |acc, &x| (acc << 8) | i64::from(x));
                    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.stack.push(Value::Int(v));
                }
                b'I' | b'L' => {
                    let text = self.line()?.trim_end_matches('L');
                    let v = match text {
                        "00" => Value::Bool(false),
                        "01" => Value::Bool(true),
                        t => Value::Int(t.parse().map_err(|_| format!("bad integer '{t}' in pickle"))?),
                    };
                    self.stack.push(v);
                }
                b'G' => {
                    self.take(8)?;
                    self.stack.push(Value::Float);
                }
                b'F' => {
                    let t = self.line()?;
                    t.parse::<f64>().map_err(|_| format!("bad float '{t}' in pickle"))?;
                    self.stack.push(Value::Float);
                }
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'U' | b'C' => {
                    let n = self.uint(1)? as usize;
                    self.push_bytes(n)?;
                }
                b'T' | b'B' => {
                    let n = self.uint(4)? as usize;
                    self.push_bytes(n)?;
                }
                0x8e | 0x96 => {
                    let n = self.uint(8)? as usize;
                    self.push_bytes(n)?;
                }
                b'X' => {
                    let n = self.uint(4)? as usize;
                    self.push_str(n)?;
                }
                0x8c => {
                    let n = self.uint(1)? as usize;
                    self.push_str(n)?;
                }
                0x8d => {
                    let n = self.uint(8)? as usize;
                    self.push_str(n)?;
                }
                b'S' => {
                    let t = self.line()?.trim();
                    let inner = t.get(1..t.len().saturating_sub(1)).unwrap_or("");
                    self.stack.push(Value::Bytes(Rc::new(inner.as_bytes().to_vec())));
                }
                b'V' => {
                    let t = self.line()?.to_string();
                    self.stack.push(Value::Str(Rc::new(t)));
                }
                b'c' => {
                    let module = self.line()?.to_string();
                    let name = self.line()?.to_string();
                    self.stack.push(Value::Global(Rc::new((module, name))));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Some(m), Some(n)) = (text_of(&module), text_of(&name)) else {
                        return Err("STACK_GLOBAL with non-string names".into());
                    };
                    self.stack.push(Value::Global(Rc::new((m, n))));
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    self.stack.push(Value::Object(Rc::new((callable, args, None))));
                }
                b'b' => {
                    let state = self.pop()?;
                    match self.top_mut()? {
                        Value::Object(o) => Rc::make_mut(o).2 = Some(state),
                        _ => return Err("BUILD on a non-object".into()),
                    }
                }
                b'q' => {
                    let k = self.uint(1)?;
                    self.memoize(k)?;
                }
                b'r' => {
                    let k = self.uint(4)?;
                    self.memoize(k)?;
                }
                b'p' => {
                    let k: u64 = self.line()?.parse().map_err(|_| "bad PUT index")?;
                    self.memoize(k)?;
                }
                0x94 => {
                    let k = self.memo.len() as u64;
                    self.memoize(k)?;
                }
                b'h' => {
                    let k = self.uint(1)?;
                    self.recall(k)?;
                }
                b'j' => {
                    let k = self.uint(4)?;
                    self.recall(k)?;
                }
                b'g' => {
                    let k: u64 = self.line()?.parse().map_err(|_| "bad GET index")?;
                    self.recall(k)?;
                }
                other => {
                    return Err(format!("unsupported pickle opcode 0x{other:02x} at byte {}", self.pos - 1));
                }
            }
        }
    }

    fn memoize(&mut self, key: u64) -> Result<(), String> {
        let top = self.stack.last().ok_or("pickle stack underflow")?.clone();
        self.memo.insert(key, top);
        Ok(())
    }

    fn recall(&mut self, key: u64) -> Result<(), String> {
        let v = self.memo.get(&key).ok_or("pickle memo key missing")?.clone();
        self.stack.push(v);
        Ok(())
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) => Some(s.to_string()),
        // Python 2 `str` read with encoding='latin1'.
        Value::Bytes(b) => Some(b.iter().map(|&c| c as char).collect()),
        _ => None,
    }
}

/// Bytes of a py2 str / py3 bytes, or a py3 str holding latin-1 text (Python 2 array data).
fn raw_bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::Bytes(b) => Some(b.as_ref().clone()),
        Value::Str(s) => s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect(),
        Value::Object(o) => match (&o.0, &o.1) {
            // Protocol 3+ numpy writes bytes of Python 2 data as `_codecs.encode(text, 'latin1')`.
            (Value::Global(g), Value::Tuple(args)) if g.1 == "encode" => args.first().and_then(raw_bytes),
            (Value::Global(g), Value::Tuple(args)) if g.1 == "bytearray" => args.first().and_then(raw_bytes),
            _ => None,
        },
        _ => None,
    }
}

fn dtype_is_u8(v: &Value) -> bool {
    match v {
        Value::Object(o) => match &o.1 {
            Value::Tuple(args) => args.first().and_then(text_of).is_some_and(|s| s == "u1" || s == "uint8"),
            _ => false,
        },
        _ => false,
    }
}

/// The bytes of a pickled numpy uint8 array.
fn numpy_u8(v: &Value) -> Result<Vec<u8>, String> {
    let Value::Object(o) = v else { return Err("`data` is not a numpy array".into()) };
    let Value::Global(g) = &o.0 else { return Err("`data` is not a numpy array".into()) };
    match g.1.as_str() {
        "_reconstruct" => {
            let Some(Value::Tuple(state)) = &o.2 else { return Err("numpy array without state".into()) };
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
            let Value::Tuple(args) = &o.1 else { return Err("unexpected _frombuffer arguments".into()) };
            if args.len() < 2 || !dtype_is_u8(&args[1]) {
                return Err("`data` is not a uint8 array".into());
            }
            raw_bytes(&args[0]).ok_or_else(|| "numpy array data is not raw bytes".into())
        }
        other => Err(format!("unsupported array constructor {}.{other}", g.0)),
    }
}

/// Reads an ImageNet16 batch pickle.
pub fn load_imagenet_batch(bytes: &[u8]) -> Result<ImagenetBatch, String> {
    let machine = Machine { bytes, pos: 0, stack: Vec::new(), memo: HashMap::new() };
    let root = machine.run().map_err(|e| format!("not a readable pickle: {e}"))?;
    let Value::Dict(entries) = root else { return Err("the pickle does not hold a dict".into()) };
    let find = |key: &str| entries.iter().find(|(k, _)| text_of(k).as_deref() == Some(key)).map(|(_, v)| v);
    let data = numpy_u8(find("data").ok_or("no 'data' entry")?)?;
    let labels = match find("labels").ok_or("no 'labels' entry")? {
        Value::List(items) => items
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
