//! The README's SecretProviderClass reference is checked against the code: every parameter and
//! object field the parser accepts is documented, and nothing documented is unknown to it.

use std::collections::BTreeSet;

use akeyless_csi_provider::spec::OBJECT_FIELDS;
use akeyless_csi_provider::spec::keys;

const README: &str = include_str!("../README.md");

/// The backticked names in the first column of the table under `heading`, up to the next heading.
fn first_column(heading: &str) -> BTreeSet<String> {
    let start = README
        .find(heading)
        .unwrap_or_else(|| panic!("README has no {heading:?} section"));
    let body = &README[start + heading.len()..];
    let end = body.find("\n#").unwrap_or(body.len());
    let mut names = BTreeSet::new();
    for line in body[..end].lines() {
        let Some(cell) = line.strip_prefix("| ").and_then(|l| l.split(" |").next()) else {
            continue;
        };
        for part in cell.split(',') {
            let part = part.trim();
            if let Some(name) = part.strip_prefix('`').and_then(|p| p.strip_suffix('`')) {
                names.insert(name.to_string());
            }
        }
    }
    names
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn readme_documents_exactly_the_accepted_parameters() {
    let documented = first_column("\n## SecretProviderClass parameters\n");
    let mut accepted = set(keys::ALL);
    accepted.insert(keys::OBJECTS.to_string());
    assert_eq!(
        documented, accepted,
        "README parameter table vs spec::keys::ALL (+ objects)"
    );
}

#[test]
fn readme_documents_exactly_the_accepted_object_fields() {
    let documented = first_column("\n## Objects\n");
    assert_eq!(
        documented,
        set(OBJECT_FIELDS),
        "README objects table vs spec::OBJECT_FIELDS"
    );
}
