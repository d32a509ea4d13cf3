//! Reading JSON the way Go's `encoding/json` reads it into a struct.
//!
//! The registry decides whether a manifest is valid by unmarshalling it into
//! Go structs. To agree with it we mirror the rules that matter: field names
//! match case-insensitively (the last matching key wins), `null` leaves a
//! field at its zero value, a value of the wrong JSON type is an error, an
//! integer field takes only an integer literal, unknown keys are ignored, and
//! invalid UTF-8 inside strings becomes U+FFFD instead of failing.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::{Map, Value};

pub type Result<T> = std::result::Result<T, String>;

/// Parses a whole document. Go accepts invalid UTF-8 in strings (it becomes
/// U+FFFD), so bytes are converted lossily first.
pub fn parse(bytes: &[u8]) -> Result<Value> {
    let text = String::from_utf8_lossy(bytes);
    serde_json::from_str(&text).map_err(|e| format!("invalid JSON: {e}"))
}

/// A JSON object seen as a Go struct.
#[derive(Clone, Copy)]
pub struct Obj<'a>(pub &'a Map<String, Value>);

fn type_error(field: &str, want: &str, got: &Value) -> String {
    let got = match got {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    format!("field {field:?} should be {want}, found {got}")
}

/// Decodes `v` as a struct: `null` is the zero struct (None), anything but an
/// object is an error.
pub fn object<'a>(v: &'a Value, field: &str) -> Result<Option<Obj<'a>>> {
    match v {
        Value::Null => Ok(None),
        Value::Object(m) => Ok(Some(Obj(m))),
        other => Err(type_error(field, "an object", other)),
    }
}

impl<'a> Obj<'a> {
    /// The value Go would assign to struct field `name`: the last key that
    /// equals it ignoring ASCII case. `null` counts as absent.
    pub fn get(&self, name: &str) -> Option<&'a Value> {
        self.0.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v).next_back().filter(|v| !v.is_null())
    }

    pub fn string(&self, name: &str) -> Result<Option<&'a str>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(type_error(name, "a string", other)),
        }
    }

    /// A string field, "" when absent (Go's zero value).
    pub fn string_or_empty(&self, name: &str) -> Result<String> {
        Ok(self.string(name)?.unwrap_or_default().to_string())
    }

    pub fn bool(&self, name: &str) -> Result<bool> {
        match self.get(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(type_error(name, "a boolean", other)),
        }
    }

    /// An integer field (Go int/int64): only integer literals fit.
    pub fn int(&self, name: &str) -> Result<Option<i64>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => {
                n.as_i64().map(Some).ok_or_else(|| format!("field {name:?} is not a 64-bit integer: {n}"))
            }
            Some(other) => Err(type_error(name, "an integer", other)),
        }
    }

    pub fn object(&self, name: &str) -> Result<Option<Obj<'a>>> {
        self.get(name).map_or(Ok(None), |v| object(v, name))
    }

    /// A slice field: `None` when absent or null (Go's nil slice).
    pub fn array(&self, name: &str) -> Result<Option<&'a Vec<Value>>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(other) => Err(type_error(name, "an array", other)),
        }
    }

    /// A `[]T` of structs; null elements are zero structs.
    pub fn objects(&self, name: &str) -> Result<Vec<Option<Obj<'a>>>> {
        self.array(name)?.map_or(Ok(Vec::new()), |a| a.iter().map(|v| object(v, name)).collect())
    }

    pub fn strings(&self, name: &str) -> Result<Vec<String>> {
        let Some(a) = self.array(name)? else {
            return Ok(Vec::new());
        };
        a.iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Null => Ok(String::new()),
                other => Err(type_error(name, "an array of strings", other)),
            })
            .collect()
    }

    /// A `map[string]string` field.
    pub fn string_map(&self, name: &str) -> Result<BTreeMap<String, String>> {
        let Some(m) = self.object(name)? else {
            return Ok(BTreeMap::new());
        };
        m.0.iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Null => Ok((k.clone(), String::new())),
                other => Err(type_error(name, "a map of strings", other)),
            })
            .collect()
    }
}

/// Go's `time.Parse(time.RFC3339, s)`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±hh:mm)`,
/// uppercase `T` and `Z`, no surrounding space, ranges checked.
pub fn parse_go_rfc3339(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(r)?;
        part.iter().all(u8::is_ascii_digit).then(|| part.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut nanos = 0u32;
    if b[i] == b'.' || b[i] == b',' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &b[start..i];
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        nanos = digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')) * 10u32.pow(9 - digits.len() as u32);
    }
    let offset_seconds: i32 = match &b[i..] {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let h = num(i + 1..i + 3)? as i32;
            let m = num(i + 4..i + 6)? as i32;
            if h >= 24 || m >= 60 {
                return None;
            }
            let total = h * 3600 + m * 60;
            if *sign == b'-' {
                -total
            } else {
                total
            }
        }
        _ => return None,
    };
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)?;
    let local = date.and_hms_nano_opt(hour, minute, second, nanos)?;
    let offset = chrono::FixedOffset::east_opt(offset_seconds)?;
    Some(offset.from_local_datetime(&local).single()?.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_names_fold_case_and_last_wins() {
        let v = json!({"mediaType": "a", "MEDIATYPE": "b"});
        let o = object(&v, "").unwrap().unwrap();
        assert_eq!(o.string("mediaType").unwrap(), Some("b"));
    }

    #[test]
    fn types_are_checked_like_go() {
        let v = json!({"schemaVersion": 2.0, "mediaType": 5, "layers": {}, "n": null});
        let o = object(&v, "").unwrap().unwrap();
        assert!(o.int("schemaVersion").is_err());
        assert!(o.string("mediaType").is_err());
        assert!(o.array("layers").is_err());
        assert_eq!(o.string("n").unwrap(), None);
        assert!(object(&json!([1]), "x").is_err());
    }

    #[test]
    fn invalid_utf8_in_strings_is_replaced() {
        let v = parse(b"{\"a\": \"\xff\"}").unwrap();
        assert_eq!(v["a"], "\u{fffd}");
    }
}
