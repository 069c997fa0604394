//! Micro-ops as written, and what a workload makes of them: the one place both readers of
//! transactions ([`super::txn_history`] over parsed operations, [`super::read_txn_jsonl`] over
//! JSON text) turn `["append",k,v]` into a [`Mop`], number string keys and guess the workload.
//!
//! A micro-op is first read as a [`RawMop`], which says nothing about the workload, either from a
//! `serde_json::Value` or straight from JSON text (no `Value` tree: that is what makes the
//! streaming reader cheap). [`convert`] then gives it meaning. Error messages always come from
//! the `Value` reading, so both readers word them alike.

use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use super::history::{Elem, Key, Mop, ReadValue, Txn, TxnWorkload};

/// A micro-op before the workload gives it meaning.
pub(crate) struct RawMop<'a> {
    pub f: Cow<'a, str>,
    key: RawKey<'a>,
    arg: RawArg,
}

enum RawKey<'a> {
    Int(i64),
    Name(Cow<'a, str>),
    Other,
}

enum RawArg {
    Null,
    Int(i64),
    List(Vec<Elem>),
    Other,
}

/// Why a micro-op cannot be read; worded by [`Bad::message`] with the micro-op shown.
enum Bad {
    Shape,
    Function,
    Key,
    Value,
    ListRead,
    Foreign,
}

impl Bad {
    fn message(self, mop: &Value, workload: TxnWorkload) -> String {
        match self {
            Bad::Shape => format!("micro-op {mop} is not [f, key, value]"),
            Bad::Function => format!("micro-op {mop}: its function is not a string"),
            Bad::Key => format!("micro-op {mop}: keys must be integers or strings"),
            Bad::Value => format!("micro-op {mop}: values must be integers"),
            Bad::ListRead if mop[2].is_array() => {
                format!("micro-op {mop}: values must be integers")
            }
            Bad::ListRead => format!("micro-op {mop}: a list read of {}", mop[2]),
            Bad::Foreign => format!(
                "micro-op {mop}: {:?} is not a micro-op of {workload} (it has {})",
                mop[0].as_str().unwrap_or_default(),
                match workload {
                    TxnWorkload::ListAppend => "append and r",
                    TxnWorkload::RwRegister => "w and r",
                }
            ),
        }
    }
}

impl<'a> RawMop<'a> {
    fn from_value(mop: &'a Value) -> Result<RawMop<'a>, Bad> {
        let parts = mop.as_array().filter(|p| p.len() == 3).ok_or(Bad::Shape)?;
        let f = parts[0].as_str().ok_or(Bad::Function)?;
        let key = match &parts[1] {
            Value::String(name) => RawKey::Name(Cow::Borrowed(name)),
            k => k.as_i64().map_or(RawKey::Other, RawKey::Int),
        };
        let arg = match &parts[2] {
            Value::Null => RawArg::Null,
            Value::Array(items) => items
                .iter()
                .map(Value::as_i64)
                .collect::<Option<Vec<_>>>()
                .map_or(RawArg::Other, RawArg::List),
            v => v.as_i64().map_or(RawArg::Other, RawArg::Int),
        };
        Ok(RawMop {
            f: Cow::Borrowed(f),
            key,
            arg,
        })
    }
}

/// The micro-ops of `value` (a transaction's list of them) as `workload` reads them; reads are
/// [`ReadValue::Unknown`] unless `known`. String keys are left to `keys` (see [`KeyTable`]).
pub(crate) fn from_value(
    value: &Value,
    workload: TxnWorkload,
    known: bool,
    txn: usize,
    keys: &mut KeyTable,
) -> Result<Vec<Mop>, String> {
    let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
    let mut mops = Vec::with_capacity(items.len());
    for item in items {
        let mop = RawMop::from_value(item)
            .and_then(|raw| convert(raw, workload, known, (txn, mops.len()), keys))
            .map_err(|bad| bad.message(item, workload))?;
        mops.push(mop);
    }
    Ok(mops)
}

/// Reads JSON text holding a list of micro-ops, without meaning yet. `None` when any of them is
/// malformed: [`from_text`] then asks the `Value` reading for the words.
pub(crate) fn parse_text(text: &str) -> Option<Vec<RawMop<'_>>> {
    serde_json::from_str::<Vec<RawMop<'_>>>(text).ok()
}

/// [`from_value`] for micro-ops already read from `text` by [`parse_text`].
pub(crate) fn from_raw(
    raw: Vec<RawMop<'_>>,
    text: &str,
    workload: TxnWorkload,
    known: bool,
    txn: usize,
    keys: &mut KeyTable,
) -> Result<Vec<Mop>, String> {
    let mut mops = Vec::with_capacity(raw.len());
    for r in raw {
        match convert(r, workload, known, (txn, mops.len()), keys) {
            Ok(mop) => mops.push(mop),
            Err(_) => return Err(explain(text, workload, known, txn)),
        }
    }
    Ok(mops)
}

/// [`from_value`] reading JSON text directly.
pub(crate) fn from_text(
    text: &str,
    workload: TxnWorkload,
    known: bool,
    txn: usize,
    keys: &mut KeyTable,
) -> Result<Vec<Mop>, String> {
    match parse_text(text) {
        Some(raw) => from_raw(raw, text, workload, known, txn, keys),
        None => Err(explain(text, workload, known, txn)),
    }
}

/// The `Value` reading's message for micro-ops the text reading refused.
fn explain(text: &str, workload: TxnWorkload, known: bool, txn: usize) -> String {
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => return format!("the micro-ops are not valid JSON: {e}"),
    };
    match from_value(&value, workload, known, txn, &mut KeyTable::default()) {
        Err(message) => message,
        Ok(_) => format!("micro-ops {value} could not be read"),
    }
}

/// One micro-op as `workload` reads it; `at` is (transaction, position) for string keys.
fn convert(
    raw: RawMop<'_>,
    workload: TxnWorkload,
    known: bool,
    at: (usize, usize),
    keys: &mut KeyTable,
) -> Result<Mop, Bad> {
    let key = keys.key(&raw.key, at).ok_or(Bad::Key)?;
    let int = |arg: &RawArg| match arg {
        RawArg::Int(v) => Ok(*v),
        _ => Err(Bad::Value),
    };
    match (raw.f.as_ref(), workload) {
        ("append", TxnWorkload::ListAppend) => Ok(Mop::Append {
            key,
            value: int(&raw.arg)?,
        }),
        ("w", TxnWorkload::RwRegister) => Ok(Mop::Write {
            key,
            value: int(&raw.arg)?,
        }),
        ("r", _) if !known => Ok(Mop::Read {
            key,
            value: ReadValue::Unknown,
        }),
        ("r", TxnWorkload::ListAppend) => {
            let list = match raw.arg {
                RawArg::Null => Vec::new(),
                RawArg::List(list) => list,
                // Not a list, or not every element an integer.
                RawArg::Int(_) | RawArg::Other => return Err(Bad::ListRead),
            };
            Ok(Mop::Read {
                key,
                value: ReadValue::List(list),
            })
        }
        ("r", TxnWorkload::RwRegister) => Ok(Mop::Read {
            key,
            value: ReadValue::Register(match raw.arg {
                RawArg::Null => None,
                ref v => Some(int(v)?),
            }),
        }),
        _ => Err(Bad::Foreign),
    }
}

/// Which workload the micro-ops seen so far say: any `append` means list-append, any `w`
/// rw-register; reads alone are guessed as list-append (Elle's default workload).
#[derive(Clone, Copy, Default)]
pub(crate) struct Guess {
    appends: bool,
    writes: bool,
}

impl Guess {
    pub fn see(&mut self, f: &str) {
        match f {
            "append" => self.appends = true,
            "w" => self.writes = true,
            _ => {}
        }
    }

    /// The workload once the micro-ops have said it, `None` while they have not.
    pub fn decided(self) -> Result<Option<TxnWorkload>, String> {
        match (self.appends, self.writes) {
            (true, true) => Err("the history mixes appends (list-append) and writes \
                                 (rw-register); split it, or say which workload with --workload"
                .into()),
            (true, false) => Ok(Some(TxnWorkload::ListAppend)),
            (false, true) => Ok(Some(TxnWorkload::RwRegister)),
            (false, false) => Ok(None),
        }
    }

    /// Whether an `append`, and a `w`, have been seen.
    pub fn seen(self) -> (bool, bool) {
        (self.appends, self.writes)
    }

    pub fn workload(self) -> Result<TxnWorkload, String> {
        Ok(self.decided()?.unwrap_or(TxnWorkload::ListAppend))
    }

    /// Notes the functions of a list of micro-ops given as JSON text, whatever shape they have.
    pub fn see_text(&mut self, text: &str) {
        if let Ok(Functions(fs)) = serde_json::from_str::<Functions>(text) {
            for f in fs.iter().flatten() {
                self.see(f);
            }
        }
    }
}

/// Numbers string keys after the largest integer key the micro-ops use, in order of first
/// appearance (by transaction, then position in it). Readers meet transactions in any order, so
/// a string key gets a placeholder and its number only in [`KeyTable::finish`].
#[derive(Default)]
pub(crate) struct KeyTable {
    largest: Option<Key>,
    by_name: HashMap<String, u32>,
    names: Vec<String>,
    /// (transaction, position, name) of each micro-op with a string key.
    uses: Vec<(u32, u32, u32)>,
}

impl KeyTable {
    fn key(&mut self, raw: &RawKey<'_>, (txn, position): (usize, usize)) -> Option<Key> {
        match raw {
            RawKey::Int(k) => {
                self.largest = Some(self.largest.map_or(*k, |l| l.max(*k)));
                Some(*k)
            }
            RawKey::Name(name) => {
                let id = match self.by_name.get(name.as_ref()) {
                    Some(&id) => id,
                    None => {
                        let id = self.names.len() as u32;
                        self.by_name.insert(name.to_string(), id);
                        self.names.push(name.to_string());
                        id
                    }
                };
                self.uses.push((txn as u32, position as u32, id));
                Some(0)
            }
            RawKey::Other => None,
        }
    }

    /// Gives string keys their numbers in `txns`; the names by number.
    pub fn finish(mut self, txns: &mut [Txn]) -> BTreeMap<Key, String> {
        let mut out = BTreeMap::new();
        if self.uses.is_empty() {
            return out;
        }
        let next = self.largest.unwrap_or(0).saturating_add(1);
        self.uses.sort_unstable();
        let mut number: Vec<Option<Key>> = vec![None; self.names.len()];
        for &(txn, position, id) in &self.uses {
            let key = *number[id as usize].get_or_insert_with(|| {
                let key = next.saturating_add(out.len() as Key);
                out.insert(key, std::mem::take(&mut self.names[id as usize]));
                key
            });
            if let Some(mop) = txns[txn as usize].mops.get_mut(position as usize) {
                match mop {
                    Mop::Append { key: k, .. }
                    | Mop::Write { key: k, .. }
                    | Mop::Read { key: k, .. } => *k = key,
                }
            }
        }
        out
    }
}

// Reading micro-ops from JSON text without building `Value`s.

impl<'de: 'a, 'a> Deserialize<'de> for RawMop<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawMop<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a micro-op [f, key, value]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let short = || de::Error::custom("a micro-op has three parts");
                let f: Str<'de> = seq.next_element()?.ok_or_else(short)?;
                let key: RawKey<'de> = seq.next_element()?.ok_or_else(short)?;
                let arg: RawArg = seq.next_element()?.ok_or_else(short)?;
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom("a micro-op has three parts"));
                }
                Ok(RawMop { f: f.0, key, arg })
            }
        }
        d.deserialize_seq(V)
    }
}

/// A string, borrowed from the text when it has no escapes.
pub(crate) struct Str<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// An integer as `Value::as_i64` sees one: anything else, including a float or an integer
/// beyond `i64`, is `None`.
fn as_i64_u64(v: u64) -> Option<i64> {
    i64::try_from(v).ok()
}

impl<'de: 'a, 'a> Deserialize<'de> for RawKey<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawKey<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(RawKey::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(as_i64_u64(v).map_or(RawKey::Other, RawKey::Int))
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(RawKey::Name(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(RawKey::Name(Cow::Owned(s.to_string())))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(RawKey::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(RawKey::Other)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(RawKey::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                IgnoredAny.visit_seq(seq).map(|_| RawKey::Other)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                IgnoredAny.visit_map(map).map(|_| RawKey::Other)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RawArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawArg;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a micro-op's value")
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(RawArg::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(as_i64_u64(v).map_or(RawArg::Other, RawArg::Int))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(RawArg::Null)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(RawArg::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(RawArg::Other)
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(RawArg::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(8));
                while let Some(Elem64(v)) = seq.next_element()? {
                    match v {
                        Some(v) => list.push(v),
                        None => return IgnoredAny.visit_seq(seq).map(|_| RawArg::Other),
                    }
                }
                Ok(RawArg::List(list))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                IgnoredAny.visit_map(map).map(|_| RawArg::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// An element of a list read: an integer, or `None` for anything else.
struct Elem64(Option<i64>);

impl<'de> Deserialize<'de> for Elem64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Elem64(match RawKey::deserialize(d)? {
            RawKey::Int(v) => Some(v),
            _ => None,
        }))
    }
}

/// The function of each element of a list of micro-ops, for guessing the workload: an element
/// that is a list starting with a string has that string, anything else none. Never refuses
/// valid JSON.
struct Functions<'a>(Vec<Option<Cow<'a, str>>>);

impl<'de: 'a, 'a> Deserialize<'de> for Functions<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct First<'a>(Option<Cow<'a, str>>);
        impl<'de: 'a, 'a> Deserialize<'de> for First<'a> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = First<'de>;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("anything")
                    }
                    fn visit_seq<A: SeqAccess<'de>>(
                        self,
                        mut s: A,
                    ) -> Result<First<'de>, A::Error> {
                        let f = match s.next_element::<RawKey<'de>>()? {
                            Some(RawKey::Name(name)) => Some(name),
                            _ => None,
                        };
                        IgnoredAny.visit_seq(s).map(|_| First(f))
                    }
                    fn visit_map<A: de::MapAccess<'de>>(
                        self,
                        m: A,
                    ) -> Result<First<'de>, A::Error> {
                        IgnoredAny.visit_map(m).map(|_| First(None))
                    }
                    fn visit_bool<E>(self, _: bool) -> Result<First<'de>, E> {
                        Ok(First(None))
                    }
                    fn visit_i64<E>(self, _: i64) -> Result<First<'de>, E> {
                        Ok(First(None))
                    }
                    fn visit_u64<E>(self, _: u64) -> Result<First<'de>, E> {
                        Ok(First(None))
                    }
                    fn visit_f64<E>(self, _: f64) -> Result<First<'de>, E> {
                        Ok(First(None))
                    }
                    fn visit_str<E>(self, _: &str) -> Result<First<'de>, E> {
                        Ok(First(None))
                    }
                    fn visit_unit<E>(self) -> Result<First<'de>, E> {
                        Ok(First(None))
                    }
                }
                d.deserialize_any(V)
            }
        }
        let items = Vec::<First<'a>>::deserialize(d)?;
        Ok(Functions(items.into_iter().map(|f| f.0).collect()))
    }
}
