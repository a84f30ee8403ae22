//! Reading the reference captures of the official Python client 2.26.1 and comparing
//! our recorded requests with them, field by field.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::server::{Recorded, TEST_KEY};

/// The repository's `fixtures/` folder: the reference records and captures the tests compare
/// with (see `fixtures/README.md`).
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

pub fn captured_path(name: &str) -> PathBuf {
    fixtures_dir().join(format!("tofupilot/captured/{name}.json"))
}

pub fn example_data(name: &str) -> PathBuf {
    // The files attached in the captures are the examples' data files, byte for byte.
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/data")
        .join(name)
}

/// A capture file, kept both as a `Value` and as an order-preserving tree.
pub struct Capture {
    pub name: String,
    pub value: Value,
    pub ordered: Ordered,
}

pub fn load(name: &str) -> Capture {
    let path = captured_path(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read capture {}: {e}", path.display()));
    Capture {
        name: name.to_owned(),
        value: serde_json::from_str(&text).unwrap(),
        ordered: serde_json::from_str(&text).unwrap(),
    }
}

impl Capture {
    pub fn requests(&self) -> &Vec<Value> {
        self.value["requests"].as_array().unwrap()
    }

    pub fn request_json_ordered(&self, index: usize) -> &Ordered {
        self.ordered
            .get("requests")
            .and_then(|r| r.index(index))
            .and_then(|r| r.get("json"))
            .unwrap()
    }
}

/// JSON that keeps the order of object keys (serde_json's `Value` sorts them).
#[derive(Debug, Clone, PartialEq)]
pub enum Ordered {
    Scalar(Value),
    Array(Vec<Ordered>),
    Object(Vec<(String, Ordered)>),
}

impl Ordered {
    pub fn get(&self, key: &str) -> Option<&Ordered> {
        match self {
            Ordered::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn index(&self, i: usize) -> Option<&Ordered> {
        match self {
            Ordered::Array(items) => items.get(i),
            _ => None,
        }
    }

    /// Every object's keys in document order, with the object's path.
    pub fn key_orders(&self) -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        self.collect_orders("$", &mut out);
        out
    }

    fn collect_orders(&self, path: &str, out: &mut Vec<(String, Vec<String>)>) {
        match self {
            Ordered::Scalar(_) => {}
            Ordered::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    item.collect_orders(&format!("{path}[{i}]"), out);
                }
            }
            Ordered::Object(entries) => {
                out.push((
                    path.to_owned(),
                    entries.iter().map(|(k, _)| k.clone()).collect(),
                ));
                for (k, v) in entries {
                    v.collect_orders(&format!("{path}.{k}"), out);
                }
            }
        }
    }
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(Value::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(Value::from(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(Value::from(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(Value::from(v)))
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(Value::Null))
            }
            fn visit_none<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(Value::Null))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Ordered::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry()? {
                    entries.push((k, v));
                }
                Ok(Ordered::Object(entries))
            }
        }
        d.deserialize_any(V)
    }
}

/// Headers that legitimately differ between two HTTP stacks (or carry per-run
/// values): the host's port, the body length, the user agent, and the transport
/// defaults of Python's `requests` (`Accept-Encoding: gzip, deflate` — we do not
/// decompress, so we do not offer it — and `Connection: keep-alive`, implicit in
/// HTTP/1.1).
const TRANSPORT_HEADERS: [&str; 5] = [
    "host",
    "content-length",
    "user-agent",
    "accept-encoding",
    "connection",
];

/// Per-comparison allowances.
#[derive(Default, Clone)]
pub struct Allow {
    /// Body keys (anywhere) whose values may differ (checked for type only).
    pub vary: Vec<&'static str>,
    /// Expected raw bodies of binary requests (PUT), by request index.
    pub binary: Vec<(usize, Vec<u8>)>,
    /// Binary bodies may differ in size from the capture's (another file was sent).
    pub any_binary_size: bool,
}

/// Replaces what legitimately differs with placeholders, checking its shape.
pub fn normalise(value: &mut Value, allow: &Allow, ours: bool, at: &str) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let here = format!("{at}.{k}");
                match k.as_str() {
                    "client" if v.is_string() => {
                        let want = if ours { "tofu" } else { "Python" };
                        assert_eq!(v, want, "{here}");
                        *v = Value::from("<client>");
                    }
                    "client_version" if v.is_string() => {
                        let want = if ours {
                            tofu_upload::CLIENT_VERSION
                        } else {
                            "2.26.1"
                        };
                        assert_eq!(v, want, "{here}");
                        *v = Value::from("<client_version>");
                    }
                    "upload_id" | "run_id" => {
                        assert!(v.as_str().is_some_and(|s| !s.is_empty()), "{here}: {v}");
                        *v = Value::from("<id>");
                    }
                    "timestamp" => {
                        let s = v.as_str().unwrap_or_else(|| panic!("{here}: {v}"));
                        assert!(is_log_timestamp(s), "{here}: {s}");
                        *v = Value::from("<timestamp>");
                    }
                    key if allow.vary.contains(&key) => {
                        *v = Value::from(format!("<{} {key}>", type_name(v)));
                    }
                    _ => normalise(v, allow, ours, &here),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                normalise(item, allow, ours, &format!("{at}[{i}]"));
            }
        }
        _ => {}
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `2026-11-25T14:53:08.639Z`
pub fn is_log_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// Normalises the path of a presigned upload (`/_storage/<id>`).
fn normalise_path(path: &str) -> String {
    match path.strip_prefix("/_storage/") {
        Some(id) if !id.is_empty() => "/_storage/<id>".to_owned(),
        _ => path.to_owned(),
    }
}

/// Checks our recorded requests against the capture's, one by one.
pub fn assert_requests_match(capture: &Capture, ours: &[Recorded], allow: &Allow) {
    let theirs = capture.requests();
    assert_eq!(
        ours.len(),
        theirs.len(),
        "{}: request count; ours: {:?}",
        capture.name,
        ours.iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>()
    );
    for (i, (mine, want)) in ours.iter().zip(theirs).enumerate() {
        assert_request_matches(capture, i, mine, want, allow);
    }
}

pub fn assert_request_matches(
    capture: &Capture,
    i: usize,
    mine: &Recorded,
    want: &Value,
    allow: &Allow,
) {
    let ctx = format!(
        "{} request #{i} ({} {})",
        capture.name, want["method"], want["path"]
    );
    assert_eq!(
        mine.method,
        want["method"].as_str().unwrap(),
        "{ctx}: method"
    );
    assert_eq!(
        normalise_path(&mine.path),
        normalise_path(want["path"].as_str().unwrap()),
        "{ctx}: path"
    );

    // Query: {"key": ["value", ...]}
    let mut want_query: Vec<(String, String)> = want["query"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(k, vs)| {
            vs.as_array()
                .unwrap()
                .iter()
                .map(move |v| (k.clone(), v.as_str().unwrap().to_owned()))
        })
        .collect();
    let mut my_query = mine.query.clone();
    want_query.sort();
    my_query.sort();
    assert_eq!(my_query, want_query, "{ctx}: query");

    // Headers, minus the transport ones.
    let want_headers: Vec<(String, String)> = want["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap().to_owned()))
        .filter(|(k, _)| !TRANSPORT_HEADERS.contains(&k.as_str()))
        .collect();
    for (name, value) in &want_headers {
        let got = mine
            .header(name)
            .unwrap_or_else(|| panic!("{ctx}: header {name} missing; ours: {:?}", mine.headers));
        if name == "authorization" {
            assert_eq!(value, "Bearer <redacted>", "{ctx}");
            assert_eq!(got, format!("Bearer {TEST_KEY}"), "{ctx}: authorization");
        } else {
            assert_eq!(got, value, "{ctx}: header {name}");
        }
    }
    for (name, _) in &mine.headers {
        assert!(
            TRANSPORT_HEADERS.contains(&name.as_str())
                || want_headers.iter().any(|(n, _)| n == name),
            "{ctx}: extra header {name}"
        );
    }

    // Body.
    match want["body_kind"].as_str().unwrap() {
        "json" => {
            let mut theirs = want["json"].clone();
            let mut mine_json: Value = serde_json::from_slice(&mine.body)
                .unwrap_or_else(|e| panic!("{ctx}: our body is not JSON: {e}"));
            normalise(&mut theirs, allow, false, "$");
            normalise(&mut mine_json, allow, true, "$");
            assert_eq!(
                mine_json, theirs,
                "{ctx}: body\nours:   {}\ntheirs: {}",
                mine_json, theirs
            );
            // Same keys in the same order, at every level.
            let my_order: Ordered = serde_json::from_slice(&mine.body).unwrap();
            assert_eq!(
                my_order.key_orders(),
                capture.request_json_ordered(i).key_orders(),
                "{ctx}: key order"
            );
        }
        "binary" => {
            if !allow.any_binary_size {
                assert_eq!(
                    mine.body.len() as u64,
                    want["body_size"].as_u64().unwrap(),
                    "{ctx}: body size"
                );
            }
            if let Some((_, bytes)) = allow.binary.iter().find(|(n, _)| *n == i) {
                assert!(mine.body == *bytes, "{ctx}: body bytes differ");
            }
        }
        "empty" => assert!(mine.body.is_empty(), "{ctx}: body should be empty"),
        other => panic!("{ctx}: unknown body kind {other}"),
    }
}
