//! The shapes of the schema that serde alone lets through, refused for every key alike: a table
//! only from a table (serde also fills a struct from an array: `safety = [true]`), a word (enum)
//! only from a string (not `state = { off = [] }`), keys only from the table's own list, no
//! control character in any string, no empty list. A wrapper around any serde `Deserializer`.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess};

/// What the strict layer refused, kept for the diagnostics, which add the key and the position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    UnknownKey {
        key: String,
        allowed: &'static [&'static str],
    },
    UnknownValue {
        value: String,
        allowed: &'static [&'static str],
    },
    NotATable {
        found: &'static str,
        keys: &'static [&'static str],
    },
    NotAWord {
        found: &'static str,
        allowed: &'static [&'static str],
    },
    ControlCharacter(char),
    EmptyList,
}

impl fmt::Display for Refusal {
    /// The short form, as serde's error carries it; diagnose.rs writes the one people read.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::UnknownKey { .. } => f.write_str("unknown key"),
            Refusal::UnknownValue { .. } => f.write_str("unknown value"),
            Refusal::NotATable { found, .. } => write!(f, "a table, not {found}"),
            Refusal::NotAWord { found, .. } => write!(f, "a string, not {found}"),
            Refusal::ControlCharacter(_) => f.write_str("a control character in a string"),
            Refusal::EmptyList => f.write_str("an empty list"),
        }
    }
}

/// Where the first refusal of a run is kept.
pub type Refused = Cell<Option<Refusal>>;

fn refuse<E: de::Error>(refused: &Refused, refusal: Refusal) -> E {
    let error = E::custom(&refusal);
    refused.set(Some(refusal));
    error
}

/// What the value at hand must be.
#[derive(Clone, Copy)]
enum Rule {
    /// Anything serde accepts, strings and lists checked.
    Any,
    /// A struct: a table with these keys.
    Table(&'static [&'static str]),
    /// A unit enum: one of these strings.
    Word(&'static [&'static str]),
    /// A struct's key: one of these.
    Key(&'static [&'static str]),
}

/// The strict deserializer: `Strict::new(inner, &refused)`.
pub struct Strict<'r, D> {
    inner: D,
    refused: &'r Refused,
    rule: Rule,
}

impl<'r, D> Strict<'r, D> {
    pub fn new(inner: D, refused: &'r Refused) -> Self {
        Strict {
            inner,
            refused,
            rule: Rule::Any,
        }
    }

    fn checked<V>(&self, delegate: V, rule: Rule) -> Checked<'r, V> {
        Checked {
            delegate,
            refused: self.refused,
            rule,
        }
    }
}

macro_rules! forward_deserialize {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<V: de::Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            let visitor = self.checked(visitor, self.rule);
            self.inner.$method($($arg,)* visitor)
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Strict<'_, D> {
    type Error = D::Error;

    fn deserialize_struct<V: de::Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.checked(visitor, Rule::Table(fields));
        self.inner.deserialize_struct(name, fields, visitor)
    }

    fn deserialize_enum<V: de::Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        // Every enum of the schema is a word: take the string and hand it over as the variant.
        let visitor = self.checked(visitor, Rule::Word(variants));
        self.inner.deserialize_any(visitor)
    }

    forward_deserialize! {
        deserialize_any(); deserialize_bool(); deserialize_i8(); deserialize_i16();
        deserialize_i32(); deserialize_i64(); deserialize_i128(); deserialize_u8();
        deserialize_u16(); deserialize_u32(); deserialize_u64(); deserialize_u128();
        deserialize_f32(); deserialize_f64(); deserialize_char(); deserialize_str();
        deserialize_string(); deserialize_bytes(); deserialize_byte_buf(); deserialize_option();
        deserialize_unit(); deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str); deserialize_seq();
        deserialize_tuple(len: usize); deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map(); deserialize_identifier(); deserialize_ignored_any();
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// A visitor that checks what it is given against its rule before its delegate sees it.
struct Checked<'r, V> {
    delegate: V,
    refused: &'r Refused,
    rule: Rule,
}

impl<V> Checked<'_, V> {
    /// Only `Any` and `Key` take a value that is neither a table nor a string.
    fn shape<E: de::Error>(&self, found: &'static str) -> Result<(), E> {
        match self.rule {
            Rule::Table(keys) => Err(refuse(self.refused, Refusal::NotATable { found, keys })),
            Rule::Word(allowed) => Err(refuse(self.refused, Refusal::NotAWord { found, allowed })),
            Rule::Any | Rule::Key(_) => Ok(()),
        }
    }

    fn text<E: de::Error>(&self, v: &str) -> Result<(), E> {
        if let Some(c) = v.chars().find(|c| c.is_control()) {
            return Err(refuse(self.refused, Refusal::ControlCharacter(c)));
        }
        match self.rule {
            Rule::Table(keys) => Err(refuse(
                self.refused,
                Refusal::NotATable {
                    found: "a string",
                    keys,
                },
            )),
            Rule::Word(allowed) if !allowed.contains(&v) => Err(refuse(
                self.refused,
                Refusal::UnknownValue {
                    value: v.to_owned(),
                    allowed,
                },
            )),
            Rule::Key(allowed) if !allowed.contains(&v) => Err(refuse(
                self.refused,
                Refusal::UnknownKey {
                    key: v.to_owned(),
                    allowed,
                },
            )),
            _ => Ok(()),
        }
    }
}

macro_rules! checked_scalars {
    ($($method:ident($ty:ty) $found:literal;)*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.shape($found)?;
            self.delegate.$method(v)
        }
    )*};
}

impl<'de, V: de::Visitor<'de>> de::Visitor<'de> for Checked<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.delegate.expecting(f)
    }

    checked_scalars! {
        visit_bool(bool) "a boolean"; visit_i8(i8) "an integer"; visit_i16(i16) "an integer";
        visit_i32(i32) "an integer"; visit_i64(i64) "an integer"; visit_i128(i128) "an integer";
        visit_u8(u8) "an integer"; visit_u16(u16) "an integer"; visit_u32(u32) "an integer";
        visit_u64(u64) "an integer"; visit_u128(u128) "an integer"; visit_f32(f32) "a number";
        visit_f64(f64) "a number"; visit_char(char) "a character"; visit_bytes(&[u8]) "bytes";
        visit_byte_buf(Vec<u8>) "bytes";
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<V::Value, E> {
        self.text(v)?;
        match self.rule {
            Rule::Word(_) => self.delegate.visit_enum(v.into_deserializer()),
            _ => self.delegate.visit_str(v),
        }
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<V::Value, E> {
        self.text(v)?;
        match self.rule {
            Rule::Word(_) => self.delegate.visit_enum(v.into_deserializer()),
            _ => self.delegate.visit_borrowed_str(v),
        }
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<V::Value, E> {
        self.text(&v)?;
        match self.rule {
            Rule::Word(_) => self.delegate.visit_enum(v.into_deserializer()),
            _ => self.delegate.visit_string(v),
        }
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.shape("nothing")?;
        self.delegate.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.shape("nothing")?;
        self.delegate.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.delegate.visit_some(Strict::new(d, self.refused))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.delegate
            .visit_newtype_struct(Strict::new(d, self.refused))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.shape("an array")?;
        self.delegate.visit_seq(CheckedSeq {
            inner: seq,
            refused: self.refused,
            seen: 0,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        let keys = match self.rule {
            Rule::Word(allowed) => {
                return Err(refuse(
                    self.refused,
                    Refusal::NotAWord {
                        found: "a table",
                        allowed,
                    },
                ))
            }
            Rule::Table(keys) => Rule::Key(keys),
            Rule::Any | Rule::Key(_) => Rule::Any,
        };
        self.delegate.visit_map(CheckedMap {
            inner: map,
            refused: self.refused,
            keys,
        })
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.shape("an enum")?;
        self.delegate.visit_enum(data)
    }
}

/// A seed whose value is read strictly, under `rule`.
struct CheckedSeed<'r, S> {
    seed: S,
    refused: &'r Refused,
    rule: Rule,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for CheckedSeed<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.seed.deserialize(Strict {
            inner: d,
            refused: self.refused,
            rule: self.rule,
        })
    }
}

struct CheckedSeq<'r, A> {
    inner: A,
    refused: &'r Refused,
    seen: usize,
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for CheckedSeq<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        let seed = CheckedSeed {
            seed,
            refused: self.refused,
            rule: Rule::Any,
        };
        match self.inner.next_element_seed(seed)? {
            None if self.seen == 0 => Err(refuse(self.refused, Refusal::EmptyList)),
            None => Ok(None),
            Some(value) => {
                self.seen += 1;
                Ok(Some(value))
            }
        }
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

struct CheckedMap<'r, A> {
    inner: A,
    refused: &'r Refused,
    /// `Key(list)` for a struct, `Any` for a free-form map.
    keys: Rule,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for CheckedMap<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.inner.next_key_seed(CheckedSeed {
            seed,
            refused: self.refused,
            rule: self.keys,
        })
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.inner.next_value_seed(CheckedSeed {
            seed,
            refused: self.refused,
            rule: Rule::Any,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}
