//! Schema fingerprints: the specification's Parsing Canonical Form and its
//! CRC-64-AVRO (Rabin) fingerprint.

use std::collections::HashSet;

use apache_avro::Schema;
use serde_json::Value as Json;

use super::error::CodecError;

const CRC64_EMPTY: u64 = 0xc15d_213a_a4d7_a795;

const fn crc64_table() -> [u64; 256] {
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut fp = i as u64;
        let mut j = 0;
        while j < 8 {
            fp = (fp >> 1) ^ (CRC64_EMPTY & 0u64.wrapping_sub(fp & 1));
            j += 1;
        }
        table[i] = fp;
        i += 1;
    }
    table
}

static CRC64_TABLE: [u64; 256] = crc64_table();

/// The Avro specification's 64-bit Rabin fingerprint (CRC-64-AVRO).
pub fn crc64_avro(bytes: &[u8]) -> u64 {
    bytes.iter().fold(CRC64_EMPTY, |fp, b| {
        (fp >> 8) ^ CRC64_TABLE[((fp ^ u64::from(*b)) & 0xff) as usize]
    })
}

const PRIMITIVES: &[&str] = &[
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

/// The Parsing Canonical Form of a schema, per the Avro specification:
/// primitives in simple form, full names, only `name`, `type`, `fields`,
/// `symbols`, `items`, `values` and `size` (in that order), no white space.
pub fn parsing_canonical_form(schema: &Json) -> Result<String, CodecError> {
    let mut out = String::new();
    let mut defined = HashSet::new();
    pcf(schema, None, &mut defined, &mut out)?;
    Ok(out)
}

/// CRC-64-AVRO of a schema's Parsing Canonical Form.
pub fn fingerprint_json(schema: &Json) -> Result<u64, CodecError> {
    Ok(crc64_avro(parsing_canonical_form(schema)?.as_bytes()))
}

/// CRC-64-AVRO of a parsed schema's Parsing Canonical Form (per the
/// specification, unlike apache-avro's own `fingerprint`).
pub fn fingerprint(schema: &Schema) -> Result<u64, CodecError> {
    let json = serde_json::to_value(schema).map_err(|e| CodecError::CanonicalForm {
        reason: format!("serialise schema: {e}"),
    })?;
    fingerprint_json(&json)
}

fn pcf_err(reason: impl Into<String>) -> CodecError {
    CodecError::CanonicalForm {
        reason: reason.into(),
    }
}

fn push_json_str(out: &mut String, s: &str) {
    // serde_json escapes only `"`, `\` and control characters and writes
    // everything else as UTF-8, which is what the form asks for.
    out.push_str(&Json::String(s.to_owned()).to_string());
}

fn fullname(name: &str, namespace: Option<&str>, enclosing: Option<&str>) -> String {
    if name.contains('.') {
        return name.to_owned();
    }
    match namespace.or(enclosing) {
        Some(ns) if !ns.is_empty() => format!("{ns}.{name}"),
        _ => name.to_owned(),
    }
}

fn resolve_ref(
    name: &str,
    enclosing: Option<&str>,
    defined: &HashSet<String>,
) -> Result<String, CodecError> {
    let qualified = fullname(name, None, enclosing);
    if defined.contains(&qualified) {
        Ok(qualified)
    } else if defined.contains(name) {
        Ok(name.to_owned())
    } else {
        Err(pcf_err(format!("reference to undefined type `{name}`")))
    }
}

fn pcf(
    s: &Json,
    enclosing: Option<&str>,
    defined: &mut HashSet<String>,
    out: &mut String,
) -> Result<(), CodecError> {
    match s {
        Json::String(name) => {
            if PRIMITIVES.contains(&name.as_str()) {
                push_json_str(out, name);
            } else {
                let full = resolve_ref(name, enclosing, defined)?;
                push_json_str(out, &full);
            }
            Ok(())
        }
        Json::Array(branches) => {
            out.push('[');
            for (i, b) in branches.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                pcf(b, enclosing, defined, out)?;
            }
            out.push(']');
            Ok(())
        }
        Json::Object(m) => {
            let ty = m
                .get("type")
                .ok_or_else(|| pcf_err("object without `type`"))?;
            let ty = match ty {
                Json::String(t) => t.as_str(),
                // `{"type": {...}}` wraps another schema.
                other => return pcf(other, enclosing, defined, out),
            };
            match ty {
                t if PRIMITIVES.contains(&t) => {
                    push_json_str(out, t);
                    Ok(())
                }
                "record" | "error" | "enum" | "fixed" => {
                    let name = m
                        .get("name")
                        .and_then(Json::as_str)
                        .ok_or_else(|| pcf_err(format!("{ty} without a `name`")))?;
                    let namespace = m.get("namespace").and_then(Json::as_str);
                    let full = fullname(name, namespace, enclosing);
                    if !defined.insert(full.clone()) {
                        return Err(pcf_err(format!("type `{full}` defined twice")));
                    }
                    out.push_str("{\"name\":");
                    push_json_str(out, &full);
                    out.push_str(",\"type\":");
                    push_json_str(out, ty);
                    let inner_ns = full.rsplit_once('.').map(|(ns, _)| ns.to_owned());
                    match ty {
                        "enum" => {
                            let symbols =
                                m.get("symbols").and_then(Json::as_array).ok_or_else(|| {
                                    pcf_err(format!("enum `{full}` without `symbols`"))
                                })?;
                            out.push_str(",\"symbols\":[");
                            for (i, sym) in symbols.iter().enumerate() {
                                if i > 0 {
                                    out.push(',');
                                }
                                let sym = sym.as_str().ok_or_else(|| {
                                    pcf_err(format!("enum `{full}`: symbol not a string"))
                                })?;
                                push_json_str(out, sym);
                            }
                            out.push(']');
                        }
                        "fixed" => {
                            let size = m.get("size").and_then(Json::as_u64).ok_or_else(|| {
                                pcf_err(format!("fixed `{full}` without a `size`"))
                            })?;
                            out.push_str(&format!(",\"size\":{size}"));
                        }
                        _ => {
                            let fields =
                                m.get("fields").and_then(Json::as_array).ok_or_else(|| {
                                    pcf_err(format!("record `{full}` without `fields`"))
                                })?;
                            out.push_str(",\"fields\":[");
                            for (i, f) in fields.iter().enumerate() {
                                if i > 0 {
                                    out.push(',');
                                }
                                let fname =
                                    f.get("name").and_then(Json::as_str).ok_or_else(|| {
                                        pcf_err(format!("record `{full}`: field without a `name`"))
                                    })?;
                                let ftype = f.get("type").ok_or_else(|| {
                                    pcf_err(format!(
                                        "record `{full}`: field `{fname}` without a `type`"
                                    ))
                                })?;
                                out.push_str("{\"name\":");
                                push_json_str(out, fname);
                                out.push_str(",\"type\":");
                                pcf(ftype, inner_ns.as_deref(), defined, out)?;
                                out.push('}');
                            }
                            out.push(']');
                        }
                    }
                    out.push('}');
                    Ok(())
                }
                "array" => {
                    let items = m
                        .get("items")
                        .ok_or_else(|| pcf_err("array without `items`"))?;
                    out.push_str("{\"type\":\"array\",\"items\":");
                    pcf(items, enclosing, defined, out)?;
                    out.push('}');
                    Ok(())
                }
                "map" => {
                    let values = m
                        .get("values")
                        .ok_or_else(|| pcf_err("map without `values`"))?;
                    out.push_str("{\"type\":\"map\",\"values\":");
                    pcf(values, enclosing, defined, out)?;
                    out.push('}');
                    Ok(())
                }
                // `{"type": "some.Named"}` is a reference.
                name => {
                    let full = resolve_ref(name, enclosing, defined)?;
                    push_json_str(out, &full);
                    Ok(())
                }
            }
        }
        other => Err(pcf_err(format!("not a schema: {other}"))),
    }
}
