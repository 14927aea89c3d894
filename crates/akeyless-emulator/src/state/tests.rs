use super::grants::pattern_matches;
use super::handle::EmulatorState;
use super::records::Identity;
use crate::items::ItemType;
use crate::items::StoredValue;
use serde_json::json;

#[test]
fn patterns() {
    assert!(pattern_matches("/*", "/a/b"));
    assert!(pattern_matches("/a/*", "/a/b/c"));
    assert!(!pattern_matches("/a/*", "/ab"));
    assert!(pattern_matches("/a/b", "/a/b"));
    assert!(!pattern_matches("/a/b", "/a/b/c"));
    // A `*` not preceded by `/` is literal.
    assert!(!pattern_matches("/a*", "/ab"));
}

#[test]
fn grants_respect_namespaces() {
    let state = EmulatorState::new();
    state.grant_read("p-1", "/team/*", &["ns-a"]);
    let mut id = Identity::access_key("p-1");
    let data = state.lock();
    assert!(!data.can_read(&id, "/team/x"));
    id.namespace = Some("ns-a".into());
    assert!(data.can_read(&id, "/team/x"));
    id.namespace = Some("ns-b".into());
    assert!(!data.can_read(&id, "/team/x"));
    id.access_id = "p-2".into();
    id.namespace = Some("ns-a".into());
    assert!(!data.can_read(&id, "/team/x"));
}

#[test]
fn versions_append_and_type_change_replaces() {
    let state = EmulatorState::new();
    assert_eq!(state.put_static_secret("s", "v1"), 1);
    assert_eq!(state.put_static_secret("/s", "v2"), 2);
    {
        let data = state.lock();
        let item = &data.items["/s"];
        assert_eq!(item.last_version(), 2);
        assert!(matches!(item.version(0).unwrap().value, StoredValue::Static(ref v) if v == "v2"));
        assert!(matches!(item.version(1).unwrap().value, StoredValue::Static(ref v) if v == "v1"));
        assert!(item.version(3).is_none());
    }
    assert_eq!(state.put_rotated_secret("/s", json!({"password": "p"})), 1);
    assert_eq!(
        state.lock().items["/s"].item_type(),
        ItemType::RotatedSecret
    );
    state.delete_item("s");
    assert!(state.lock().items.is_empty());
}
