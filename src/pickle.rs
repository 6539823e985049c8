//! Python's pickle format read as data, for the files NB201 publishes: ImageNet16's numpy batches
//! (`data::pickle`) and NATS-Bench's archive of trained weights (`model::nats`). Protocols 0 to 5.
//! Nothing is executed: a call (`REDUCE`, `NEWOBJ`) becomes an [`Object`] holding the callable's
//! name, its arguments and the state a `BUILD` gives it, for the reader of a format to interpret.
//! Only `dict` and `OrderedDict` calls become dicts, since their items arrive by `SETITEMS`.
//! Containers are shared like Python's objects, so items set after a memo entry reach it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

#[derive(Clone, Debug)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer wider than 64 bits, as little-endian two's complement bytes.
    BigInt(Rc<Vec<u8>>),
    /// A float, whose value no reader here needs.
    Float,
    Bytes(Rc<Vec<u8>>),
    Str(Rc<String>),
    Tuple(Rc<Vec<Value>>),
    List(Rc<RefCell<Vec<Value>>>),
    Dict(Rc<RefCell<Vec<(Value, Value)>>>),
    /// A class or function by module and name.
    Global(Rc<(String, String)>),
    Object(Rc<Object>),
    /// What a persistent-id loader returned for an id.
    Persistent(Rc<Value>),
}

/// `callable(*args)`, with the state a `BUILD` gave it.
#[derive(Debug)]
pub struct Object {
    pub callable: Value,
    pub args: Vec<Value>,
    pub state: RefCell<Option<Value>>,
}

impl Object {
    /// `(module, name)` of the callable, when it is a global.
    pub fn callable_name(&self) -> Option<(&str, &str)> {
        match &self.callable {
            Value::Global(g) => Some((g.0.as_str(), g.1.as_str())),
            _ => None,
        }
    }
}

impl Value {
    /// Text of a str, or of a Python 2 `str` (bytes read as latin-1).
    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::Str(s) => Some(s.to_string()),
            Value::Bytes(b) => Some(b.iter().map(|&c| c as char).collect()),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    /// The entries of a dict, in insertion order.
    pub fn entries(&self) -> Option<Vec<(Value, Value)>> {
        match self {
            Value::Dict(items) => Some(items.borrow().clone()),
            _ => None,
        }
    }

    /// The items of a list or tuple.
    pub fn items(&self) -> Option<Vec<Value>> {
        match self {
            Value::List(items) => Some(items.borrow().clone()),
            Value::Tuple(items) => Some(items.as_ref().clone()),
            _ => None,
        }
    }

    /// The value of the text key `key` in a dict.
    pub fn get(&self, key: &str) -> Option<Value> {
        match self {
            Value::Dict(items) => items
                .borrow()
                .iter()
                .find(|(k, _)| k.as_text().as_deref() == Some(key))
                .map(|(_, v)| v.clone()),
            _ => None,
        }
    }

    fn same_key(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Tuple(a), Value::Tuple(b)) => {
                a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x.same_key(y))
            }
            _ => matches!((self.as_text(), other.as_text()), (Some(a), Some(b)) if a == b),
        }
    }
}

/// Reads the pickle at the start of `bytes`.
pub fn read(bytes: &[u8]) -> Result<Value, String> {
    read_at(bytes, 0, &mut |_| Err("a persistent id where none belongs".to_string())).map(|(value, _)| value)
}

/// Reads the pickle that starts at byte `at`, with `persistent_load` turning each persistent id
/// into a value; returns the value and where the pickle ended.
pub fn read_at(
    bytes: &[u8],
    at: usize,
    persistent_load: &mut dyn FnMut(Value) -> Result<Value, String>,
) -> Result<(Value, usize), String> {
    let mut machine = Machine { bytes, at, stack: Vec::new(), marks: Vec::new(), memo: HashMap::new() };
    let value = machine.run(persistent_load)?;
    Ok((value, machine.at))
}

struct Machine<'b> {
    bytes: &'b [u8],
    at: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u64, Value>,
}

impl<'b> Machine<'b> {
    fn take(&mut self, n: usize) -> Result<&'b [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or("truncated pickle")?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn uint(&mut self, n: usize) -> Result<u64, String> {
        Ok(self.take(n)?.iter().rev().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }

    fn len(&mut self, n: usize) -> Result<usize, String> {
        usize::try_from(self.uint(n)?).map_err(|_| "a pickle field longer than memory".to_string())
    }

    fn line(&mut self) -> Result<&'b str, String> {
        let rest = &self.bytes[self.at..];
        let end = rest.iter().position(|&b| b == b'\n').ok_or("truncated pickle (no newline)")?;
        self.at += end + 1;
        std::str::from_utf8(&rest[..end]).map_err(|_| "non-UTF-8 text in pickle".to_string())
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

    fn pop(&mut self) -> Result<Value, String> {
        self.stack.pop().ok_or_else(|| "pickle stack underflow".to_string())
    }

    fn top(&mut self) -> Result<&mut Value, String> {
        self.stack.last_mut().ok_or_else(|| "pickle stack underflow".to_string())
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let mark = self.marks.pop().ok_or("pickle MARK missing")?;
        if mark > self.stack.len() {
            return Err("pickle MARK above the stack".into());
        }
        Ok(self.stack.split_off(mark))
    }

    fn memoize(&mut self, key: u64) -> Result<(), String> {
        let top = self.top()?.clone();
        self.memo.insert(key, top);
        Ok(())
    }

    fn recall(&mut self, key: u64) -> Result<(), String> {
        let v = self.memo.get(&key).ok_or("pickle memo key missing")?.clone();
        self.stack.push(v);
        Ok(())
    }

    fn call(&mut self) -> Result<(), String> {
        let args = self.pop()?;
        let callable = self.pop()?;
        let args = args.items().ok_or("a call whose arguments are not a tuple")?;
        self.stack.push(call(callable, args));
        Ok(())
    }

    fn run(
        &mut self,
        persistent_load: &mut dyn FnMut(Value) -> Result<Value, String>,
    ) -> Result<Value, String> {
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
                b'(' => self.marks.push(self.stack.len()),
                b'}' => self.stack.push(Value::Dict(Rc::default())),
                b']' | 0x8f => self.stack.push(Value::List(Rc::default())),
                b')' => self.stack.push(Value::Tuple(Rc::default())),
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
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
                b'l' | 0x91 => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::List(Rc::new(RefCell::new(items))));
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let dict = Value::Dict(Rc::default());
                    set_items(&dict, items)?;
                    self.stack.push(dict);
                }
                b'a' => {
                    let v = self.pop()?;
                    append(self.top()?, vec![v])?;
                }
                b'e' | 0x90 => {
                    let items = self.pop_mark()?;
                    append(self.top()?, items)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    set_items(self.top()?, vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    set_items(self.top()?, items)?;
                }
                b'J' => {
                    let v = self.uint(4)? as u32 as i32;
                    self.stack.push(Value::Int(i64::from(v)));
                }
                b'K' => {
                    let v = self.uint(1)?;
                    self.stack.push(Value::Int(v as i64));
                }
                b'M' => {
                    let v = self.uint(2)?;
                    self.stack.push(Value::Int(v as i64));
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a { self.len(1)? } else { self.len(4)? };
                    let b = self.take(n)?;
                    if b.len() > 8 {
                        self.stack.push(Value::BigInt(Rc::new(b.to_vec())));
                        continue;
                    }
                    let negative = b.last().is_some_and(|&x| x & 0x80 != 0);
                    let mut full = [if negative { 0xff } else { 0 }; 8];
                    full[..b.len()].copy_from_slice(b);
                    self.stack.push(Value::Int(i64::from_le_bytes(full)));
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
                b'U' | b'C' => {
                    let n = self.len(1)?;
                    self.push_bytes(n)?;
                }
                b'T' | b'B' => {
                    let n = self.len(4)?;
                    self.push_bytes(n)?;
                }
                0x8e | 0x96 => {
                    let n = self.len(8)?;
                    self.push_bytes(n)?;
                }
                b'X' => {
                    let n = self.len(4)?;
                    self.push_str(n)?;
                }
                0x8c => {
                    let n = self.len(1)?;
                    self.push_str(n)?;
                }
                0x8d => {
                    let n = self.len(8)?;
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
                    let (Some(m), Some(n)) = (module.as_text(), name.as_text()) else {
                        return Err("STACK_GLOBAL with non-string names".into());
                    };
                    self.stack.push(Value::Global(Rc::new((m, n))));
                }
                b'R' | 0x81 => self.call()?,
                0x92 => {
                    self.pop()?;
                    self.call()?;
                }
                b'b' => {
                    let state = self.pop()?;
                    match self.top()? {
                        Value::Object(object) => *object.state.borrow_mut() = Some(state),
                        // A dict's state is its attributes (an OrderedDict's `_metadata`).
                        Value::Dict(_) => {}
                        _ => return Err("BUILD on something that is not an object".into()),
                    }
                }
                b'Q' => {
                    let id = self.pop()?;
                    let value = persistent_load(id)?;
                    self.stack.push(Value::Persistent(Rc::new(value)));
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
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let top = self.top()?.clone();
                    self.stack.push(top);
                }
                other => {
                    return Err(format!("unsupported pickle opcode 0x{other:02x} at byte {}", self.at - 1));
                }
            }
        }
    }
}

/// A call as data; `dict()` and `OrderedDict()` become dicts, whose items follow by SETITEMS.
fn call(callable: Value, args: Vec<Value>) -> Value {
    if let Value::Global(g) = &callable
        && args.is_empty()
        && matches!(
            (g.0.as_str(), g.1.as_str()),
            ("collections", "OrderedDict") | ("builtins" | "__builtin__", "dict")
        )
    {
        return Value::Dict(Rc::default());
    }
    Value::Object(Rc::new(Object { callable, args, state: RefCell::new(None) }))
}

fn append(target: &Value, items: Vec<Value>) -> Result<(), String> {
    match target {
        Value::List(list) => {
            list.borrow_mut().extend(items);
            Ok(())
        }
        _ => Err("APPEND to something that is not a list".into()),
    }
}

/// Sets key/value pairs (`items` alternates them) on a dict; a later key replaces an earlier one.
fn set_items(target: &Value, items: Vec<Value>) -> Result<(), String> {
    let Value::Dict(dict) = target else { return Err("SETITEM on something that is not a dict".into()) };
    if !items.len().is_multiple_of(2) {
        return Err("SETITEMS with an odd number of items".into());
    }
    let mut dict = dict.borrow_mut();
    let mut items = items.into_iter();
    while let (Some(k), Some(v)) = (items.next(), items.next()) {
        match dict.iter_mut().find(|(existing, _)| existing.same_key(&k)) {
            Some(slot) => slot.1 = v,
            None => dict.push((k, v)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pickle.dumps({'a': 1, 'b': (2, 'x'), 'c': [-300, 2**40, 1.5, None, True]}, protocol=4)`.
    const PLAIN: [u8; 66] = [
        128, 4, 149, 55, 0, 0, 0, 0, 0, 0, 0, 125, 148, 40, 140, 1, 97, 148, 75, 1, 140, 1, 98, 148, 75, 2,
        140, 1, 120, 148, 134, 148, 140, 1, 99, 148, 93, 148, 40, 74, 212, 254, 255, 255, 138, 6, 0, 0, 0, 0,
        0, 1, 71, 63, 248, 0, 0, 0, 0, 0, 0, 78, 136, 101, 117, 46,
    ];

    #[test]
    fn plain_data_reads_back_and_every_truncation_is_an_error() {
        let value = read(&PLAIN).unwrap();
        assert_eq!(value.get("a").and_then(|v| v.as_int()), Some(1));
        let b = value.get("b").and_then(|v| v.items()).unwrap();
        assert_eq!((b[0].as_int(), b[1].as_text().as_deref()), (Some(2), Some("x")));
        let c = value.get("c").and_then(|v| v.items()).unwrap();
        assert_eq!((c[0].as_int(), c[1].as_int()), (Some(-300), Some(1 << 40)));
        assert!(matches!((&c[2], &c[3], &c[4]), (Value::Float, Value::None, Value::Bool(true))));
        for end in 0..PLAIN.len() {
            assert!(read(&PLAIN[..end]).is_err(), "{end} bytes read as a whole pickle");
        }
    }
}
