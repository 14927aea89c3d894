//! Objects → a [`FetchPlan`]: which items need a type look-up, and the fewest backend reads that
//! fetch every object (each item once; static secrets batched into one call per version). Pure.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::error::MountError;
use crate::spec::{ItemType, ObjectSpec, PkiOptions};

/// Items whose objects give no `type` and whose type isn't known yet: each is described once,
/// however many objects read it.
pub(crate) fn untyped_items(
    objects: &[ObjectSpec],
    known: &HashMap<String, ItemType>,
) -> Vec<String> {
    objects
        .iter()
        .filter(|o| o.item_type.is_none() && !known.contains_key(&o.secret_path))
        .map(|o| o.secret_path.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Each object's item type: explicit, or as known (described now or earlier). An explicit type
/// that contradicts what Akeyless said is an error naming the object.
pub(crate) fn resolve_types(
    objects: &[ObjectSpec],
    known: &HashMap<String, ItemType>,
) -> Result<Vec<ItemType>, MountError> {
    objects
        .iter()
        .map(|o| match (o.item_type, known.get(&o.secret_path)) {
            (Some(declared), Some(&actual)) if declared != actual => Err(MountError::invalid(format!(
                "{}: type is {declared}, but the item is a {actual} item in Akeyless; set type: {actual} or remove type",
                o.label()
            ))),
            (Some(t), _) => Ok(t),
            (None, Some(&t)) => Ok(t),
            (None, None) => Err(MountError::internal(format!(
                "{}: item type unknown after look-up",
                o.label()
            ))),
        })
        .collect()
}

/// One backend read. Equal reads are made once per mount.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Read {
    /// Served by a [`StaticBatch`].
    Static {
        name: String,
        version: Option<u32>,
    },
    Rotated {
        name: String,
        version: Option<u32>,
    },
    Certificate {
        name: String,
        version: Option<u32>,
    },
    Dynamic {
        name: String,
        args: Vec<String>,
    },
    Pki {
        issuer: String,
        options: PkiOptions,
        ttl_seconds: Option<u64>,
    },
}

impl Read {
    pub(crate) fn for_object(object: &ObjectSpec, item_type: ItemType) -> Read {
        let name = object.secret_path.clone();
        match item_type {
            ItemType::Static => Read::Static {
                name,
                version: object.version,
            },
            ItemType::Rotated => Read::Rotated {
                name,
                version: object.version,
            },
            ItemType::Certificate => Read::Certificate {
                name,
                version: object.version,
            },
            ItemType::Dynamic => Read::Dynamic {
                name,
                args: object.args.clone(),
            },
            ItemType::Pki => Read::Pki {
                issuer: name,
                options: object.pki.clone(),
                ttl_seconds: object.ttl.map(|t| t.as_secs().max(1)),
            },
        }
    }
}

/// One `/get-secret-value` call: every static item read at `version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StaticBatch {
    pub version: Option<u32>,
    pub names: Vec<String>,
}

/// The backend reads of one mount.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FetchPlan {
    pub static_batches: Vec<StaticBatch>,
    /// Every other read, each once, in object order.
    pub singles: Vec<Read>,
}

impl FetchPlan {
    pub(crate) fn build(objects: &[ObjectSpec], types: &[ItemType]) -> FetchPlan {
        let mut batches: BTreeMap<Option<u32>, BTreeSet<String>> = BTreeMap::new();
        let mut seen = HashSet::new();
        let mut singles = Vec::new();
        for (object, &t) in objects.iter().zip(types) {
            match Read::for_object(object, t) {
                Read::Static { name, version } => {
                    batches.entry(version).or_default().insert(name);
                }
                read => {
                    if seen.insert(read.clone()) {
                        singles.push(read);
                    }
                }
            }
        }
        FetchPlan {
            static_batches: batches
                .into_iter()
                .map(|(version, names)| StaticBatch {
                    version,
                    names: names.into_iter().collect(),
                })
                .collect(),
            singles,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ObjectSpec;

    fn obj(path: &str, file: &str, t: Option<ItemType>, version: Option<u32>) -> ObjectSpec {
        ObjectSpec {
            item_type: t,
            version,
            ..ObjectSpec::new(path, file)
        }
    }

    #[test]
    fn batches_by_version_and_dedupes() {
        let s = Some(ItemType::Static);
        let objects = vec![
            obj("/a", "a1", s, None),
            obj("/a", "a2", s, None),
            obj("/b", "b", s, None),
            obj("/a", "a3", s, Some(2)),
            obj("/c", "c", s, Some(2)),
            obj("/r", "r1", Some(ItemType::Rotated), None),
            obj("/r", "r2", Some(ItemType::Rotated), None),
            obj("/d", "d", Some(ItemType::Dynamic), None),
        ];
        let types = resolve_types(&objects, &HashMap::new()).unwrap();
        let plan = FetchPlan::build(&objects, &types);
        assert_eq!(
            plan.static_batches,
            vec![
                StaticBatch {
                    version: None,
                    names: vec!["/a".into(), "/b".into()]
                },
                StaticBatch {
                    version: Some(2),
                    names: vec!["/a".into(), "/c".into()]
                },
            ]
        );
        assert_eq!(
            plan.singles,
            vec![
                Read::Rotated {
                    name: "/r".into(),
                    version: None
                },
                Read::Dynamic {
                    name: "/d".into(),
                    args: vec![]
                },
            ]
        );
    }

    #[test]
    fn describes_each_unknown_item_once() {
        let objects = vec![
            obj("/a", "a1", None, None),
            obj("/a", "a2", None, None),
            obj("/b", "b", Some(ItemType::Static), None),
            obj("/c", "c", None, None),
        ];
        let known = HashMap::from([("/c".to_string(), ItemType::Certificate)]);
        assert_eq!(untyped_items(&objects, &known), vec!["/a".to_string()]);
        let mut known = known;
        known.insert("/a".into(), ItemType::Static);
        let types = resolve_types(&objects, &known).unwrap();
        assert_eq!(types[3], ItemType::Certificate);
    }

    #[test]
    fn declared_type_must_match_akeyless() {
        let objects = vec![obj("/r", "creds", Some(ItemType::Static), None)];
        let known = HashMap::from([("/r".to_string(), ItemType::Rotated)]);
        let e = resolve_types(&objects, &known).unwrap_err();
        assert!(
            e.message.contains("object \"creds\" (secretPath /r)"),
            "{e}"
        );
        assert!(
            e.message
                .contains("type is static, but the item is a rotated item"),
            "{e}"
        );
    }
}
