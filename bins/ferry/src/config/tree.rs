//! Edits of the TOML tree the layers are merged into.

use toml::{Table, Value};

/// Deep merge: tables merge key by key; anything else (arrays included) is replaced.
pub(super) fn merge(base: &mut Table, over: Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Sets a dotted `section.key`, creating the section.
pub(super) fn set(tree: &mut Table, dotted: &str, value: Value) {
    let (section, key) = dotted.split_once('.').unwrap_or(("", dotted));
    if section.is_empty() {
        tree.insert(key.to_owned(), value);
        return;
    }
    let entry = tree
        .entry(section.to_owned())
        .or_insert_with(|| Value::Table(Table::new()));
    if !entry.is_table() {
        *entry = Value::Table(Table::new());
    }
    if let Value::Table(t) = entry {
        t.insert(key.to_owned(), value);
    }
}
