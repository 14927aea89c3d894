//! Streaming selection from a JSON value: what `key`, a plain-path `jq` and `explode` need,
//! read in one pass without building the rest of the value.
//!
//! A JSON value of many small entries takes about ten times its size as a
//! `serde_json::Value`, and a value may be as large as `--max-response-bytes` (16 MiB): parsing
//! it whole to take one key would cost the provider more than the chart's 128 MiB. Here the
//! memory is that of the selected part (plus one key at a time). Everything is still parsed and
//! checked, at most [`crate::jq::MAX_JSON_DEPTH`] levels deep, so a malformed value fails as it
//! would whole.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::jq::{PathError, PathStep, eval_path};

/// Keys listed when a `key` is missing.
pub(crate) const LISTED_KEYS: usize = 20;

/// Parses all of `raw` with `seed`, refusing trailing characters.
fn parse<'de, S: DeserializeSeed<'de>>(
    raw: &'de [u8],
    seed: S,
) -> Result<S::Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(raw);
    let value = seed.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// Consumes the rest of a map (checking it).
fn drain_map<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Consumes the rest of a sequence (checking it).
fn drain_seq<'de, A: SeqAccess<'de>>(seq: &mut A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Implements the scalar visits of a visitor whose value for any scalar is `$value`.
macro_rules! scalars {
    ($value:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

/// The value at a plain path, as [`crate::jq::eval_path`] would give it from the whole value.
pub(crate) fn path(
    raw: &[u8],
    path: &[PathStep],
) -> Result<Result<Value, PathError>, serde_json::Error> {
    parse(raw, Path(path))
}

struct Path<'a>(&'a [PathStep]);

impl<'de> DeserializeSeed<'de> for Path<'_> {
    type Value = Result<Value, PathError>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        match self.0.split_first() {
            None => Value::deserialize(d).map(Ok),
            Some((step, rest)) => d.deserialize_any(Step { step, rest }),
        }
    }
}

/// One step of a path, then the rest.
struct Step<'a> {
    step: &'a PathStep,
    rest: &'a [PathStep],
}

impl<'de> Visitor<'de> for Step<'_> {
    type Value = Result<Value, PathError>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    scalars!(Err(PathError));

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Ok(Value::Null))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let PathStep::Key(wanted) = self.step else {
            // jaq looks a number up as a key, which a JSON object never has.
            drain_map(&mut map)?;
            return Ok(Ok(Value::Null));
        };
        // Like a parsed object, the last of duplicate keys wins.
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == *wanted {
                found = Some(map.next_value_seed(Path(self.rest))?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found.unwrap_or(Ok(Value::Null)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let index = match self.step {
            PathStep::Key(_) => {
                drain_seq(&mut seq)?;
                return Ok(Err(PathError));
            }
            PathStep::Index(i) => *i,
        };
        let Ok(wanted) = usize::try_from(index) else {
            // Counted from the end: the length is needed first, so this array is read whole.
            let mut items = Vec::new();
            while let Some(item) = seq.next_element::<Value>()? {
                items.push(item);
            }
            let array = Value::Array(items);
            return Ok(eval_path(std::slice::from_ref(self.step), &array)
                .and_then(|v| eval_path(self.rest, &v).map(std::borrow::Cow::into_owned)));
        };
        let mut found = None;
        let mut position = 0usize;
        loop {
            if position == wanted {
                match seq.next_element_seed(Path(self.rest))? {
                    Some(v) => found = Some(v),
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            position = position.saturating_add(1);
        }
        Ok(found.unwrap_or(Ok(Value::Null)))
    }
}

/// What a top-level `key` finds.
#[derive(Debug, PartialEq)]
pub(crate) enum Key {
    Found(Value),
    /// The value is an object without the key: its first keys, and whether it has more.
    Missing {
        keys: Vec<String>,
        more: bool,
    },
    NotAnObject,
}

/// The top-level key `key` of the value.
pub(crate) fn key(raw: &[u8], key: &str) -> Result<Key, serde_json::Error> {
    parse(raw, KeySeed(key))
}

struct KeySeed<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    scalars!(Key::NotAnObject);

    fn visit_unit<E: de::Error>(self) -> Result<Key, E> {
        Ok(Key::NotAnObject)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Key, A::Error> {
        drain_seq(&mut seq)?;
        Ok(Key::NotAnObject)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Key, A::Error> {
        let mut found = None;
        // The first keys in sorted order, as a parsed object would list them.
        let mut keys = std::collections::BTreeSet::new();
        let mut more = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == self.0 {
                found = Some(map.next_value::<Value>()?);
                continue;
            }
            map.next_value::<IgnoredAny>()?;
            if found.is_none() {
                keys.insert(key);
                if keys.len() > LISTED_KEYS {
                    keys.pop_last();
                    more = true;
                }
            }
        }
        Ok(match found {
            Some(v) => Key::Found(v),
            None => Key::Missing {
                keys: keys.into_iter().collect(),
                more,
            },
        })
    }
}

/// The entries `explode` writes.
#[derive(Debug, PartialEq)]
pub(crate) enum Entries {
    /// Sorted by key; the last of duplicate keys wins.
    Found(BTreeMap<String, Value>),
    /// More than the limit: how many keys the object has (duplicates counted).
    TooMany(usize),
    NotAnObject,
}

/// The top-level entries of the value, when it is an object of at most `max` keys; the values
/// of a larger one are never built.
pub(crate) fn entries(raw: &[u8], max: usize) -> Result<Entries, serde_json::Error> {
    parse(raw, EntriesSeed(max))
}

struct EntriesSeed(usize);

impl<'de> DeserializeSeed<'de> for EntriesSeed {
    type Value = Entries;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Entries, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EntriesSeed {
    type Value = Entries;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    scalars!(Entries::NotAnObject);

    fn visit_unit<E: de::Error>(self) -> Result<Entries, E> {
        Ok(Entries::NotAnObject)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Entries, A::Error> {
        drain_seq(&mut seq)?;
        Ok(Entries::NotAnObject)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
        let mut entries = BTreeMap::new();
        let mut count = 0usize;
        while let Some(key) = map.next_key::<String>()? {
            count = count.saturating_add(1);
            if count > self.0 {
                entries.clear();
                map.next_value::<IgnoredAny>()?;
            } else {
                entries.insert(key, map.next_value::<Value>()?);
            }
        }
        Ok(if count > self.0 {
            Entries::TooMany(count)
        } else {
            Entries::Found(entries)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jq::plain_path;
    use serde_json::json;

    const VALUES: &[&str] = &[
        "null",
        "1",
        "\"text\"",
        "true",
        "[]",
        "{}",
        r#"{"a":{"b":"x","c":[1,2.5,{"d":true}]},"a b":1,"if":[null],"a":{"b":"last wins"}}"#,
        r#"{"a":null,"z":{"y":[[1,2],[3]]}}"#,
        r#"[1,[2,3],{"a":"in array"},null]"#,
        r#"{"a":[10,20,30],"b":"s"}"#,
        r#"{"esc\"aped":1,"\u0061":"unicode a"}"#,
    ];

    #[test]
    fn paths_agree_with_the_whole_value() {
        let paths = [
            ".",
            ".a",
            ".a.b",
            ".a.c[2].d",
            ".a.c[-1]",
            ".a.c[-4]",
            ".a[0]",
            ".a[-1]",
            ".[1][0]",
            ".[-1]",
            ".[-2].a",
            ".[9]",
            ".[\"a b\"]",
            ".if[0]",
            ".z.y[0][1]",
            ".z.y[-1][-1]",
            ".b.c",
            ".a.b.c",
            ".missing",
        ];
        for raw in VALUES {
            let whole: Value = serde_json::from_str(raw).unwrap();
            for expr in paths {
                let steps = plain_path(expr).unwrap();
                let streamed = path(raw.as_bytes(), &steps).unwrap();
                let parsed = eval_path(&steps, &whole).map(std::borrow::Cow::into_owned);
                assert_eq!(streamed, parsed, "{expr} on {raw}");
            }
        }
    }

    #[test]
    fn keys_and_entries_agree_with_the_whole_value() {
        for raw in VALUES {
            let whole: Value = serde_json::from_str(raw).unwrap();
            for k in ["a", "a b", "missing", "esc\"aped"] {
                let expected = match &whole {
                    Value::Object(map) => match map.get(k) {
                        Some(v) => Key::Found(v.clone()),
                        None => Key::Missing {
                            keys: map.keys().take(LISTED_KEYS).cloned().collect(),
                            more: map.len() > LISTED_KEYS,
                        },
                    },
                    _ => Key::NotAnObject,
                };
                assert_eq!(key(raw.as_bytes(), k).unwrap(), expected, "{k} of {raw}");
            }
            let expected = match &whole {
                Value::Object(map) => Entries::Found(map.clone().into_iter().collect()),
                _ => Entries::NotAnObject,
            };
            assert_eq!(entries(raw.as_bytes(), 100).unwrap(), expected, "{raw}");
        }
    }

    #[test]
    fn missing_keys_list_the_first_twenty_in_order() {
        let raw: String = format!(
            "{{{}}}",
            (0..30)
                .rev()
                .map(|i| format!("\"k{i:02}\":{i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let Key::Missing { keys, more } = key(raw.as_bytes(), "nope").unwrap() else {
            panic!()
        };
        assert!(more);
        assert_eq!(keys.len(), LISTED_KEYS);
        assert_eq!(keys[0], "k00");
        assert_eq!(keys[19], "k19");
    }

    #[test]
    fn large_objects_are_counted_not_built() {
        let raw: String = format!(
            "{{{}}}",
            (0..5000)
                .map(|i| format!("\"k{i}\":[{i}]"))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(
            entries(raw.as_bytes(), 4999).unwrap(),
            Entries::TooMany(5000)
        );
        let Entries::Found(all) = entries(raw.as_bytes(), 5000).unwrap() else {
            panic!()
        };
        assert_eq!(all.len(), 5000);
        assert_eq!(all["k42"], json!([42]));
    }

    #[test]
    fn malformed_and_deep_values_fail_as_they_would_whole() {
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200_000), "]".repeat(200_000));
        for raw in [
            "{\"a\":1",
            "{\"a\":1}x",
            "{\"a\":1,\"b\":[1,}",
            "[1,2",
            "",
            "{\"a\":1}{}",
            deep.as_str(),
        ] {
            let whole = serde_json::from_str::<Value>(raw).unwrap_err();
            let steps = plain_path(".a").unwrap();
            for e in [
                path(raw.as_bytes(), &steps).unwrap_err(),
                key(raw.as_bytes(), "a").unwrap_err(),
                entries(raw.as_bytes(), 10).unwrap_err(),
            ] {
                assert_eq!(e.classify(), whole.classify(), "{raw:.40}");
                assert_eq!(
                    crate::jq::is_too_deep(&e),
                    crate::jq::is_too_deep(&whole),
                    "{raw:.40}"
                );
            }
        }
    }
}
