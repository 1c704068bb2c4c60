//! `config/waggle.toml` documents every key at its built-in default.

use std::collections::BTreeSet;
use std::path::PathBuf;

use waggle::config::{Settings, Sources, load};

fn documented_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/waggle.toml")
}

/// Dotted paths of every leaf in a JSON tree (an empty table counts as a leaf).
fn leaf_keys(node: &serde_json::Value, prefix: &str, keys: &mut BTreeSet<String>) {
    match node {
        serde_json::Value::Object(fields) if !fields.is_empty() => {
            for (name, child) in fields {
                let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
                leaf_keys(child, &path, keys);
            }
        }
        _ => {
            keys.insert(prefix.to_string());
        }
    }
}

#[test]
fn the_documented_file_sets_every_key_to_its_default() {
    let sources = Sources { file: Some(documented_file()), ..Sources::default() };
    assert_eq!(load(&sources).unwrap(), Settings::default());
}

#[test]
fn the_documented_file_names_every_key() {
    let text = std::fs::read_to_string(documented_file()).unwrap();
    let documented: toml::Table = toml::from_str(&text).unwrap();
    let mut in_file = BTreeSet::new();
    leaf_keys(&serde_json::to_value(documented).unwrap(), "", &mut in_file);
    let mut known = BTreeSet::new();
    leaf_keys(&serde_json::to_value(Settings::default()).unwrap(), "", &mut known);
    // Keys whose default is "unset" are documented as comments.
    let commented: BTreeSet<String> = known
        .iter()
        .filter(|key| !in_file.contains(*key))
        .filter(|key| {
            let leaf = key.rsplit('.').next().unwrap();
            text.contains(&format!("# {leaf} = "))
        })
        .cloned()
        .collect();
    let missing: Vec<_> = known.iter().filter(|k| !in_file.contains(*k) && !commented.contains(*k)).collect();
    assert!(missing.is_empty(), "keys missing from config/waggle.toml: {missing:?}");
}
