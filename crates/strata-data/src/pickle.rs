//! A small, safe reader for the Python pickles the traffic field ships its graphs in.
//!
//! DCRNN's `adj_mx.pkl` (METR-LA, PEMS-BAY) is a Python-2 pickle of
//! `(sensor_ids, sensor_id_to_index, adjacency)` where the adjacency is a numpy array. This module
//! runs the pickle opcodes of protocols 0-2 on a stack machine that never calls Python code:
//! `GLOBAL` names are kept as names, `REDUCE`/`BUILD` record their arguments, and
//! [`Value::ndarray_f32`] turns a recorded `numpy.core.multiarray._reconstruct` + state into
//! values. Anything else is an error naming the byte offset and opcode.
//!
//! The memo holds a copy of a value taken when it is memoised, not a shared reference: a container
//! referenced twice and mutated after its first appearance reads back as it was then. The files
//! this reads only memoise strings, numbers and finished objects, for which that is exact.

use std::collections::HashMap;

/// A pickled value, as far as this reader understands it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A Python-2 `str` or Python-3 `bytes`.
    Bytes(Vec<u8>),
    Str(String),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    /// `module.name`, unresolved.
    Global(String, String),
    /// `callable(*args)`, not called.
    Reduce(Box<Value>, Box<Value>),
    /// `obj.__setstate__(state)`, not applied.
    Build(Box<Value>, Box<Value>),
}

enum Item {
    Mark,
    Val(Value),
}

/// Run the pickle in `data` and return its top value.
pub fn parse(data: &[u8]) -> Result<Value, String> {
    let mut stack: Vec<Item> = Vec::new();
    let mut memo: HashMap<u64, Value> = HashMap::new();
    let mut pos = 0usize;
    let err = |pos: usize, op: u8, msg: &str| format!("byte {pos}: opcode {:?} ({op:#04x}): {msg}", op as char);
    while pos < data.len() {
        let at = pos;
        let op = data[pos];
        pos += 1;
        let line = |pos: &mut usize| -> Result<&[u8], String> {
            let end = data[*pos..].iter().position(|&b| b == b'\n').ok_or_else(|| err(at, op, "unterminated line"))?;
            let s = &data[*pos..*pos + end];
            *pos += end + 1;
            Ok(s)
        };
        let take = |pos: &mut usize, n: usize| -> Result<&[u8], String> {
            if *pos + n > data.len() {
                return Err(err(at, op, "truncated"));
            }
            let s = &data[*pos..*pos + n];
            *pos += n;
            Ok(s)
        };
        let pop_mark = |stack: &mut Vec<Item>| -> Result<Vec<Value>, String> {
            let m = stack.iter().rposition(|i| matches!(i, Item::Mark)).ok_or_else(|| err(at, op, "no mark on the stack"))?;
            let items = stack.split_off(m + 1);
            stack.pop();
            Ok(items.into_iter().map(|i| if let Item::Val(v) = i { v } else { unreachable!() }).collect())
        };
        let pop = |stack: &mut Vec<Item>| -> Result<Value, String> {
            match stack.pop() {
                Some(Item::Val(v)) => Ok(v),
                _ => Err(err(at, op, "stack underflow")),
            }
        };
        match op {
            b'.' => return pop(&mut stack),
            0x80 => {
                take(&mut pos, 1)?; // PROTO
            }
            b'(' => stack.push(Item::Mark),
            b'N' => stack.push(Item::Val(Value::None)),
            0x88 => stack.push(Item::Val(Value::Bool(true))),
            0x89 => stack.push(Item::Val(Value::Bool(false))),
            b'I' => {
                let s = std::str::from_utf8(line(&mut pos)?).map_err(|_| err(at, op, "bad int"))?;
                let v = match s {
                    "00" => Value::Bool(false),
                    "01" => Value::Bool(true),
                    s => Value::Int(s.parse().map_err(|_| err(at, op, "bad int"))?),
                };
                stack.push(Item::Val(v));
            }
            b'L' => {
                let s = std::str::from_utf8(line(&mut pos)?).map_err(|_| err(at, op, "bad long"))?;
                stack.push(Item::Val(Value::Int(s.trim_end_matches('L').parse().map_err(|_| err(at, op, "bad long"))?)));
            }
            b'F' => {
                let s = std::str::from_utf8(line(&mut pos)?).map_err(|_| err(at, op, "bad float"))?;
                stack.push(Item::Val(Value::Float(s.parse().map_err(|_| err(at, op, "bad float"))?)));
            }
            b'J' => stack.push(Item::Val(Value::Int(i32::from_le_bytes(take(&mut pos, 4)?.try_into().unwrap()) as i64))),
            b'K' => stack.push(Item::Val(Value::Int(take(&mut pos, 1)?[0] as i64))),
            b'M' => stack.push(Item::Val(Value::Int(u16::from_le_bytes(take(&mut pos, 2)?.try_into().unwrap()) as i64))),
            b'G' => stack.push(Item::Val(Value::Float(f64::from_be_bytes(take(&mut pos, 8)?.try_into().unwrap())))),
            b'S' => {
                let s = line(&mut pos)?;
                stack.push(Item::Val(Value::Bytes(unescape_repr(s).ok_or_else(|| err(at, op, "bad string literal"))?)));
            }
            b'V' => {
                let s = line(&mut pos)?;
                stack.push(Item::Val(Value::Str(String::from_utf8_lossy(s).into_owned())));
            }
            b'T' | b'U' | b'B' | b'C' | b'X' | 0x8c => {
                let n = match op {
                    b'T' | b'B' | b'X' => u32::from_le_bytes(take(&mut pos, 4)?.try_into().unwrap()) as usize,
                    _ => take(&mut pos, 1)?[0] as usize,
                };
                let bytes = take(&mut pos, n)?.to_vec();
                let v = if matches!(op, b'X' | 0x8c) { Value::Str(String::from_utf8_lossy(&bytes).into_owned()) } else { Value::Bytes(bytes) };
                stack.push(Item::Val(v));
            }
            b']' => stack.push(Item::Val(Value::List(vec![]))),
            b')' => stack.push(Item::Val(Value::Tuple(vec![]))),
            b'}' => stack.push(Item::Val(Value::Dict(vec![]))),
            b'l' => {
                let items = pop_mark(&mut stack)?;
                stack.push(Item::Val(Value::List(items)));
            }
            b't' => {
                let items = pop_mark(&mut stack)?;
                stack.push(Item::Val(Value::Tuple(items)));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(pop(&mut stack)?);
                }
                items.reverse();
                stack.push(Item::Val(Value::Tuple(items)));
            }
            b'd' => {
                let items = pop_mark(&mut stack)?;
                let pairs = items.chunks(2).map(|p| (p[0].clone(), p.get(1).cloned().unwrap_or(Value::None))).collect();
                stack.push(Item::Val(Value::Dict(pairs)));
            }
            b'a' | b'e' => {
                let items = if op == b'a' { vec![pop(&mut stack)?] } else { pop_mark(&mut stack)? };
                match stack.last_mut() {
                    Some(Item::Val(Value::List(l))) => l.extend(items),
                    _ => return Err(err(at, op, "append to a non-list")),
                }
            }
            b's' | b'u' => {
                let items = if op == b's' {
                    let v = pop(&mut stack)?;
                    let k = pop(&mut stack)?;
                    vec![k, v]
                } else {
                    pop_mark(&mut stack)?
                };
                match stack.last_mut() {
                    Some(Item::Val(Value::Dict(d))) => d.extend(items.chunks(2).map(|p| (p[0].clone(), p[1].clone()))),
                    _ => return Err(err(at, op, "setitem on a non-dict")),
                }
            }
            b'p' => {
                let k: u64 = std::str::from_utf8(line(&mut pos)?).ok().and_then(|s| s.parse().ok()).ok_or_else(|| err(at, op, "bad memo key"))?;
                let top = match stack.last() {
                    Some(Item::Val(v)) => v.clone(),
                    _ => return Err(err(at, op, "nothing to memoise")),
                };
                memo.insert(k, top);
            }
            b'q' | b'r' => {
                let k = if op == b'q' { take(&mut pos, 1)?[0] as u64 } else { u32::from_le_bytes(take(&mut pos, 4)?.try_into().unwrap()) as u64 };
                let top = match stack.last() {
                    Some(Item::Val(v)) => v.clone(),
                    _ => return Err(err(at, op, "nothing to memoise")),
                };
                memo.insert(k, top);
            }
            b'g' | b'h' | b'j' => {
                let k = match op {
                    b'g' => std::str::from_utf8(line(&mut pos)?).ok().and_then(|s| s.parse().ok()).ok_or_else(|| err(at, op, "bad memo key"))?,
                    b'h' => take(&mut pos, 1)?[0] as u64,
                    _ => u32::from_le_bytes(take(&mut pos, 4)?.try_into().unwrap()) as u64,
                };
                let v = memo.get(&k).cloned().ok_or_else(|| err(at, op, "unknown memo key"))?;
                stack.push(Item::Val(v));
            }
            b'c' => {
                let module = String::from_utf8_lossy(line(&mut pos)?).into_owned();
                let name = String::from_utf8_lossy(line(&mut pos)?).into_owned();
                stack.push(Item::Val(Value::Global(module, name)));
            }
            b'R' => {
                let args = pop(&mut stack)?;
                let f = pop(&mut stack)?;
                stack.push(Item::Val(Value::Reduce(Box::new(f), Box::new(args))));
            }
            b'b' => {
                let state = pop(&mut stack)?;
                let obj = pop(&mut stack)?;
                stack.push(Item::Val(Value::Build(Box::new(obj), Box::new(state))));
            }
            b'0' => {
                stack.pop();
            }
            b'2' => {
                let top = match stack.last() {
                    Some(Item::Val(v)) => v.clone(),
                    _ => return Err(err(at, op, "nothing to duplicate")),
                };
                stack.push(Item::Val(top));
            }
            _ => return Err(err(at, op, "unsupported opcode")),
        }
    }
    Err("pickle ended without a STOP opcode".into())
}

/// Undo Python's `repr()` of a byte string: `'...'` or `"..."` with `\xNN`, `\n`, `\\`, ... escapes.
fn unescape_repr(s: &[u8]) -> Option<Vec<u8>> {
    let (&q, rest) = s.split_first()?;
    if !(q == b'\'' || q == b'"') || rest.last() != Some(&q) {
        return None;
    }
    let body = &rest[..rest.len() - 1];
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let e = *body.get(i + 1)?;
        i += 2;
        match e {
            b'x' => {
                let hex = std::str::from_utf8(body.get(i..i + 2)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'0'..=b'7' => {
                // Octal escape of up to three digits.
                let mut v = (e - b'0') as u32;
                let mut k = 0;
                while k < 2 && i < body.len() && (b'0'..=b'7').contains(&body[i]) {
                    v = v * 8 + (body[i] - b'0') as u32;
                    i += 1;
                    k += 1;
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
    Some(out)
}

impl Value {
    /// The text of a `str`/`bytes`/`int` value (sensor ids are pickled as any of these).
    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::Str(s) => Some(s.clone()),
            Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Value::Int(i) => Some(i.to_string()),
            _ => None,
        }
    }

    /// A numpy array pickled as `_reconstruct(ndarray, (0,), b'b')` + `BUILD (version, shape,
    /// dtype, fortran, data)`: its shape and values as f32 (float32/float64/int dtypes).
    pub fn ndarray_f32(&self) -> Result<(Vec<usize>, Vec<f32>), String> {
        let Value::Build(obj, state) = self else { return Err("not a numpy array (no BUILD)".into()) };
        match obj.as_ref() {
            Value::Reduce(f, _) if matches!(f.as_ref(), Value::Global(m, n) if m.starts_with("numpy") && n == "_reconstruct") => {}
            _ => return Err("not a numpy array (no numpy _reconstruct)".into()),
        }
        let Value::Tuple(st) = state.as_ref() else { return Err("numpy array state is not a tuple".into()) };
        if st.len() != 5 {
            return Err(format!("numpy array state has {} fields, expected 5", st.len()));
        }
        let shape = match &st[1] {
            Value::Tuple(d) => d.iter().map(|v| if let Value::Int(i) = v { Ok(*i as usize) } else { Err("bad shape".to_string()) }).collect::<Result<Vec<_>, _>>()?,
            _ => return Err("numpy array shape is not a tuple".into()),
        };
        let (kind, big_endian) = dtype_of(&st[2])?;
        if matches!(st[3], Value::Bool(true)) {
            return Err("Fortran-ordered numpy arrays are not supported".into());
        }
        let raw = match &st[4] {
            Value::Bytes(b) => b.clone(),
            Value::Str(s) => s.chars().map(|c| c as u32 as u8).collect(), // Python 3 latin-1 str
            _ => return Err("numpy array data is not a byte string".into()),
        };
        let n: usize = shape.iter().product();
        let values = decode(&kind, big_endian, &raw, n)?;
        Ok((shape, values))
    }
}

/// A pickled `numpy.dtype('f4', 0, 1)` with state `(3, '<', ...)`: its kind (`f4`, `f8`, `i8`, ...)
/// and byte order.
fn dtype_of(v: &Value) -> Result<(String, bool), String> {
    let Value::Build(obj, state) = v else { return Err("numpy dtype without state".into()) };
    let Value::Reduce(_, args) = obj.as_ref() else { return Err("bad numpy dtype".into()) };
    let Value::Tuple(a) = args.as_ref() else { return Err("bad numpy dtype arguments".into()) };
    let kind = a.first().and_then(Value::as_text).ok_or("numpy dtype without a kind")?;
    let big = match state.as_ref() {
        Value::Tuple(s) => s.get(1).and_then(Value::as_text).is_some_and(|o| o == ">"),
        _ => false,
    };
    Ok((kind, big))
}

fn decode(kind: &str, big: bool, raw: &[u8], n: usize) -> Result<Vec<f32>, String> {
    let width = match kind {
        "f4" | "i4" | "u4" => 4,
        "f8" | "i8" | "u8" => 8,
        other => return Err(format!("numpy dtype {other} is not supported")),
    };
    if raw.len() != n * width {
        return Err(format!("numpy array holds {} bytes, its shape needs {}", raw.len(), n * width));
    }
    Ok(raw
        .chunks_exact(width)
        .map(|c| {
            let mut b = c.to_vec();
            if big {
                b.reverse();
            }
            match kind {
                "f4" => f32::from_le_bytes(b.try_into().unwrap()),
                "f8" => f64::from_le_bytes(b.try_into().unwrap()) as f32,
                "i4" => i32::from_le_bytes(b.try_into().unwrap()) as f32,
                "u4" => u32::from_le_bytes(b.try_into().unwrap()) as f32,
                "i8" => i64::from_le_bytes(b.try_into().unwrap()) as f32,
                _ => u64::from_le_bytes(b.try_into().unwrap()) as f32,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol0_containers_and_memo() {
        // pickle.dumps((['a', 1], {'k': 2.5}, 'a'), protocol=0) in Python 2, written by hand.
        let p = b"((lp0\nS'a'\np1\naI1\na(dp2\nS'k'\np3\nF2.5\nsg1\ntp5\n.";
        let v = parse(p).unwrap();
        let Value::Tuple(t) = v else { panic!() };
        assert_eq!(t[0], Value::List(vec![Value::Bytes(b"a".to_vec()), Value::Int(1)]));
        assert_eq!(t[1], Value::Dict(vec![(Value::Bytes(b"k".to_vec()), Value::Float(2.5))]));
        assert_eq!(t[2], Value::Bytes(b"a".to_vec()));
    }

    #[test]
    fn escapes_in_string_literals() {
        assert_eq!(unescape_repr(br"'\x00\x80?\n\\\''").unwrap(), vec![0, 0x80, b'?', b'\n', b'\\', b'\'']);
        assert_eq!(unescape_repr(br"'\000\001'").unwrap(), vec![0, 1]);
    }

    #[test]
    fn errors_name_the_offset() {
        let e = parse(b"(lp0\nZ").unwrap_err();
        assert!(e.starts_with("byte 5:"), "{e}");
    }
}
