//! Item types learned from `/describe-item`, remembered by (gateway list, item name) for the
//! life of the process so later mounts skip the look-up. Bounded.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::spec::ItemType;

pub struct TypeCache {
    types: Mutex<HashMap<(Vec<String>, String), ItemType>>,
    max_entries: usize,
}

impl TypeCache {
    pub fn new(max_entries: usize) -> Self {
        TypeCache {
            types: Mutex::new(HashMap::new()),
            max_entries,
        }
    }

    pub fn get(&self, gateways: &[String], item: &str) -> Option<ItemType> {
        let types = self.types.lock().unwrap_or_else(|p| p.into_inner());
        types.get(&(gateways.to_vec(), item.to_string())).copied()
    }

    pub fn insert(&self, gateways: &[String], item: &str, t: ItemType) {
        let mut types = self.types.lock().unwrap_or_else(|p| p.into_inner());
        if types.len() >= self.max_entries {
            types.clear(); // rare; re-learning costs one describe per item
        }
        types.insert((gateways.to_vec(), item.to_string()), t);
    }
}
