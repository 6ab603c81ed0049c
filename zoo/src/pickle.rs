//! A pickle reader that runs no code: it understands the opcodes `torch.save`
//! emits and rebuilds only tensors, storages, (ordered) dicts, lists, tuples
//! and scalars. Any other global (`os.system`, `builtins.eval`, a user class,
//! `argparse.Namespace`, ...) is never imported, constructed or called: what
//! it would build is an inert [`Opaque`] placeholder that keeps only its
//! name and how many tensors it holds, so that a caller can skip it where it
//! lies outside the weights and refuse the file where the weights can be
//! reached only through it.

use crate::ReadError;
use std::collections::HashMap;

/// A storage named by a persistent id: `('storage', torch.FloatStorage, key,
/// location, numel)` in the zip format; the legacy format adds a sixth
/// entry, `None` or `(view_key, offset, size)` for a view of the stored
/// storage (elements `base..base + numel` of storage `key`).
#[derive(Clone, Debug, PartialEq)]
pub struct StorageRef {
    pub dtype: Dtype,
    pub key: String,
    pub numel: usize,
    /// Elements of the stored storage before this one's first (views only).
    pub base: usize,
    /// The stored storage's element count (`numel` unless a view).
    pub stored: usize,
}

/// What an unknown global would have built: its `module.name` and the number
/// of tensors and storages among its arguments and state (its contents are
/// not kept).
#[derive(Clone, Debug, PartialEq)]
pub struct Opaque {
    pub class: String,
    pub tensors: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl Dtype {
    fn from_storage(name: &str) -> Option<Dtype> {
        Some(match name {
            "FloatStorage" => Dtype::F32,
            "DoubleStorage" => Dtype::F64,
            "HalfStorage" => Dtype::F16,
            "BFloat16Storage" => Dtype::BF16,
            "LongStorage" => Dtype::I64,
            "IntStorage" => Dtype::I32,
            "ShortStorage" => Dtype::I16,
            "CharStorage" => Dtype::I8,
            "ByteStorage" => Dtype::U8,
            "BoolStorage" => Dtype::Bool,
            _ => return None,
        })
    }

    pub fn size(self) -> usize {
        match self {
            Dtype::F64 | Dtype::I64 => 8,
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F16 | Dtype::BF16 | Dtype::I16 => 2,
            Dtype::I8 | Dtype::U8 | Dtype::Bool => 1,
        }
    }
}

/// A tensor view into a storage (what `torch._utils._rebuild_tensor_v2` builds).
#[derive(Clone, Debug, PartialEq)]
pub struct TensorRef {
    pub storage: StorageRef,
    pub offset: usize,
    pub shape: Vec<usize>,
    pub stride: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    /// Dicts and OrderedDicts, in insertion order.
    Dict(Vec<(Value, Value)>),
    Tensor(TensorRef),
    Storage(StorageRef),
    /// An allowed callable, only ever consumed by REDUCE.
    Global(Global),
    /// An unknown global, or what it would have built.
    Opaque(Opaque),
    /// An integer of 65 to 128 bits (the legacy format's magic number).
    BigInt(i128),
    Mark,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Global {
    OrderedDict,
    RebuildTensor,
    RebuildTensorV2,
    RebuildParameter,
    Storage(Dtype),
}

impl Value {
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(items) => items.iter().find(|(k, _)| matches!(k, Value::Str(s) if s == key)).map(|(_, v)| v),
            _ => None,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Tensor(_) => "tensor",
            Value::Storage(_) => "storage",
            Value::Global(_) => "global",
            Value::Opaque(_) => "opaque object",
            Value::BigInt(_) => "int",
            Value::Mark => "mark",
        }
    }

    /// Tensors and storages in this value, those inside opaque objects included.
    pub fn tensor_count(&self) -> usize {
        match self {
            Value::Tensor(_) | Value::Storage(_) => 1,
            Value::Opaque(o) => o.tensors,
            Value::Tuple(v) | Value::List(v) => v.iter().map(Value::tensor_count).sum(),
            Value::Dict(d) => d.iter().map(|(k, v)| k.tensor_count() + v.tensor_count()).sum(),
            _ => 0,
        }
    }
}

fn allowed_global(module: &str, name: &str) -> Option<Global> {
    match (module, name) {
        ("collections", "OrderedDict") => Some(Global::OrderedDict),
        ("torch._utils", "_rebuild_tensor") => Some(Global::RebuildTensor),
        ("torch._utils", "_rebuild_tensor_v2") => Some(Global::RebuildTensorV2),
        ("torch._utils", "_rebuild_parameter") => Some(Global::RebuildParameter),
        ("torch", s) => Dtype::from_storage(s).map(Global::Storage),
        _ => None,
    }
}

/// The opcodes the reader follows, by their names in CPython's `pickle.py`.
mod op {
    pub const PROTO: u8 = 0x80;
    pub const FRAME: u8 = 0x95;
    pub const STOP: u8 = b'.';
    pub const EMPTY_DICT: u8 = b'}';
    pub const EMPTY_LIST: u8 = b']';
    pub const EMPTY_TUPLE: u8 = b')';
    pub const MARK: u8 = b'(';
    pub const NONE: u8 = b'N';
    pub const NEWTRUE: u8 = 0x88;
    pub const NEWFALSE: u8 = 0x89;
    pub const BININT1: u8 = b'K';
    pub const BININT2: u8 = b'M';
    pub const BININT: u8 = b'J';
    pub const LONG1: u8 = 0x8a;
    pub const BINFLOAT: u8 = b'G';
    pub const BINUNICODE: u8 = b'X';
    pub const SHORT_BINUNICODE: u8 = 0x8c;
    pub const SHORT_BINBYTES: u8 = b'C';
    pub const BINBYTES: u8 = b'B';
    pub const BINPUT: u8 = b'q';
    pub const LONG_BINPUT: u8 = b'r';
    pub const MEMOIZE: u8 = 0x94;
    pub const BINGET: u8 = b'h';
    pub const LONG_BINGET: u8 = b'j';
    pub const TUPLE: u8 = b't';
    pub const LIST: u8 = b'l';
    pub const APPEND: u8 = b'a';
    pub const APPENDS: u8 = b'e';
    pub const DICT: u8 = b'd';
    pub const SETITEM: u8 = b's';
    pub const SETITEMS: u8 = b'u';
    pub const GLOBAL: u8 = b'c';
    pub const STACK_GLOBAL: u8 = 0x93;
    pub const BINPERSID: u8 = b'Q';
    pub const REDUCE: u8 = b'R';
    pub const BUILD: u8 = b'b';
    pub const POP: u8 = b'0';
    pub const DUP: u8 = b'2';
    pub const TUPLE1: u8 = 0x85;
    pub const TUPLE3: u8 = 0x87;
    pub const NEWOBJ: u8 = 0x81;
    pub const NEWOBJ_EX: u8 = 0x92;
    pub const EMPTY_SET: u8 = 0x8f;
    pub const ADDITEMS: u8 = 0x90;
    pub const FROZENSET: u8 = 0x91;
    pub const POP_MARK: u8 = b'1';
    pub const LONG4: u8 = 0x8b;
    pub const BINUNICODE8: u8 = 0x8d;
    pub const BINBYTES8: u8 = 0x8e;
    pub const BYTEARRAY8: u8 = 0x96;
    pub const SHORT_BINSTRING: u8 = b'U';
    pub const BINSTRING: u8 = b'T';
}

/// Reads a pickle. Errors are plain sentences; the caller adds the file name.
pub fn load(data: &[u8]) -> Result<Value, ReadError> {
    Ok(load_prefix(data)?.value)
}

/// A pickle read from the start of a stream that may go on after it.
#[derive(Debug)]
pub struct Loaded {
    pub value: Value,
    /// Every storage a persistent id named, opaque objects' included, by key.
    pub storages: Vec<StorageRef>,
    /// Bytes the pickle took (up to and including STOP).
    pub len: usize,
}

/// Reads the pickle at the start of `data` (the legacy format is several
/// pickles in a row, then raw bytes).
pub fn load_prefix(data: &[u8]) -> Result<Loaded, ReadError> {
    let mut r = Reader { data, pos: 0, stack: Vec::new(), depth: Vec::new(), memo: HashMap::new(), storages: Vec::new() };
    let value = r.run()?;
    Ok(Loaded { value, storages: r.storages, len: r.pos })
}

/// Containers nested deeper than this are refused: a checkpoint nests a few
/// levels, and every later walk over a `Value` (drop, clone, compare) recurses.
pub const MAX_DEPTH: u32 = 1000;

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    /// The nesting depth of each stack entry (0: not a container).
    depth: Vec<u32>,
    memo: HashMap<u32, (Value, u32)>,
    storages: Vec<StorageRef>,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], ReadError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or("the pickle ends early")?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, ReadError> {
        Ok(self.take(1)?[0])
    }
    fn le<const N: usize>(&mut self) -> Result<[u8; N], ReadError> {
        Ok(self.take(N)?.try_into().unwrap())
    }
    fn line(&mut self) -> Result<String, ReadError> {
        let rest = &self.data[self.pos..];
        let end = rest.iter().position(|&b| b == b'\n').ok_or("the pickle ends early")?;
        let s = String::from_utf8(rest[..end].to_vec()).map_err(|_| "a GLOBAL name is not UTF-8")?;
        self.pos += end + 1;
        Ok(s)
    }
    fn push(&mut self, v: Value, depth: u32) -> Result<(), ReadError> {
        if depth > MAX_DEPTH {
            return Err(format!("refused: the pickle nests containers more than {MAX_DEPTH} deep").into());
        }
        self.stack.push(v);
        self.depth.push(depth);
        Ok(())
    }
    /// A container of items at most `inner` deep.
    fn push_container(&mut self, v: Value, inner: u32) -> Result<(), ReadError> {
        self.push(v, inner + 1)
    }
    fn pop(&mut self) -> Result<Value, ReadError> {
        Ok(self.pop_with_depth()?.0)
    }
    fn pop_with_depth(&mut self) -> Result<(Value, u32), ReadError> {
        match self.stack.pop() {
            Some(Value::Mark) | None => Err("malformed pickle: stack underflow".into()),
            Some(v) => Ok((v, self.depth.pop().unwrap_or(0))),
        }
    }
    /// The last `n` entries and their greatest depth.
    fn pop_n(&mut self, n: usize) -> Result<(Vec<Value>, u32), ReadError> {
        if self.stack.len() < n {
            return Err("malformed pickle: stack underflow".into());
        }
        let at = self.stack.len() - n;
        let depth = self.depth.split_off(at).into_iter().max().unwrap_or(0);
        Ok((self.stack.split_off(at), depth))
    }
    /// Items above the topmost MARK, which is removed, and their greatest depth.
    fn pop_mark(&mut self) -> Result<(Vec<Value>, u32), ReadError> {
        let at = self.stack.iter().rposition(|v| *v == Value::Mark).ok_or("malformed pickle: no MARK")?;
        let items = self.pop_n(self.stack.len() - at - 1)?;
        self.stack.pop();
        self.depth.pop();
        Ok(items)
    }
    fn top(&mut self) -> Result<&mut Value, ReadError> {
        self.stack.last_mut().ok_or_else(|| "malformed pickle: empty stack".into())
    }
    /// The top entry, which now holds items at most `inner` deep.
    fn top_holding(&mut self, inner: u32) -> Result<&mut Value, ReadError> {
        let d = self.depth.last_mut().ok_or("malformed pickle: empty stack")?;
        *d = (*d).max(inner + 1);
        if *d > MAX_DEPTH {
            return Err(format!("refused: the pickle nests containers more than {MAX_DEPTH} deep").into());
        }
        self.top()
    }
    fn string(&mut self, n: usize) -> Result<Value, ReadError> {
        let b = self.take(n)?.to_vec();
        Ok(Value::Str(String::from_utf8(b).map_err(|_| "a string is not UTF-8")?))
    }
    /// A known global, or an opaque placeholder for any other: nothing is
    /// looked up, imported or called.
    fn global(&mut self, module: &str, name: &str) -> Result<(), ReadError> {
        let v = match allowed_global(module, name) {
            Some(g) => Value::Global(g),
            None => Value::Opaque(Opaque { class: format!("{module}.{name}"), tensors: 0 }),
        };
        self.push(v, 0)
    }
    fn bytes(&mut self, n: u64) -> Result<Vec<u8>, ReadError> {
        let n = usize::try_from(n).map_err(|_| "the pickle ends early")?;
        Ok(self.take(n)?.to_vec())
    }
    /// Items added to an opaque object (SETITEMS, APPENDS, BUILD) are
    /// counted, not kept (and counted only there: plain containers, a state
    /// dict's included, are never walked for it).
    fn count_into(o: &mut Opaque, added: usize) {
        o.tensors = o.tensors.saturating_add(added);
    }

    fn run(&mut self) -> Result<Value, ReadError> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            match op {
                op::PROTO => {
                    let proto = self.u8()?;
                    if proto > 5 {
                        return Err(format!("unsupported pickle protocol {proto}").into());
                    }
                }
                op::FRAME => {
                    self.le::<8>()?; // FRAME: a length hint only
                }
                op::STOP => return self.pop(),
                op::EMPTY_DICT => self.push(Value::Dict(Vec::new()), 1)?,
                op::EMPTY_LIST => self.push(Value::List(Vec::new()), 1)?,
                op::EMPTY_TUPLE => self.push(Value::Tuple(Vec::new()), 1)?,
                op::MARK => self.push(Value::Mark, 0)?,
                op::NONE => self.push(Value::None, 0)?,
                op::NEWTRUE => self.push(Value::Bool(true), 0)?,
                op::NEWFALSE => self.push(Value::Bool(false), 0)?,
                op::BININT1 => {
                    let v = self.u8()?;
                    self.push(Value::Int(v as i64), 0)?
                }
                op::BININT2 => {
                    let v = u16::from_le_bytes(self.le()?);
                    self.push(Value::Int(v as i64), 0)?
                }
                op::BININT => {
                    let v = i32::from_le_bytes(self.le()?);
                    self.push(Value::Int(v as i64), 0)?
                }
                op::LONG1 | op::LONG4 => {
                    let n = if op == op::LONG1 { self.u8()? as usize } else { u32::from_le_bytes(self.le()?) as usize };
                    let v = long(self.take(n)?);
                    self.push(v, 0)?
                }
                op::BINFLOAT => {
                    let v = f64::from_be_bytes(self.le()?);
                    self.push(Value::Float(v), 0)?
                }
                op::BINUNICODE => {
                    let n = u32::from_le_bytes(self.le()?) as usize;
                    let s = self.string(n)?;
                    self.push(s, 0)?
                }
                op::SHORT_BINUNICODE => {
                    let n = self.u8()? as usize;
                    let s = self.string(n)?;
                    self.push(s, 0)?
                }
                op::BINUNICODE8 => {
                    let n = usize::try_from(u64::from_le_bytes(self.le()?)).map_err(|_| "the pickle ends early")?;
                    let s = self.string(n)?;
                    self.push(s, 0)?
                }
                // Python 2's byte strings (protocol 2 files written by Python 2).
                op::SHORT_BINSTRING | op::BINSTRING => {
                    let n = if op == op::SHORT_BINSTRING { self.u8()? as u64 } else { u32::from_le_bytes(self.le()?) as u64 };
                    let b = self.bytes(n)?;
                    self.push(Value::Str(b.iter().map(|&c| c as char).collect()), 0)?
                }
                op::SHORT_BINBYTES | op::BINBYTES | op::BINBYTES8 | op::BYTEARRAY8 => {
                    let n = match op {
                        op::SHORT_BINBYTES => self.u8()? as u64,
                        op::BINBYTES => u32::from_le_bytes(self.le()?) as u64,
                        _ => u64::from_le_bytes(self.le()?),
                    };
                    let b = self.bytes(n)?;
                    self.push(Value::Bytes(b), 0)?
                }
                op::BINPUT | op::LONG_BINPUT | op::MEMOIZE => {
                    let i = match op {
                        op::BINPUT => self.u8()? as u32,
                        op::LONG_BINPUT => u32::from_le_bytes(self.le()?),
                        _ => self.memo.len() as u32,
                    };
                    let v = self.top()?.clone();
                    let d = self.depth.last().copied().unwrap_or(0);
                    self.memo.insert(i, (v, d));
                }
                op::BINGET | op::LONG_BINGET => {
                    let i = if op == b'h' { self.u8()? as u32 } else { u32::from_le_bytes(self.le()?) };
                    let (v, d) = self.memo.get(&i).ok_or_else(|| format!("malformed pickle: memo {i} is unset"))?.clone();
                    self.push(v, d)?
                }
                op::TUPLE => {
                    let (items, d) = self.pop_mark()?;
                    self.push_container(Value::Tuple(items), d)?
                }
                op::TUPLE1..=op::TUPLE3 => {
                    let (items, d) = self.pop_n((op - 0x84) as usize)?;
                    self.push_container(Value::Tuple(items), d)?
                }
                op::LIST => {
                    let (items, d) = self.pop_mark()?;
                    self.push_container(Value::List(items), d)?
                }
                op::APPEND => {
                    let (v, d) = self.pop_with_depth()?;
                    match self.top_holding(d)? {
                        Value::List(l) => l.push(v),
                        Value::Opaque(o) => Self::count_into(o, v.tensor_count()),
                        other => return Err(format!("malformed pickle: APPEND to a {}", other.kind()).into()),
                    }
                }
                op::APPENDS | op::ADDITEMS => {
                    let (items, d) = self.pop_mark()?;
                    match self.top_holding(d)? {
                        Value::List(l) => l.extend(items),
                        Value::Opaque(o) => Self::count_into(o, items.iter().map(Value::tensor_count).sum()),
                        other => return Err(format!("malformed pickle: APPENDS to a {}", other.kind()).into()),
                    }
                }
                // Sets are read as lists: a checkpoint's tensors are never in one.
                op::EMPTY_SET => self.push(Value::List(Vec::new()), 1)?,
                op::FROZENSET => {
                    let (items, d) = self.pop_mark()?;
                    self.push_container(Value::List(items), d)?
                }
                op::POP_MARK => {
                    self.pop_mark()?;
                }
                op::DICT => {
                    let (items, d) = self.pop_mark()?;
                    self.push_container(Value::Dict(pairs(items)?), d)?
                }
                op::SETITEM => {
                    let (v, dv) = self.pop_with_depth()?;
                    let (k, dk) = self.pop_with_depth()?;
                    match self.top_holding(dv.max(dk))? {
                        Value::Opaque(o) => Self::count_into(o, k.tensor_count() + v.tensor_count()),
                        top => set_items(top, vec![(k, v)])?,
                    }
                }
                op::SETITEMS => {
                    let (items, d) = self.pop_mark()?;
                    match self.top_holding(d)? {
                        Value::Opaque(o) => Self::count_into(o, items.iter().map(Value::tensor_count).sum()),
                        top => set_items(top, pairs(items)?)?,
                    }
                }
                op::GLOBAL => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.global(&module, &name)?;
                }
                op::STACK_GLOBAL => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => self.global(&m, &n)?,
                        _ => return Err("malformed pickle: STACK_GLOBAL without names".into()),
                    }
                }
                op::BINPERSID => {
                    let pid = self.pop()?;
                    // The legacy format names a pickled nn.Module's class as
                    // ('module', class, source_file, source): opaque, like the class.
                    if let Value::Tuple(t) = &pid {
                        if let [Value::Str(tag), Value::Opaque(class), ..] = t.as_slice() {
                            if tag == "module" {
                                let v = Value::Opaque(class.clone());
                                self.push(v, 0)?;
                                continue;
                            }
                        }
                    }
                    let s = persistent_storage(pid)?;
                    self.storages.push(s.clone());
                    self.push(Value::Storage(s), 0)?
                }
                op::REDUCE => {
                    // The result holds (parts of) the arguments, never deeper.
                    let (args, d) = self.pop_with_depth()?;
                    let func = self.pop()?;
                    let v = reduce(func, args)?;
                    self.push(v, d)?
                }
                // cls.__new__(cls, *args[, **kwargs]): an opaque object, or an empty OrderedDict.
                op::NEWOBJ | op::NEWOBJ_EX => {
                    let kwargs = if op == op::NEWOBJ_EX { self.pop()?.tensor_count() } else { 0 };
                    let args = self.pop()?;
                    let v = match self.pop()? {
                        Value::Opaque(o) => Value::Opaque(Opaque { class: o.class, tensors: args.tensor_count() + kwargs }),
                        Value::Global(Global::OrderedDict) => Value::Dict(Vec::new()),
                        other => return Err(format!("refused: NEWOBJ on a {}", other.kind()).into()),
                    };
                    self.push(v, 1)?
                }
                op::BUILD => {
                    // BUILD: OrderedDict state (state_dict()'s `_metadata`) carries no tensors.
                    let state = self.pop()?;
                    match (self.top()?, &state) {
                        (Value::Dict(_), _) | (Value::Tensor(_), Value::Dict(_) | Value::None | Value::Tuple(_)) => {}
                        (Value::Opaque(o), s) => Self::count_into(o, s.tensor_count()),
                        (t, _) => return Err(format!("refused: BUILD on a {} (only dicts, tensors and opaque objects may carry state)", t.kind()).into()),
                    }
                }
                op::POP => {
                    self.pop()?;
                }
                op::DUP => {
                    let v = self.top()?.clone();
                    let d = self.depth.last().copied().unwrap_or(0);
                    self.push(v, d)?
                }
                _ => {
                    return Err(format!(
                        "refused: pickle opcode 0x{op:02x} at byte {at} is not one a checkpoint of tensors needs"
                    ).into())
                }
            }
        }
    }
}

fn pairs(items: Vec<Value>) -> Result<Vec<(Value, Value)>, ReadError> {
    if items.len() % 2 != 0 {
        return Err("malformed pickle: odd number of dict items".into());
    }
    let mut it = items.into_iter();
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

fn set_items(target: &mut Value, items: Vec<(Value, Value)>) -> Result<(), ReadError> {
    match target {
        Value::Dict(d) => {
            for (k, v) in items {
                match d.iter_mut().find(|(ek, _)| *ek == k) {
                    Some(slot) => slot.1 = v,
                    None => d.push((k, v)),
                }
            }
            Ok(())
        }
        other => Err(format!("malformed pickle: SETITEM on a {}", other.kind()).into()),
    }
}

fn usize_of(v: &Value, what: &str) -> Result<usize, ReadError> {
    match v {
        Value::Int(i) if *i >= 0 => Ok(*i as usize),
        _ => Err(format!("malformed tensor: {what} is not a non-negative int").into()),
    }
}

fn usizes(v: &Value, what: &str) -> Result<Vec<usize>, ReadError> {
    match v {
        Value::Tuple(t) | Value::List(t) => t.iter().map(|x| usize_of(x, what)).collect(),
        _ => Err(format!("malformed tensor: {what} is not a tuple").into()),
    }
}

/// A little-endian two's-complement integer (LONG1 / LONG4).
fn long(b: &[u8]) -> Value {
    let neg = b.last().is_some_and(|&x| x & 0x80 != 0);
    let fill = if neg { 0xff } else { 0 };
    // Wider than 128 bits: only its size is kept (no checkpoint's tensors need it).
    if b.len() > 16 && b[16..].iter().any(|&x| x != fill) {
        return Value::Opaque(Opaque { class: format!("int of {} bytes", b.len()), tensors: 0 });
    }
    let mut full = [fill; 16];
    let n = b.len().min(16);
    full[..n].copy_from_slice(&b[..n]);
    let v = i128::from_le_bytes(full);
    i64::try_from(v).map(Value::Int).unwrap_or(Value::BigInt(v))
}

/// `('storage', torch.*Storage, key, location, numel)` (zip format) or the
/// legacy format's `(..., numel, None | (view_key, offset, size))`.
fn persistent_storage(pid: Value) -> Result<StorageRef, ReadError> {
    let Value::Tuple(t) = pid else { return Err("refused: a persistent id that is not a storage tuple".into()) };
    let (head, view) = match t.len() {
        5 => (&t[..5], &Value::None),
        6 => (&t[..5], &t[5]),
        _ => return Err("refused: a persistent id that is not ('storage', torch.*Storage, key, location, numel)".into()),
    };
    let [Value::Str(tag), Value::Global(Global::Storage(dtype)), Value::Str(key), Value::Str(_location), numel] = head else {
        return Err("refused: a persistent id that is not ('storage', torch.*Storage, key, location, numel)".into());
    };
    if tag != "storage" {
        return Err(format!("refused: a persistent id of kind `{tag}` (only storages are read)").into());
    }
    let stored = usize_of(numel, "storage size")?;
    let (base, numel) = match view {
        Value::None => (0, stored),
        Value::Tuple(v) => match v.as_slice() {
            [Value::Str(_view_key), offset, size] => (usize_of(offset, "storage view offset")?, usize_of(size, "storage view size")?),
            _ => return Err("malformed storage view: expected (view_key, offset, size)".into()),
        },
        _ => return Err("malformed storage view: expected None or (view_key, offset, size)".into()),
    };
    if base.checked_add(numel).is_none_or(|end| end > stored) {
        return Err(format!("a view of elements {base}..+{numel} reaches past the end of storage {key} ({stored} elements)").into());
    }
    Ok(StorageRef { dtype: *dtype, key: key.clone(), numel, base, stored })
}

fn reduce(func: Value, args: Value) -> Result<Value, ReadError> {
    // An unknown callable (or what one returned) is not called: its result is opaque.
    if let Value::Opaque(o) = func {
        return Ok(Value::Opaque(Opaque { class: o.class, tensors: args.tensor_count() }));
    }
    let Value::Tuple(args) = args else { return Err("malformed pickle: REDUCE arguments are not a tuple".into()) };
    match func {
        Value::Global(Global::OrderedDict) => match args.as_slice() {
            [] => Ok(Value::Dict(Vec::new())),
            [Value::List(items)] => {
                let mut d = Vec::new();
                for it in items {
                    match it {
                        Value::Tuple(kv) | Value::List(kv) if kv.len() == 2 => d.push((kv[0].clone(), kv[1].clone())),
                        _ => return Err("malformed pickle: OrderedDict item is not a pair".into()),
                    }
                }
                Ok(Value::Dict(d))
            }
            _ => Err("malformed pickle: unexpected OrderedDict arguments".into()),
        },
        Value::Global(Global::RebuildTensorV2 | Global::RebuildTensor) => {
            // (storage, storage_offset, size, stride[, requires_grad, backward_hooks[, metadata]])
            if args.len() < 4 {
                return Err("malformed tensor: _rebuild_tensor takes at least 4 arguments".into());
            }
            let Value::Storage(storage) = &args[0] else { return Err("malformed tensor: no storage".into()) };
            let t = TensorRef {
                storage: storage.clone(),
                offset: usize_of(&args[1], "storage offset")?,
                shape: usizes(&args[2], "size")?,
                stride: usizes(&args[3], "stride")?,
            };
            if t.shape.len() != t.stride.len() {
                return Err("malformed tensor: size and stride differ in length".into());
            }
            Ok(Value::Tensor(t))
        }
        Value::Global(Global::RebuildParameter) => match args.into_iter().next() {
            Some(t @ Value::Tensor(_)) => Ok(t),
            _ => Err("malformed pickle: _rebuild_parameter without a tensor".into()),
        },
        Value::Global(Global::Storage(_)) => Err("refused: calling a storage type".into()),
        other => Err(format!("refused: REDUCE on a {}", other.kind()).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_lists_dicts_and_memo() {
        // pickle.dumps({'a': [1, -2, 300, 70000, 2**40, 1.5, None, True], 'b': ('x', 'x')}, protocol=2)
        let data: &[u8] = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01J\xfe\xff\xff\xffM,\x01J\x70\x11\x01\x00\x8a\x06\x00\x00\x00\x00\x00\x01G?\xf8\x00\x00\x00\x00\x00\x00N\x88eX\x01\x00\x00\x00bq\x03X\x01\x00\x00\x00xq\x04h\x04\x86q\x05u.";
        let v = load(data).unwrap();
        assert_eq!(
            v.get("a"),
            Some(&Value::List(vec![
                Value::Int(1),
                Value::Int(-2),
                Value::Int(300),
                Value::Int(70000),
                Value::Int(1 << 40),
                Value::Float(1.5),
                Value::None,
                Value::Bool(true)
            ]))
        );
        assert_eq!(v.get("b"), Some(&Value::Tuple(vec![Value::Str("x".into()), Value::Str("x".into())])));
    }

    #[test]
    fn unknown_globals_are_opaque_and_never_called() {
        // pickle.dumps(os.system-reduction, protocol=2): c posix\nsystem\n ... R
        let data: &[u8] = b"\x80\x02cposix\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.";
        assert_eq!(load(data).unwrap(), Value::Opaque(Opaque { class: "posix.system".into(), tensors: 0 }));
        // builtins via STACK_GLOBAL (protocol 4)
        let data: &[u8] = b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93.";
        assert_eq!(load(data).unwrap(), Value::Opaque(Opaque { class: "builtins.eval".into(), tensors: 0 }));
        // argparse.Namespace(lr=0.1), protocol 2: NEWOBJ then BUILD with its __dict__.
        let data: &[u8] = b"\x80\x02cargparse\nNamespace\nq\x00)\x81q\x01}q\x02X\x02\x00\x00\x00lrq\x03G?\xb9\x99\x99\x99\x99\x99\x9asb.";
        assert_eq!(load(data).unwrap(), Value::Opaque(Opaque { class: "argparse.Namespace".into(), tensors: 0 }));
        // INST / OBJ opcodes are never needed
        let data: &[u8] = b"(ios\nsystem\nS'true'\n.";
        assert!(load(data).unwrap_err().0.contains("opcode 0x69"));
    }

    #[test]
    fn truncated_and_malformed() {
        assert_eq!(load(b"\x80\x02X\x05\x00\x00\x00ab").unwrap_err().0, "the pickle ends early");
        assert!(load(b"\x80\x02s.").unwrap_err().0.contains("stack underflow"));
    }

    /// Nesting by every container opcode: lists (APPEND, APPENDS), tuples
    /// (MARK/TUPLE, TUPLE1), dicts (SETITEM, SETITEMS), the memo and DUP,
    /// up to the limit and one past it.
    #[test]
    fn nesting_is_bounded_for_every_container() {
        let nest = |depth: usize, open: &[u8], close: &[u8]| {
            let mut p = b"\x80\x02".to_vec();
            for _ in 0..depth {
                p.extend_from_slice(open);
            }
            p.push(b'N');
            for _ in 0..depth {
                p.extend_from_slice(close);
            }
            p.push(b'.');
            p
        };
        let cases: [(&[u8], &[u8]); 6] = [
            (b"]", b"a"),                  // list.append
            (b"](", b"e"),                 // list.extend
            (b"(", b"t"),                  // tuple of MARK
            (b"", b"\x85"),                // TUPLE1
            (b"}K\x01", b"s"),             // {1: ...}
            (b"}(K\x01", b"u"),            // {1: ...} by SETITEMS
        ];
        for (open, close) in cases {
            let max = MAX_DEPTH as usize;
            assert!(load(&nest(max, open, close)).is_ok(), "{open:?} {close:?} at the limit");
            let e = load(&nest(max + 1, open, close)).unwrap_err().0;
            assert!(e.contains("more than 1000 deep"), "{open:?} {close:?}: {e}");
            assert!(load(&nest(100_000, open, close)).unwrap_err().0.contains("deep"));
        }
        // A memoised deep value stays deep when fetched again (q / h), and DUP too.
        let mut p = nest(MAX_DEPTH as usize, b"]", b"a");
        p.pop();
        p.extend_from_slice(b"q\x00]h\x00a.");
        assert!(load(&p).unwrap_err().0.contains("deep"));
        let mut p = nest(MAX_DEPTH as usize, b"]", b"a");
        p.pop();
        p.extend_from_slice(b"2a.");
        assert!(load(&p).unwrap_err().0.contains("deep"));
    }
}
