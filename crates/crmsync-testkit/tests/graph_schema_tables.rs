//! Checks every table of `crmsync_testkit::graph::schema` against the Graph CSDL subset in
//! `../shared/reference/api/` (present in CI); skips with a message when it is absent. The CSDL is
//! read with a small tag scanner (it is a flat, machine-written file).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crmsync_testkit::graph::schema::{EdmType, GRAPH_TYPES};

#[derive(Debug, Default)]
struct CsdlType {
    base: Option<String>,
    props: BTreeMap<String, String>,
    nav: BTreeMap<String, String>,
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let at = tag.find(&key)? + key.len();
    let end = tag[at..].find('"')?;
    Some(tag[at..at + end].to_owned())
}

fn parse(text: &str) -> (BTreeMap<String, CsdlType>, BTreeMap<String, Vec<String>>) {
    let mut types = BTreeMap::new();
    let mut enums: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<(bool, String)> = None;
    for raw in text.split('<').skip(1) {
        let tag = raw.split('>').next().unwrap_or("");
        let name = tag.split_whitespace().next().unwrap_or("");
        match name {
            "ComplexType" | "EntityType" => {
                let n = attr(tag, "Name").expect("type name");
                types.insert(
                    n.clone(),
                    CsdlType {
                        base: attr(tag, "BaseType")
                            .map(|b| b.trim_start_matches("graph.").to_owned()),
                        ..CsdlType::default()
                    },
                );
                current = if tag.ends_with('/') {
                    None
                } else {
                    Some((false, n))
                };
            }
            "EnumType" => {
                let n = attr(tag, "Name").expect("enum name");
                enums.insert(n.clone(), Vec::new());
                current = Some((true, n));
            }
            "Member" => {
                if let Some((true, n)) = &current {
                    enums.get_mut(n).unwrap().push(attr(tag, "Name").unwrap());
                }
            }
            "Property" | "NavigationProperty" => {
                if let Some((false, n)) = &current {
                    let t = types.get_mut(n).unwrap();
                    let map = if name == "Property" {
                        &mut t.props
                    } else {
                        &mut t.nav
                    };
                    map.insert(attr(tag, "Name").unwrap(), attr(tag, "Type").unwrap());
                }
            }
            "/ComplexType" | "/EntityType" | "/EnumType" => current = None,
            _ => {}
        }
    }
    (types, enums)
}

fn flattened(
    types: &BTreeMap<String, CsdlType>,
    name: &str,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let t = types
        .get(name)
        .unwrap_or_else(|| panic!("{name} is not in the CSDL"));
    let (mut props, mut nav) = match &t.base {
        Some(b) => flattened(types, b),
        None => (BTreeMap::new(), BTreeMap::new()),
    };
    props.extend(t.props.clone());
    nav.extend(t.nav.clone());
    (props, nav)
}

fn csdl_name(ty: EdmType, enums: &BTreeMap<String, Vec<String>>) -> String {
    match ty {
        EdmType::String => "Edm.String".into(),
        EdmType::Boolean => "Edm.Boolean".into(),
        EdmType::Int32 => "Edm.Int32".into(),
        EdmType::Double => "Edm.Double".into(),
        EdmType::DateTimeOffset => "Edm.DateTimeOffset".into(),
        EdmType::Date => "Edm.Date".into(),
        EdmType::TimeOfDay => "Edm.TimeOfDay".into(),
        EdmType::Enum(n, members) => {
            let csdl = enums
                .get(n)
                .unwrap_or_else(|| panic!("enum {n} is not in the CSDL"));
            assert_eq!(csdl.as_slice(), members, "members of enum {n}");
            format!("graph.{n}")
        }
        EdmType::Complex(n) | EdmType::Opaque(n) => format!("graph.{n}"),
        EdmType::Collection(inner) => format!("Collection({})", csdl_name(*inner, enums)),
    }
}

#[test]
fn graph_tables_match_the_csdl() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/reference/api/graph-v1.0-calendar-contacts-subset.csdl.xml");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("skipped: {} is absent", path.display());
        return;
    };
    let (types, enums) = parse(&text);
    let mut checked = 0;
    for t in GRAPH_TYPES {
        let (props, nav) = flattened(&types, t.name);
        let table_structural: Vec<&str> = t
            .properties
            .iter()
            .filter(|p| !p.navigation)
            .map(|p| p.name)
            .collect();
        let mut a = table_structural.clone();
        a.sort_unstable();
        let b: Vec<&str> = props.keys().map(String::as_str).collect();
        assert_eq!(a, b, "structural properties of {}", t.name);
        for p in t.properties {
            let want = if p.navigation {
                nav.get(p.name)
            } else {
                props.get(p.name)
            };
            let want = want.unwrap_or_else(|| panic!("{}.{} is not in the CSDL", t.name, p.name));
            assert_eq!(
                &csdl_name(p.ty, &enums),
                want,
                "type of {}.{}",
                t.name,
                p.name
            );
            checked += 1;
        }
    }
    assert!(checked > 150, "checked {checked} properties");
}
