//! JSON schemas of tool inputs, made acceptable to both protocols.

use serde_json::{Map, Value, json};

/// The schema of a tool's input as a function's `parameters` (or back): an object schema,
/// without `$schema`. Claude Code stamps `"$schema": ".../draft/2020-12/schema"` on every
/// tool, and several OpenAI-compatible servers (Gemini behind Copilot among them) reject
/// schemas that carry it. A missing or non-object schema becomes an empty object schema.
pub(crate) fn tool_parameters(schema: Value) -> Value {
    match schema {
        Value::Object(mut map) => {
            strip_schema_keyword(&mut map);
            map.entry("type").or_insert_with(|| json!("object"));
            Value::Object(map)
        }
        _ => json!({ "type": "object", "properties": {} }),
    }
}

/// Removes `$schema` from a schema object and the subschemas beneath it, leaving
/// property names alone (a property may legitimately be called `$schema`).
fn strip_schema_keyword(schema: &mut Map<String, Value>) {
    schema.remove("$schema");
    for (key, child) in schema.iter_mut() {
        match key.as_str() {
            "properties" | "patternProperties" | "$defs" | "definitions" | "dependentSchemas" => {
                if let Value::Object(named) = child {
                    for sub in named.values_mut() {
                        strip_value(sub);
                    }
                }
            }
            "items"
            | "additionalProperties"
            | "not"
            | "if"
            | "then"
            | "else"
            | "contains"
            | "propertyNames"
            | "unevaluatedItems"
            | "unevaluatedProperties"
            | "additionalItems"
            | "anyOf"
            | "allOf"
            | "oneOf"
            | "prefixItems" => {
                strip_value(child);
            }
            _ => {}
        }
    }
}

/// A subschema position may hold a schema or an array of schemas.
fn strip_value(v: &mut Value) {
    match v {
        Value::Object(map) => strip_schema_keyword(map),
        Value::Array(items) => items.iter_mut().for_each(strip_value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_schema_keyword_but_not_properties_named_so() {
        let out = tool_parameters(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "$schema": {"type": "string"},
                "list": {"type": "array", "items": {"$schema": "x", "type": "string"}},
                "either": {"anyOf": [{"$schema": "x", "type": "null"}]}
            }
        }));
        assert_eq!(
            out,
            json!({"type": "object", "properties": {
                "$schema": {"type": "string"},
                "list": {"type": "array", "items": {"type": "string"}},
                "either": {"anyOf": [{"type": "null"}]}
            }})
        );
    }

    #[test]
    fn fills_in_missing_schemas() {
        assert_eq!(tool_parameters(Value::Null), json!({"type": "object", "properties": {}}));
        assert_eq!(
            tool_parameters(json!({"properties": {}})),
            json!({"type": "object", "properties": {}})
        );
    }
}
