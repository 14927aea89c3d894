//! Item types learned from `/describe-item`, so later mounts skip the look-up.
//!
//! Key: the gateway list, the access ID and the item name. Item names are only unique within
//! one Akeyless account, and the access ID names the account (and the identity whose view of
//! the item was described), so two tenants on the shared `https://api.akeyless.io` never see
//! each other's types. A remembered type is a hint, not a fact: the mount forgets it when the
//! backend disagrees (the item is gone, or the read for that type is refused as invalid), so an
//! item deleted and re-created with another type mounts again on the next mount.

use crate::spec::ItemType;

use super::BoundedMap;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct TypeKey {
    gateways: Vec<String>,
    access_id: String,
    item: String,
}

impl TypeKey {
    fn new(gateways: &[String], access_id: &str, item: &str) -> Self {
        TypeKey {
            gateways: gateways.to_vec(),
            access_id: access_id.to_string(),
            item: item.to_string(),
        }
    }
}

/// Bounded, least recently used out first.
pub struct TypeCache {
    types: BoundedMap<TypeKey, ItemType>,
}

impl TypeCache {
    pub fn new(max_entries: usize) -> Self {
        TypeCache {
            types: BoundedMap::new(max_entries),
        }
    }

    pub fn get(&self, gateways: &[String], access_id: &str, item: &str) -> Option<ItemType> {
        self.types.get(&TypeKey::new(gateways, access_id, item))
    }

    pub fn insert(&self, gateways: &[String], access_id: &str, item: &str, t: ItemType) {
        self.types
            .insert(TypeKey::new(gateways, access_id, item), t);
    }

    /// Forgets the type of `item` (the backend disagreed with it).
    pub fn forget(&self, gateways: &[String], access_id: &str, item: &str) {
        self.types.remove(&TypeKey::new(gateways, access_id, item));
    }

    pub fn len(&self) -> usize {
        self.types.len()
    }

    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_per_account_and_forgettable() {
        let cache = TypeCache::new(10);
        let gw = vec!["https://api.akeyless.io".to_string()];
        cache.insert(&gw, "p-tenant-a", "/db", ItemType::Static);
        assert_eq!(cache.get(&gw, "p-tenant-a", "/db"), Some(ItemType::Static));
        assert_eq!(
            cache.get(&gw, "p-tenant-b", "/db"),
            None,
            "another access ID (account) never sees this type"
        );
        cache.insert(&gw, "p-tenant-b", "/db", ItemType::Rotated);
        assert_eq!(cache.get(&gw, "p-tenant-a", "/db"), Some(ItemType::Static));
        cache.forget(&gw, "p-tenant-a", "/db");
        assert_eq!(cache.get(&gw, "p-tenant-a", "/db"), None);
        assert_eq!(cache.get(&gw, "p-tenant-b", "/db"), Some(ItemType::Rotated));
    }
}
