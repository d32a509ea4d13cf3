//! Reading JSON the way Go's `encoding/json` (go1.19, the toolchain of
//! Debian's 2.8.2) unmarshals it into a struct, streaming: only the fields a
//! decode target names are kept, everything else is skipped unconverted.
//!
//! The rules reproduced (encoding/json decode.go, scanner.go, fold.go):
//! - the whole input is checked first (`checkValid`): nesting up to 10000
//!   levels, only space, tab, CR and LF around values (a BOM is an error),
//!   nothing after the value, no control bytes inside strings;
//! - strings: invalid UTF-8 bytes and lone surrogate escapes become U+FFFD;
//! - a key matches a field exactly, else by Go's case folding (ASCII case,
//!   plus U+017F for `s` and U+212A for `k` in names holding those letters);
//! - each matching key decodes into the field in turn: the last scalar wins,
//!   an object merges into the struct already there, `null` leaves a value
//!   field as it was and sets a slice, map or pointer to nil, and an array
//!   decodes into the slice's existing elements (Go reuses its backing array);
//! - a value of the wrong JSON type (or a number an `int` cannot hold) fails
//!   the whole decode, even when a later key would have set the field.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::{Map, Value};

pub type Result<T> = std::result::Result<T, Error>;

/// Why a document does not decode. Displayed as the text regaudit shows
/// (Go's own wording where Go has one: `cannot unmarshal string into int64`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The syntax check (`checkValid`) refused the input.
    #[error("invalid JSON: {what} at offset {offset}")]
    Syntax { what: &'static str, offset: usize },
    /// A JSON value of a type its Go type cannot take (`UnmarshalTypeError`).
    #[error("cannot unmarshal {found} into {want}")]
    Type { found: &'static str, want: String },
    /// A number its Go type cannot hold.
    #[error("cannot unmarshal number {text} into {want}")]
    Range { text: String, want: &'static str },
    /// The error of field `field` of the struct `strukt`.
    #[error("{strukt}.{field}: {inner}")]
    Field { strukt: String, field: String, inner: Box<Error> },
    /// `Time.UnmarshalJSON` refused this text (without its quotes when it had them).
    #[error("not an RFC 3339 time: {0}")]
    Time(String),
    /// A field of a whole document ([`parse`], [`Obj`]) of the wrong type.
    #[error("field {field:?} should be {want}, found {found}")]
    FieldType { field: String, want: &'static str, found: &'static str },
    /// An integer field whose number is not a 64-bit integer.
    #[error("field {field:?} is not a 64-bit integer: {number}")]
    NotInt64 { field: String, number: String },
    /// A document that passed the syntax check and still does not parse.
    #[error("invalid JSON: {0}")]
    Parse(String),
    /// A decoder's own refusal (a `[]byte` string that is not base64...).
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// The time text `Time.UnmarshalJSON` refused, wherever in the document:
    /// the decode ends there, which some callers report apart.
    pub fn bad_time(&self) -> Option<&str> {
        match self {
            Error::Time(text) => Some(text),
            Error::Field { inner, .. } => inner.bad_time(),
            _ => None,
        }
    }

    /// The same error for a value decoded as `from` in place of the Go type
    /// `to` (a `uint8` read through an `int64`).
    pub fn retyped(self, from: &str, to: &'static str) -> Error {
        match self {
            Error::Type { found, want } if want == from => Error::Type { found, want: to.into() },
            Error::Range { text, want } if want == from => Error::Range { text, want: to },
            other => other,
        }
    }
}

/// Where errors still travel as text (reports, the scheduler state reader).
impl From<Error> for String {
    fn from(e: Error) -> String {
        e.to_string()
    }
}

/// Go's `maxNestingDepth` (encoding/json scanner.go).
pub const MAX_NESTING_DEPTH: usize = 10_000;

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Go's `checkValid` (encoding/json scanner.go): the syntax of the whole
/// input, before anything is decoded.
pub fn check_valid(b: &[u8]) -> Result<()> {
    // true: inside an object, false: inside an array.
    let mut stack: Vec<bool> = Vec::new();
    let mut i = 0;
    let err = |what: &'static str, offset: usize| Err(Error::Syntax { what, offset });
    let skip_space = |i: &mut usize| {
        while *i < b.len() && is_space(b[*i]) {
            *i += 1;
        }
    };
    'value: loop {
        skip_space(&mut i);
        let Some(&c) = b.get(i) else { return err("unexpected end of input", i) };
        match c {
            b'{' | b'[' => {
                stack.push(c == b'{');
                if stack.len() > MAX_NESTING_DEPTH {
                    return err("exceeded max depth", i);
                }
                i += 1;
                skip_space(&mut i);
                match (c, b.get(i)) {
                    (b'{', Some(b'}')) | (b'[', Some(b']')) => {
                        stack.pop();
                        i += 1;
                    }
                    (b'{', Some(b'"')) => {
                        i = scan_string(b, i)?;
                        skip_space(&mut i);
                        if b.get(i) != Some(&b':') {
                            return err("expected ':' after object key", i);
                        }
                        i += 1;
                        continue 'value;
                    }
                    (b'{', _) => return err("expected a string for an object key", i),
                    _ => continue 'value,
                }
            }
            b'"' => i = scan_string(b, i)?,
            b'-' | b'0'..=b'9' => i = scan_number(b, i)?,
            b't' | b'f' | b'n' => {
                let word: &[u8] = match c {
                    b't' => b"true",
                    b'f' => b"false",
                    _ => b"null",
                };
                if !b[i..].starts_with(word) {
                    return err("invalid literal", i);
                }
                i += word.len();
            }
            _ => return err("invalid character looking for a value", i),
        }
        // After a complete value: close containers or move to the next element.
        loop {
            skip_space(&mut i);
            let Some(&in_object) = stack.last() else {
                if i < b.len() {
                    return err("invalid character after top-level value", i);
                }
                return Ok(());
            };
            match (b.get(i), in_object) {
                (Some(b','), true) => {
                    i += 1;
                    skip_space(&mut i);
                    if b.get(i) != Some(&b'"') {
                        return err("expected a string for an object key", i);
                    }
                    i = scan_string(b, i)?;
                    skip_space(&mut i);
                    if b.get(i) != Some(&b':') {
                        return err("expected ':' after object key", i);
                    }
                    i += 1;
                    continue 'value;
                }
                (Some(b','), false) => {
                    i += 1;
                    continue 'value;
                }
                (Some(b'}'), true) | (Some(b']'), false) => {
                    stack.pop();
                    i += 1;
                }
                (None, _) => return err("unexpected end of input", i),
                _ => return err("invalid character after a value", i),
            }
        }
    }
}

/// The offset just past the string starting at `i` (which holds `"`).
fn scan_string(b: &[u8], mut i: usize) -> Result<usize> {
    i += 1;
    loop {
        let Some(&c) = b.get(i) else { return Err(Error::Syntax { what: "unterminated string", offset: i }) };
        match c {
            b'"' => return Ok(i + 1),
            b'\\' => match b.get(i + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                Some(b'u') if b.len() >= i + 6 && b[i + 2..i + 6].iter().all(u8::is_ascii_hexdigit) => i += 6,
                _ => return Err(Error::Syntax { what: "invalid escape", offset: i }),
            },
            0..=0x1f => return Err(Error::Syntax { what: "control character in string", offset: i }),
            _ => i += 1,
        }
    }
}

/// The offset just past the number starting at `i`.
fn scan_number(b: &[u8], mut i: usize) -> Result<usize> {
    let bad = |offset: usize| Err(Error::Syntax { what: "malformed number", offset });
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return bad(i),
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return bad(i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return bad(i);
        }
    }
    Ok(i)
}

/// Bytes as Go's `utf8.DecodeRune` walks them: each byte that does not start
/// a valid sequence becomes one U+FFFD.
fn go_lossy(mut bytes: &[u8], out: &mut String) {
    loop {
        match std::str::from_utf8(bytes) {
            Ok(s) => return out.push_str(s),
            Err(e) => {
                let (good, rest) = bytes.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(good).unwrap_or_default());
                out.push('\u{fffd}');
                bytes = &rest[1..];
            }
        }
    }
}

/// Go's `unquote` (encoding/json decode.go): escapes resolved, invalid UTF-8
/// and lone surrogate escapes become U+FFFD. `raw` is the text between the
/// quotes of a string that passed [`check_valid`].
pub fn unquote(raw: &[u8]) -> Cow<'_, str> {
    if !raw.contains(&b'\\') {
        if let Ok(s) = std::str::from_utf8(raw) {
            return Cow::Borrowed(s);
        }
    }
    let hex4 = |at: usize| -> Option<u32> {
        let h = raw.get(at..at + 4)?;
        u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
    };
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let Some(off) = raw[i..].iter().position(|&c| c == b'\\') else {
            go_lossy(&raw[i..], &mut out);
            break;
        };
        go_lossy(&raw[i..i + off], &mut out);
        i += off;
        let c = raw.get(i + 1).copied().unwrap_or(b'\\');
        i += 2;
        let ch = match c {
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let r = hex4(i).unwrap_or(0xfffd);
                i += 4;
                if (0xd800..0xe000).contains(&r) {
                    // A surrogate: valid only as a high one followed by an escaped low one.
                    let low = (raw.get(i..i + 2) == Some(b"\\u")).then(|| hex4(i + 2)).flatten();
                    match low {
                        Some(lo) if (0xd800..0xdc00).contains(&r) && (0xdc00..0xe000).contains(&lo) => {
                            i += 6;
                            char::from_u32(0x10000 + ((r - 0xd800) << 10) + (lo - 0xdc00)).unwrap_or('\u{fffd}')
                        }
                        _ => '\u{fffd}',
                    }
                } else {
                    char::from_u32(r).unwrap_or('\u{fffd}')
                }
            }
            other => char::from(other),
        };
        out.push(ch);
    }
    Cow::Owned(out)
}

/// Go's `foldFunc` (encoding/json fold.go): whether object key `key` names
/// the field called `name` (ASCII) when it is not an exact match.
pub fn key_folds_to(name: &str, key: &str) -> bool {
    let (name, key) = (name.as_bytes(), key.as_bytes());
    let special = name.iter().any(|b| matches!(b & !0x20, b'K' | b'S'));
    let letter = |b: u8| (b & !0x20).is_ascii_uppercase();
    if special {
        // equalFoldRight: `s`/`k` also match U+017F and U+212A.
        let mut t = key;
        for &sb in name {
            let Some(&tb) = t.first() else { return false };
            if tb < 0x80 {
                if sb != tb && !(letter(sb) && sb & !0x20 == tb & !0x20) {
                    return false;
                }
                t = &t[1..];
                continue;
            }
            let (want, len): (&[u8], usize) = match sb {
                b's' | b'S' => ("\u{17f}".as_bytes(), 2),
                b'k' | b'K' => ("\u{212a}".as_bytes(), 3),
                _ => return false,
            };
            if !t.starts_with(want) {
                return false;
            }
            t = &t[len..];
        }
        t.is_empty()
    } else if name.iter().all(|&b| letter(b)) {
        // simpleLetterEqualFold
        name.len() == key.len() && name.iter().zip(key).all(|(s, t)| s & !0x20 == t & !0x20)
    } else {
        // asciiEqualFold
        name.len() == key.len() && name.iter().zip(key).all(|(&s, &t)| s == t || (letter(s) && s & !0x20 == t & !0x20))
    }
}

/// The kind of JSON value at the cursor, for type errors.
fn kind_name(c: u8) -> &'static str {
    match c {
        b'{' => "object",
        b'[' => "array",
        b'"' => "string",
        b't' | b'f' => "bool",
        b'n' => "null",
        _ => "number",
    }
}

/// A cursor over a document that passed [`check_valid`].
#[derive(Clone)]
pub struct Decoder<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    /// Checks the whole document (Go's `checkValid`) and returns a decoder
    /// at its value.
    pub fn new(b: &'a [u8]) -> Result<Decoder<'a>> {
        check_valid(b)?;
        let mut d = Decoder { b, pos: 0 };
        d.skip_space();
        Ok(d)
    }

    fn skip_space(&mut self) {
        while self.pos < self.b.len() && is_space(self.b[self.pos]) {
            self.pos += 1;
        }
    }

    /// The first byte of the value at the cursor.
    pub fn peek(&self) -> u8 {
        self.b.get(self.pos).copied().unwrap_or(b'n')
    }

    fn type_error(&mut self, want: &str) -> Error {
        Error::Type { found: kind_name(self.peek()), want: want.into() }
    }

    /// Skips the value at the cursor without converting it (iterative: the
    /// nesting may be 10000 deep).
    pub fn skip(&mut self) {
        let mut depth = 0usize;
        loop {
            self.skip_space();
            let Some(&c) = self.b.get(self.pos) else { return };
            match c {
                b'"' => self.pos = scan_string(self.b, self.pos).unwrap_or(self.b.len()),
                b'{' | b'[' => {
                    depth += 1;
                    self.pos += 1;
                }
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    self.pos += 1;
                }
                b',' | b':' => self.pos += 1,
                _ => {
                    while self.pos < self.b.len()
                        && !matches!(self.b[self.pos], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                    {
                        self.pos += 1;
                    }
                }
            }
            if depth == 0 {
                self.skip_space();
                return;
            }
        }
    }

    /// The raw bytes of the scalar at the cursor (number or literal), consumed.
    fn scalar(&mut self) -> &'a [u8] {
        let start = self.pos;
        self.skip();
        let mut end = self.pos;
        while end > start && is_space(self.b[end - 1]) {
            end -= 1;
        }
        &self.b[start..end]
    }

    /// The string at the cursor, consumed.
    fn string_value(&mut self) -> Cow<'a, str> {
        let start = self.pos;
        let end = scan_string(self.b, start).unwrap_or(self.b.len());
        self.pos = end;
        self.skip_space();
        unquote(&self.b[start + 1..end.saturating_sub(1).max(start + 1)])
    }

    /// The raw text of the value at the cursor, quotes included, consumed
    /// (what a Go `UnmarshalJSON` method receives).
    pub fn raw(&mut self) -> &'a [u8] {
        let start = self.pos;
        self.skip();
        let mut end = self.pos;
        while end > start && is_space(self.b[end - 1]) {
            end -= 1;
        }
        &self.b[start..end]
    }

    /// Walks an object: `entry(d, key)` decodes each value. `Ok(false)` for
    /// `null`; any other type is an error.
    pub fn object_entries(
        &mut self,
        what: &str,
        mut entry: impl FnMut(&mut Decoder<'a>, Cow<'a, str>) -> Result<()>,
    ) -> Result<bool> {
        match self.peek() {
            b'n' => {
                self.skip();
                return Ok(false);
            }
            b'{' => {}
            _ => return Err(self.type_error(what)),
        }
        self.pos += 1;
        self.skip_space();
        if self.peek() == b'}' {
            self.pos += 1;
            self.skip_space();
            return Ok(true);
        }
        loop {
            let key = self.string_value();
            self.pos += 1; // ':'
            self.skip_space();
            entry(self, key)?;
            let c = self.peek();
            self.pos += 1;
            self.skip_space();
            if c == b'}' {
                return Ok(true);
            }
        }
    }

    /// Decodes an object into a struct whose JSON field names are `fields`:
    /// `field(d, i)` decodes the value of field `i`; other keys are skipped.
    /// `null` leaves the struct as it is; any other type is an error.
    pub fn struct_fields(
        &mut self,
        what: &str,
        fields: &[&str],
        mut field: impl FnMut(&mut Decoder<'a>, usize) -> Result<()>,
    ) -> Result<()> {
        self.object_entries(what, |d, key| {
            // decode.go object(): an exact name first, else the first that folds.
            let index =
                fields.iter().position(|f| *f == key).or_else(|| fields.iter().position(|f| key_folds_to(f, &key)));
            match index {
                Some(i) => field(d, i).map_err(|e| Error::Field {
                    strukt: what.into(),
                    field: fields[i].into(),
                    inner: Box::new(e),
                }),
                None => {
                    d.skip();
                    Ok(())
                }
            }
        })
        .map(|_| ())
    }

    /// Decodes an array element by element (`element(d, i)`); `None` for
    /// `null`. Any other type is an error.
    fn array_elements(
        &mut self,
        what: &str,
        mut element: impl FnMut(&mut Decoder<'a>, usize) -> Result<()>,
    ) -> Result<Option<usize>> {
        match self.peek() {
            b'n' => {
                self.skip();
                return Ok(None);
            }
            b'[' => {}
            _ => return Err(self.type_error(what)),
        }
        self.pos += 1;
        self.skip_space();
        let mut i = 0;
        if self.peek() == b']' {
            self.pos += 1;
            self.skip_space();
            return Ok(Some(0));
        }
        loop {
            element(self, i)?;
            i += 1;
            let c = self.peek();
            self.pos += 1;
            self.skip_space();
            if c == b']' {
                return Ok(Some(i));
            }
        }
    }
}

/// A value decoded into a Go field of the matching type.
pub trait GoDecode {
    fn go_decode(&mut self, d: &mut Decoder) -> Result<()>;
}

/// Go `string`: a JSON string; `null` leaves it as it was.
impl GoDecode for String {
    fn go_decode(&mut self, d: &mut Decoder) -> Result<()> {
        match d.peek() {
            b'"' => {
                *self = d.string_value().into_owned();
                Ok(())
            }
            b'n' => {
                d.skip();
                Ok(())
            }
            _ => Err(d.type_error("string")),
        }
    }
}

/// Go `int` / `int64` (64-bit): only an integer literal that fits
/// (`strconv.ParseInt`); `null` leaves it as it was.
impl GoDecode for i64 {
    fn go_decode(&mut self, d: &mut Decoder) -> Result<()> {
        match d.peek() {
            b'-' | b'0'..=b'9' => {
                let text = d.scalar();
                let text = std::str::from_utf8(text).unwrap_or_default();
                *self = text.parse().map_err(|_| Error::Range { text: text.into(), want: "int64" })?;
                Ok(())
            }
            b'n' => {
                d.skip();
                Ok(())
            }
            _ => Err(d.type_error("int64")),
        }
    }
}

/// Go `bool`; `null` leaves it as it was.
impl GoDecode for bool {
    fn go_decode(&mut self, d: &mut Decoder) -> Result<()> {
        match d.peek() {
            b't' | b'f' => {
                *self = d.scalar() == b"true";
                Ok(())
            }
            b'n' => {
                d.skip();
                Ok(())
            }
            _ => Err(d.type_error("bool")),
        }
    }
}

/// A Go pointer to a struct: `null` sets it to nil, an object decodes into
/// the struct it points at (allocated when nil).
impl<T: GoDecode + Default> GoDecode for Option<Box<T>> {
    fn go_decode(&mut self, d: &mut Decoder) -> Result<()> {
        if d.peek() == b'n' {
            d.skip();
            *self = None;
            return Ok(());
        }
        let mut inner = self.take().unwrap_or_default();
        let result = inner.go_decode(d);
        *self = Some(inner);
        result
    }
}

/// A Go slice `[]T`, with its backing array: decoding an array into a slice
/// that already holds elements decodes into those elements (decode.go
/// array()), and elements past the length stay in the backing array until it
/// grows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoSlice<T> {
    /// The backing array's elements that were ever set; the rest are zero.
    backing: Vec<T>,
    len: usize,
    cap: usize,
    nil: bool,
}

impl<T> Default for GoSlice<T> {
    fn default() -> Self {
        GoSlice { backing: Vec::new(), len: 0, cap: 0, nil: true }
    }
}

impl<T> GoSlice<T> {
    /// The slice's elements.
    pub fn items(&self) -> &[T] {
        &self.backing[..self.len]
    }

    /// Its elements, by value.
    pub fn into_items(mut self) -> Vec<T> {
        self.backing.truncate(self.len);
        self.backing
    }

    /// Go's `s == nil`.
    pub fn is_nil(&self) -> bool {
        self.nil
    }
}

impl<T: GoDecode + Default> GoDecode for GoSlice<T> {
    fn go_decode(&mut self, d: &mut Decoder) -> Result<()> {
        let this = &mut *self;
        let n = d.array_elements("slice", |d, i| {
            if i >= this.cap {
                // Grow: a new backing array holding the first len elements.
                this.cap = (this.cap + this.cap / 2).max(4);
                this.backing.truncate(this.len);
            }
            if i >= this.len {
                this.len = i + 1;
                if this.backing.len() < this.len {
                    this.backing.push(T::default());
                }
            }
            this.backing[i].go_decode(d)
        })?;
        match n {
            None => *self = GoSlice::default(),
            Some(0) => *self = GoSlice { backing: Vec::new(), len: 0, cap: 0, nil: false },
            Some(n) => {
                self.len = self.len.min(n);
                self.nil = false;
            }
        }
        Ok(())
    }
}

/// A Go `map[string]string` whose entries nobody reads: only its type is
/// checked (`null` and string values fit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StringMapShape;

impl GoDecode for StringMapShape {
    fn go_decode(&mut self, d: &mut Decoder) -> Result<()> {
        match d.peek() {
            b'n' => {
                d.skip();
                Ok(())
            }
            _ => d.object_entries("map[string]string", |d, _| String::new().go_decode(d)).map(|_| ()),
        }
    }
}

/// A Go `[]string` whose elements nobody reads: only its type is checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StringsShape;

impl GoDecode for StringsShape {
    fn go_decode(&mut self, d: &mut Decoder) -> Result<()> {
        d.array_elements("[]string", |d, _| String::new().go_decode(d)).map(|_| ())
    }
}

/// Decodes a whole document into `value`, as `json.Unmarshal` does.
pub fn unmarshal<T: GoDecode>(bytes: &[u8], value: &mut T) -> Result<()> {
    let mut d = Decoder::new(bytes)?;
    value.go_decode(&mut d)
}

/// `json.Unmarshal` into `map[string]interface{}` (libtrust's first look at
/// a schema1 manifest): an object or null, with every number converted to a
/// float64, so a number out of its range is an error.
pub fn unmarshal_any_map(bytes: &[u8]) -> Result<()> {
    let d = Decoder::new(bytes)?;
    match d.peek() {
        b'{' | b'n' => {}
        c => return Err(Error::Type { found: kind_name(c), want: "map[string]interface {}".into() }),
    }
    // Every number outside strings, wherever it is.
    let b = bytes;
    let mut i = d.pos;
    while i < b.len() {
        match b[i] {
            b'"' => i = scan_string(b, i)?,
            b'-' | b'0'..=b'9' => {
                let end = scan_number(b, i)?;
                let text = std::str::from_utf8(&b[i..end]).unwrap_or_default();
                // strconv.ParseFloat: out of range (to ±Inf) is an error; underflow is 0.
                if text.parse::<f64>().map_or(true, f64::is_infinite) {
                    return Err(Error::Range { text: text.into(), want: "float64" });
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// A Go `string` whose value nobody reads: only its type is checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StringShape;

impl GoDecode for StringShape {
    fn go_decode(&mut self, d: &mut Decoder) -> Result<()> {
        String::new().go_decode(d)
    }
}

/// A Go `time.Time` field: go1.19's `Time.UnmarshalJSON` parses the raw JSON
/// text, quotes included, with layout `"` + RFC3339 + `"` (so an escaped
/// character fails); `null` leaves it as it was. Keeps the text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GoTime(pub Option<String>);

impl GoDecode for GoTime {
    fn go_decode(&mut self, d: &mut Decoder) -> Result<()> {
        let raw = d.raw();
        if raw == b"null" {
            return Ok(());
        }
        let text = String::from_utf8_lossy(raw);
        let inner = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).filter(|t| !t.contains(['"', '\\']));
        match inner.and_then(parse_go_rfc3339) {
            Some(_) => {
                self.0 = inner.map(str::to_string);
                Ok(())
            }
            None => Err(Error::Time(inner.unwrap_or(&text).into())),
        }
    }
}

/// go1.19's `time.Parse(time.RFC3339, s)` (time/format.go parse()), the
/// rules of Debian's 2.8.2 build: 4-digit year, 2-digit month, day, minute
/// and second, a 1- or 2-digit hour, an optional fraction after `.` or `,`
/// of any length, then `Z` or `±hh:mm` (any two digits each: go1.19 checks
/// no offset range), nothing after; month, day, hour (<24), minute and
/// second (<60) checked.
pub fn parse_go_rfc3339(s: &str) -> Option<DateTime<Utc>> {
    let mut v = s.as_bytes();
    fn digits(v: &mut &[u8], n: usize) -> Option<u32> {
        let part = v.get(..n)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        *v = &v[n..];
        Some(part.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    }
    fn literal(v: &mut &[u8], c: u8) -> Option<()> {
        (v.first() == Some(&c)).then(|| *v = &v[1..])
    }
    let year = digits(&mut v, 4)?;
    literal(&mut v, b'-')?;
    let month = digits(&mut v, 2)?;
    literal(&mut v, b'-')?;
    let day = digits(&mut v, 2)?;
    literal(&mut v, b'T')?;
    // getnum(value, false): one digit, or two when the second is a digit.
    let hour_len = if v.get(1).is_some_and(u8::is_ascii_digit) { 2 } else { 1 };
    let hour = digits(&mut v, hour_len)?;
    literal(&mut v, b':')?;
    let minute = digits(&mut v, 2)?;
    literal(&mut v, b':')?;
    let second = digits(&mut v, 2)?;
    if !(1..=12).contains(&month) || hour >= 24 || minute >= 60 || second >= 60 {
        return None;
    }
    let mut nanos = 0u32;
    if v.len() >= 2 && matches!(v[0], b'.' | b',') && v[1].is_ascii_digit() {
        let n = 1 + v[1..].iter().take_while(|b| b.is_ascii_digit()).count();
        // parseNanoseconds: the first nine digits count.
        let frac = &v[1..n.min(10)];
        nanos = frac.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')) * 10u32.pow(9 - frac.len() as u32);
        v = &v[n..];
    }
    let offset_seconds: i32 = match v {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hm = [*h1, *h2, *m1, *m2];
            if !hm.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let h = i32::from(h1 - b'0') * 10 + i32::from(h2 - b'0');
            let m = i32::from(m1 - b'0') * 10 + i32::from(m2 - b'0');
            let total = h * 3600 + m * 60;
            if *sign == b'-' {
                -total
            } else {
                total
            }
        }
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)?;
    let local = date.and_hms_nano_opt(hour, minute, second, nanos)?;
    let utc = Utc.from_utc_datetime(&local);
    utc.checked_sub_signed(chrono::Duration::seconds(i64::from(offset_seconds)))
}

// ---------------------------------------------------------------------------
// A whole document as a `serde_json::Value`, for small files whose every
// entry is read (`scheduler-state.json`); manifests and configs stream
// through [`Decoder`] instead.

/// Parses a whole document after Go's syntax check; invalid UTF-8 in
/// strings becomes U+FFFD.
pub fn parse(bytes: &[u8]) -> Result<Value> {
    check_valid(bytes)?;
    let text = String::from_utf8_lossy(bytes);
    serde_json::from_str(&text).map_err(|e| Error::Parse(e.to_string()))
}

/// A JSON object seen as a Go struct.
#[derive(Clone, Copy)]
pub struct Obj<'a>(pub &'a Map<String, Value>);

fn type_error(field: &str, want: &'static str, got: &Value) -> Error {
    let found = match got {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    Error::FieldType { field: field.into(), want, found }
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
                n.as_i64().map(Some).ok_or_else(|| Error::NotInt64 { field: name.into(), number: n.to_string() })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default, Debug)]
    struct Probe {
        media_type: String,
        version: i64,
        inner: Option<Box<Probe>>,
        list: GoSlice<Probe>,
    }

    impl GoDecode for Probe {
        fn go_decode(&mut self, d: &mut Decoder) -> Result<()> {
            d.struct_fields("Probe", &["mediaType", "schemaVersion", "inner", "list"], |d, i| match i {
                0 => self.media_type.go_decode(d),
                1 => self.version.go_decode(d),
                2 => self.inner.go_decode(d),
                _ => self.list.go_decode(d),
            })
        }
    }

    fn probe(s: &str) -> Result<Probe> {
        let mut p = Probe::default();
        unmarshal(s.as_bytes(), &mut p).map(|()| p)
    }

    #[test]
    fn last_key_wins_whatever_its_case() {
        assert_eq!(probe(r#"{"mediaType":"a","MEDIATYPE":"b","mediaType":"c"}"#).unwrap().media_type, "c");
        assert_eq!(probe(r#"{"mediaType":"a","MEDIATYPE":"b"}"#).unwrap().media_type, "b");
        // U+017F folds to s, U+212A to k, only in names that hold those letters.
        assert_eq!(probe("{\"\u{17f}chemaVersion\":2}").unwrap().version, 2);
        assert!(key_folds_to("kind", "\u{212a}IND"));
        assert!(!key_folds_to("mediaType", "medi\u{17f}Type"));
        assert!(!key_folds_to("os.version", "os_version"));
        assert!(key_folds_to("os.version", "OS.VER\u{17f}ION"));
    }

    #[test]
    fn null_repeats_and_merges_like_go() {
        let p = probe(r#"{"mediaType":"a","mediaType":null}"#).unwrap();
        assert_eq!(p.media_type, "a");
        let p = probe(r#"{"inner":{"mediaType":"a"},"inner":{"schemaVersion":3}}"#).unwrap();
        let inner = p.inner.unwrap();
        assert_eq!((inner.media_type.as_str(), inner.version), ("a", 3));
        assert!(probe(r#"{"inner":{"mediaType":"a"},"inner":null}"#).unwrap().inner.is_none());
        // A second array decodes into the elements already there.
        let p = probe(r#"{"list":[{"mediaType":"a"},{"mediaType":"b"}],"list":[{"schemaVersion":1}]}"#).unwrap();
        assert_eq!(p.list.items().len(), 1);
        assert_eq!((p.list.items()[0].media_type.as_str(), p.list.items()[0].version), ("a", 1));
        // Shrunk, then grown within capacity: the old element comes back.
        let p = probe(r#"{"list":[{"mediaType":"a"},{"mediaType":"b"}],"list":[{}],"list":[{},{}]}"#).unwrap();
        assert_eq!(p.list.items()[1].media_type, "b");
        assert!(probe(r#"{"list":[]}"#).unwrap().list.items().is_empty());
        assert!(!probe(r#"{"list":[]}"#).unwrap().list.is_nil());
        assert!(probe(r#"{"list":[],"list":null}"#).unwrap().list.is_nil());
    }

    #[test]
    fn type_errors_fail_even_when_fixed_later() {
        assert!(probe(r#"{"schemaVersion":"2","schemaVersion":2}"#).is_err());
        assert!(probe(r#"{"schemaVersion":2.0}"#).is_err());
        assert!(probe(r#"{"schemaVersion":99999999999999999999}"#).is_err());
        assert!(probe(r#"{"mediaType":5}"#).is_err());
        assert!(probe(r#"[]"#).is_err());
        assert_eq!(probe(r#"{"unknown":1e999,"schemaVersion":-0}"#).unwrap().version, 0);
    }

    #[test]
    fn syntax_is_checked_first() {
        assert!(probe("\u{feff}{}").is_err());
        assert!(probe("{} x").is_err());
        assert!(probe("{}\u{0}").is_err());
        assert!(probe("{} \r\n\t").is_ok());
        assert!(probe("{\"a\":\"\u{0}\"}").is_err());
        assert!(probe(r#"{"a":[1,]}"#).is_err());
        assert!(probe(r#"{"a":01}"#).is_err());
        assert!(probe("").is_err());
        let deep = |n: usize| format!("{{\"x\":{}{}}}", "[".repeat(n - 1), "]".repeat(n - 1));
        assert!(probe(&deep(MAX_NESTING_DEPTH)).is_ok());
        assert!(probe(&deep(MAX_NESTING_DEPTH + 1)).is_err());
    }

    #[test]
    fn errors_keep_go_texts_and_their_structure() {
        let e = probe(r#"{"inner":{"schemaVersion":"2"}}"#).unwrap_err();
        assert_eq!(e.to_string(), "Probe.inner: Probe.schemaVersion: cannot unmarshal string into int64");
        let Error::Field { strukt, field, inner } = &e else { panic!("{e:?}") };
        assert_eq!((strukt.as_str(), field.as_str()), ("Probe", "inner"));
        assert!(matches!(**inner, Error::Field { .. }));
        let e = probe(r#"{"schemaVersion":99999999999999999999}"#).unwrap_err();
        assert_eq!(e.to_string(), "Probe.schemaVersion: cannot unmarshal number 99999999999999999999 into int64");
        assert_eq!(
            probe("{} x").unwrap_err(),
            Error::Syntax { what: "invalid character after top-level value", offset: 3 }
        );
        assert_eq!(
            probe("{} x").unwrap_err().to_string(),
            "invalid JSON: invalid character after top-level value at offset 3"
        );
        assert_eq!(
            unmarshal_any_map(b"[]").unwrap_err().to_string(),
            "cannot unmarshal array into map[string]interface {}"
        );
        let retyped = Error::Type { found: "string", want: "int64".into() }.retyped("int64", "uint8");
        assert_eq!(retyped.to_string(), "cannot unmarshal string into uint8");
    }

    #[test]
    fn a_bad_time_is_found_through_the_fields_around_it() {
        #[derive(Default)]
        struct Entry(GoTime);
        impl GoDecode for Entry {
            fn go_decode(&mut self, d: &mut Decoder) -> Result<()> {
                d.struct_fields("History", &["created"], |d, _| self.0.go_decode(d))
            }
        }
        let mut entries = GoSlice::<Entry>::default();
        let e =
            unmarshal(br#"[{"created":"2024-01-01T00:00:00Z"},{"created":"yesterday"}]"#, &mut entries).unwrap_err();
        assert_eq!(e.to_string(), "History.created: not an RFC 3339 time: yesterday");
        assert_eq!(e.bad_time(), Some("yesterday"));
        assert_eq!(probe(r#"{"mediaType":5}"#).unwrap_err().bad_time(), None);
    }

    #[test]
    fn strings_decode_like_go() {
        assert_eq!(unquote(br"a\u00e9\ud83d\ude00"), "a\u{e9}\u{1f600}");
        assert_eq!(unquote(br"\ud800x"), "\u{fffd}x");
        assert_eq!(unquote(br"\ud800\u0041"), "\u{fffd}A");
        assert_eq!(unquote(br"\udc00\ud800\udc00"), "\u{fffd}\u{10000}");
        // Each byte that starts no valid sequence is one U+FFFD.
        assert_eq!(unquote(b"\xe2\x82A\xff"), "\u{fffd}\u{fffd}A\u{fffd}");
        assert_eq!(unquote(b"\xed\xa0\x80"), "\u{fffd}\u{fffd}\u{fffd}");
    }

    #[test]
    fn schema1_numbers_become_floats() {
        assert!(unmarshal_any_map(br#"{"a":[1e308,"1e999",1e-999]}"#).is_ok());
        assert!(unmarshal_any_map(br#"{"a":{"b":1e999}}"#).is_err());
        assert!(unmarshal_any_map(br#"[]"#).is_err());
        assert!(unmarshal_any_map(br#"null"#).is_ok());
    }

    #[test]
    fn rfc3339_as_go_1_19_parses_it() {
        let ok = |s: &str| parse_go_rfc3339(s).is_some();
        assert!(ok("2024-01-01T00:00:00Z"));
        assert!(ok("2024-01-01T1:00:00Z"));
        assert!(ok("2024-01-01T00:00:00,5Z"));
        assert!(ok("2024-01-01T00:00:00.1234567891234+01:00"));
        assert!(ok("2024-01-01T00:00:00+99:99"));
        assert!(ok("2024-02-29T23:59:59-00:00"));
        assert!(!ok("2023-02-29T00:00:00Z"));
        assert!(!ok("2024-01-01 00:00:00Z"));
        assert!(!ok("2024-01-01t00:00:00Z"));
        assert!(!ok("2024-01-01T00:00:60Z"));
        assert!(!ok("2024-01-01T24:00:00Z"));
        assert!(!ok("2024-01-01T00:00:00z"));
        assert!(!ok("2024-01-01T00:00:00.Z"));
        assert!(!ok("2024-01-01T00:00:00+0100"));
        assert!(!ok("2024-01-01T00:00:00Z "));
        assert!(!ok("24-01-01T00:00:00Z"));
        assert_eq!(parse_go_rfc3339("2024-01-01T01:00:00+01:00"), parse_go_rfc3339("2024-01-01T00:00:00Z"));
    }
}
