//! Objects → a [`FetchPlan`]: which items need a type look-up, and the fewest backend reads that
//! fetch every object (each item once; static secrets batched into one call per version). Pure.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::error::MountError;
use crate::spec::{ItemType, ObjectSpec};

/// Item types this version can mount (the rest are reported as unsupported, naming the object).
pub const MOUNTABLE: &[ItemType] = &[ItemType::Static];

/// Items whose objects give no `type`: each is described once, however many objects read it.
pub fn untyped_items(objects: &[ObjectSpec]) -> Vec<String> {
    objects
        .iter()
        .filter(|o| o.item_type.is_none())
        .map(|o| o.secret_path.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// One `/get-secret-value` call: every static item read at `version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticBatch {
    pub version: Option<u32>,
    pub names: Vec<String>,
}

/// The backend reads of one mount.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchPlan {
    pub static_batches: Vec<StaticBatch>,
}

/// Each object's item type: explicit, or as described. Unmountable types fail naming the object.
pub fn resolve_types(
    objects: &[ObjectSpec],
    described: &HashMap<String, ItemType>,
) -> Result<Vec<ItemType>, MountError> {
    objects
        .iter()
        .map(|o| {
            let t = o
                .item_type
                .or_else(|| described.get(&o.secret_path).copied())
                .ok_or_else(|| {
                    MountError::internal(format!("{}: item type unknown after look-up", o.label()))
                })?;
            if !MOUNTABLE.contains(&t) {
                return Err(MountError::invalid(format!(
                    "{}: {t} items are not supported by this version of the provider yet; supported: {}",
                    o.label(),
                    MOUNTABLE.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
                )));
            }
            Ok(t)
        })
        .collect()
}

impl FetchPlan {
    /// Groups the objects' reads: one batch per version, each item once.
    pub fn build(objects: &[ObjectSpec], types: &[ItemType]) -> FetchPlan {
        let mut batches: BTreeMap<Option<u32>, BTreeSet<String>> = BTreeMap::new();
        for (object, t) in objects.iter().zip(types) {
            if *t == ItemType::Static {
                batches
                    .entry(object.version)
                    .or_default()
                    .insert(object.secret_path.clone());
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Encoding, ObjectSpec};

    fn obj(path: &str, file: &str, t: Option<ItemType>, version: Option<u32>) -> ObjectSpec {
        ObjectSpec {
            index: 0,
            secret_path: path.into(),
            file_name: file.into(),
            item_type: t,
            version,
            extract: None,
            explode: false,
            encoding: Encoding::Utf8,
            mode: None,
            args: vec![],
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
    }

    #[test]
    fn describes_each_untyped_item_once() {
        let objects = vec![
            obj("/a", "a1", None, None),
            obj("/a", "a2", None, None),
            obj("/b", "b", Some(ItemType::Static), None),
        ];
        assert_eq!(untyped_items(&objects), vec!["/a".to_string()]);
        let described = HashMap::from([("/a".to_string(), ItemType::Static)]);
        assert_eq!(resolve_types(&objects, &described).unwrap().len(), 3);
    }

    #[test]
    fn unsupported_type_names_the_object() {
        let objects = vec![obj("/dyn", "creds", Some(ItemType::Dynamic), None)];
        let e = resolve_types(&objects, &HashMap::new()).unwrap_err();
        assert!(
            e.message.contains("object \"creds\" (secretPath /dyn)"),
            "{e}"
        );
        assert!(e.message.contains("supported: static"), "{e}");
    }
}
