//! Checks every field table of `crmsync_testkit::schema` against the discovery documents in
//! `../shared/reference/api/` (present in CI); skips with a message when they are absent.

use std::path::PathBuf;

use crmsync_testkit::schema::{CALENDAR_SCHEMAS, FieldType, PEOPLE_SCHEMAS, Schema};
use serde_json::Value;

fn reference_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/api")
}

fn load(name: &str) -> Option<Value> {
    let path = reference_dir().join(name);
    let text = std::fs::read_to_string(&path).ok()?;
    serde_json::from_str(&text).ok()
}

/// Resolves `Event` or `Event.reminders` to the discovery object holding `properties`.
fn resolve<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let mut parts = name.split('.');
    let root = parts.next().unwrap_or_default();
    let mut node = &doc["schemas"][root];
    for p in parts {
        node = &node["properties"][p];
    }
    assert!(node.is_object(), "{name} is not in the discovery document");
    node
}

fn matches(ty: FieldType, disc: &Value) -> Result<(), String> {
    let t = disc.get("type").and_then(Value::as_str);
    let r = disc.get("$ref").and_then(Value::as_str);
    let ok = match ty {
        FieldType::String => t == Some("string"),
        FieldType::Boolean => t == Some("boolean"),
        FieldType::Integer => t == Some("integer"),
        FieldType::Number => t == Some("number"),
        FieldType::Ref(name) => match name.split_once('.') {
            // An inline object of the discovery document.
            Some(_) => t == Some("object") && disc.get("properties").is_some(),
            None => r == Some(name),
        },
        FieldType::Array(item) => {
            return if t == Some("array") {
                matches(*item, &disc["items"])
            } else {
                Err(format!("expected array, got {disc}"))
            };
        }
        FieldType::Map(item) => {
            return match disc.get("additionalProperties") {
                Some(ap) if t == Some("object") => matches(*item, ap),
                _ => Err(format!("expected map, got {disc}")),
            };
        }
        FieldType::Opaque => r.is_some() || t == Some("object") || t == Some("any"),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{ty:?} does not match {disc}"))
    }
}

fn check(doc: &Value, tables: &[Schema]) -> usize {
    let mut checked = 0;
    for schema in tables {
        let node = resolve(doc, schema.name);
        let props = node["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{} has no properties", schema.name));
        let mut table_names: Vec<&str> = schema.fields.iter().map(|f| f.name).collect();
        table_names.sort_unstable();
        let mut disc_names: Vec<&str> = props.keys().map(String::as_str).collect();
        disc_names.sort_unstable();
        assert_eq!(table_names, disc_names, "field names of {}", schema.name);
        for f in schema.fields {
            if let Err(e) = matches(f.ty, &props[f.name]) {
                panic!("{}.{}: {e}", schema.name, f.name);
            }
            // A nested Ref to a dotted table must be that very property.
            if let FieldType::Ref(n) = f.ty
                && n.contains('.')
            {
                assert_eq!(n, format!("{}.{}", schema.name, f.name));
            }
            checked += 1;
        }
        // Every Ref points to a table we have.
        for f in schema.fields {
            let mut ty = f.ty;
            while let FieldType::Array(inner) | FieldType::Map(inner) = ty {
                ty = *inner;
            }
            if let FieldType::Ref(n) = ty {
                assert!(
                    tables.iter().any(|s| s.name == n),
                    "{}.{} refers to missing table {n}",
                    schema.name,
                    f.name
                );
            }
        }
    }
    checked
}

#[test]
fn field_tables_match_the_discovery_documents() {
    let (Some(calendar), Some(people)) = (load("calendar.v3.json"), load("people.v1.json")) else {
        println!(
            "skipped: discovery documents not found under {}",
            reference_dir().display()
        );
        return;
    };
    let n = check(&calendar, CALENDAR_SCHEMAS) + check(&people, PEOPLE_SCHEMAS);
    assert!(n > 200, "checked {n} fields");
    println!("checked {n} fields against the discovery documents");
}
