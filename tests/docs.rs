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

/// Errors and warnings link to the migration guide by its anchor; the README has that heading,
/// and its table names every provider-identity flag and the chart value that sets it.
#[test]
fn the_migration_guide_anchor_resolves() {
    use akeyless_csi_provider::spec::{MIGRATION_GUIDE, ProviderIdentityFlag};
    let anchor = MIGRATION_GUIDE
        .strip_prefix("README.md#")
        .expect("a README anchor");
    let heading = README
        .lines()
        .find(|l| {
            l.strip_prefix("## ").is_some_and(|h| {
                h.to_lowercase()
                    .chars()
                    .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-')
                    .collect::<String>()
                    .replace(' ', "-")
                    == anchor
            })
        })
        .unwrap_or_else(|| panic!("README has no heading for #{anchor}"));
    let start = README.find(heading).unwrap();
    let section = &README[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    for flag in [
        ProviderIdentityFlag::Aws,
        ProviderIdentityFlag::Gcp,
        ProviderIdentityFlag::Azure,
    ] {
        assert!(
            section.contains(flag.flag()) && section.contains(flag.chart_value()),
            "{flag:?} is not in the migration guide"
        );
    }
}
