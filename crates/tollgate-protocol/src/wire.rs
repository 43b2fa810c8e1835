//! Serde shapes both APIs share: "a string or an array" content, and `type`-tagged objects
//! whose unknown kinds must survive as raw JSON.

use serde::de::{self, DeserializeOwned, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Content that is either plain text or a list of typed parts (Anthropic blocks, OpenAI
/// content parts).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum TextOr<T> {
    /// A bare string.
    Text(String),
    /// An array of parts.
    List(Vec<T>),
}

impl<T> TextOr<T> {
    /// The parts, a bare string counting as none.
    pub fn list(&self) -> &[T] {
        match self {
            Self::Text(_) => &[],
            Self::List(items) => items,
        }
    }
}

// Written by hand rather than `#[serde(untagged)]` so that an invalid part reports its own
// error instead of "did not match any variant".
impl<'de, T: Deserialize<'de>> Deserialize<'de> for TextOr<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = TextOr<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(TextOr::Text(s.to_owned()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(TextOr::Text(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(TextOr::List(items))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// The `type` tag of a JSON object, if it has a string one.
pub(crate) fn tag_of(v: &Value) -> Option<String> {
    v.get("type").and_then(Value::as_str).map(str::to_owned)
}

/// Deserializes the fields of a tagged object, the tag removed so that a flattened `extra`
/// map does not capture it and serialize it twice.
pub(crate) fn untagged_fields<T: DeserializeOwned, E: de::Error>(v: Value) -> Result<T, E> {
    let v = match v {
        Value::Object(mut m) => {
            m.remove("type");
            Value::Object(m)
        }
        other => other,
    };
    T::deserialize(v).map_err(E::custom)
}

/// Implements `Deserialize` for an enum whose variants are chosen by the `type` tag and whose
/// last variant, `Other(Value)`, keeps any kind not listed. serde's own fallback variants
/// would also swallow a malformed known kind; this reports it.
macro_rules! deserialize_tagged_or_raw {
    ($ty:ident { $($tag:literal => $variant:ident),+ $(,)? }) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let v = serde_json::Value::deserialize(d)?;
                match $crate::wire::tag_of(&v).as_deref() {
                    $(Some($tag) => $crate::wire::untagged_fields(v).map(Self::$variant),)+
                    _ => Ok(Self::Other(v)),
                }
            }
        }
    };
}
pub(crate) use deserialize_tagged_or_raw;

/// Serializes values of this crate's wire types. They have string keys only and no
/// fallible `Serialize` impls, so this cannot fail; `Null` stands in if that ever changes.
pub(crate) fn to_value<T: Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

/// The JSON text of a wire value; see [`to_value`] for why this cannot fail.
pub(crate) fn to_string<T: Serialize>(t: &T) -> String {
    serde_json::to_string(t).unwrap_or_else(|_| "null".to_owned())
}

/// Deserializes a typed view of `value`, found at `at` inside the request body, turning
/// failures into errors that name the parameter from the body's root.
pub(crate) fn view_at<'a, T: Deserialize<'a>>(
    value: &'a Value,
    at: &str,
) -> Result<T, crate::RequestError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().clone();
        crate::RequestError::from_serde_at(at, &path, e.inner())
    })
}
