//! Names from the tree, kept exact and shown safely.
//!
//! A file name is bytes; the reports hold names as `String`. A name that is
//! valid UTF-8 is kept as it is. Each byte of a name that is not valid UTF-8
//! is kept as NUL (U+0000, which no file name can hold) followed by its two
//! lowercase hex digits, so two different names never become the same
//! string and the exact bytes can be recovered ([`to_bytes`]). JSON carries
//! this form as it is (`"app\u0000ff"`); docs/json.md documents it.
//!
//! Text for people goes through [`escape`]: control characters, invalid
//! bytes, bidirectional overrides and the backslash itself are written as
//! escapes, so a name can neither drive the terminal nor pass for another.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

/// Marks one byte that is not valid UTF-8 (followed by its two hex digits).
const MARK: char = '\0';

/// A name's bytes as a string: unchanged when valid UTF-8, else each invalid
/// byte marked (see the module comment).
pub fn from_bytes(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        // One mark per byte, as Go's decoder takes one invalid byte at a time.
        for b in chunk.invalid() {
            out.push(MARK);
            out.push_str(&format!("{b:02x}"));
        }
    }
    Cow::Owned(out)
}

/// [`from_bytes`] of a file name or path.
pub fn from_os(name: &OsStr) -> Cow<'_, str> {
    from_bytes(name.as_bytes())
}

/// The marked byte at the start of `rest` (just after a mark), if well formed.
fn marked_byte(rest: &str) -> Option<u8> {
    let hex = rest.get(..2)?;
    u8::from_str_radix(hex, 16).ok().filter(|_| hex.bytes().all(|c| c.is_ascii_hexdigit()))
}

/// The exact bytes of a name made by [`from_bytes`].
pub fn to_bytes(name: &str) -> Cow<'_, [u8]> {
    if !name.contains(MARK) {
        return Cow::Borrowed(name.as_bytes());
    }
    let mut out = Vec::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find(MARK) {
        out.extend_from_slice(&rest.as_bytes()[..i]);
        let after = &rest[i + 1..];
        match marked_byte(after) {
            Some(b) => {
                out.push(b);
                rest = &after[2..];
            }
            None => {
                out.push(0);
                rest = after;
            }
        }
    }
    out.extend_from_slice(rest.as_bytes());
    Cow::Owned(out)
}

/// The path a name (or a `/`-joined relative path) made by [`from_bytes`] stands for.
pub fn to_path(name: &str) -> PathBuf {
    PathBuf::from(OsString::from_vec(to_bytes(name).into_owned()))
}

/// Whether the name was valid UTF-8.
pub fn is_utf8(name: &str) -> bool {
    !name.contains(MARK)
}

/// The name as Go's JSON encoder (and so the registry's API) prints it: each
/// invalid byte becomes U+FFFD.
pub fn lossy(name: &str) -> Cow<'_, str> {
    if is_utf8(name) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find(MARK) {
        out.push_str(&rest[..i]);
        out.push('\u{fffd}');
        let after = &rest[i + 1..];
        rest = if marked_byte(after).is_some() { &after[2..] } else { after };
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Characters that reorder, hide or break text on a terminal: bidirectional
/// marks, embeddings, overrides and isolates, zero-width characters, and the
/// Unicode line and paragraph separators.
fn is_invisible_control(c: char) -> bool {
    matches!(
        c,
        '\u{61c}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}'
    )
}

/// Writes `s` with every control character, invalid byte and backslash
/// escaped; with `backslash` false a backslash is left as it is (for
/// sentences, whose names were already escaped or quoted).
fn write_escaped(f: &mut impl fmt::Write, s: &str, backslash: bool) -> fmt::Result {
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            MARK => match marked_byte(&s[i + 1..]) {
                Some(b) => {
                    write!(f, "\\x{b:02x}")?;
                    chars.next();
                    chars.next();
                }
                None => f.write_str("\\x00")?,
            },
            '\\' if backslash => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if (c as u32) < 0x20 || c == '\u{7f}' => write!(f, "\\x{:02x}", c as u32)?,
            c if c.is_control() || is_invisible_control(c) => write!(f, "\\u{{{:x}}}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    Ok(())
}

fn needs_escape(s: &str, backslash: bool) -> bool {
    s.chars().any(|c| (c == '\\' && backslash) || c.is_control() || is_invisible_control(c))
}

/// A name as text for people: `\x1b`, `\n`, `\xff` (an invalid byte), `\\`
/// (a backslash), `\u{202e}`; everything else as it is. Distinct names stay
/// distinct.
pub fn escape(name: &str) -> Cow<'_, str> {
    if !needs_escape(name, true) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 8);
    write_escaped(&mut out, name, true).expect("writing to a String cannot fail");
    Cow::Owned(out)
}

/// A sentence (a problem's message, a reason) as text for people: control
/// characters and invalid bytes escaped as in [`escape`], backslashes kept.
pub fn escape_text(text: &str) -> Cow<'_, str> {
    if !needs_escape(text, false) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    write_escaped(&mut out, text, false).expect("writing to a String cannot fail");
    Cow::Owned(out)
}

/// `format!("{}", Shown(name))` writes [`escape`]`(name)` without a copy.
pub struct Shown<'a>(pub &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0, true)
    }
}

/// `format!("{}", ShownText(s))` writes [`escape_text`]`(s)` without a copy.
pub struct ShownText<'a>(pub &'a str);

impl fmt::Display for ShownText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_names_are_kept_as_they_are() {
        assert!(matches!(from_bytes(b"app/sub"), Cow::Borrowed("app/sub")));
        assert_eq!(to_bytes("app/sub").as_ref(), b"app/sub");
    }

    #[test]
    fn invalid_bytes_round_trip_and_stay_distinct() {
        let names: [&[u8]; 5] = [b"app\xff", b"app\xfe", b"a\xe2\x82b", b"\xff\xfe", b"x\\xff"];
        let encoded: Vec<String> = names.iter().map(|n| from_bytes(n).into_owned()).collect();
        for (raw, enc) in names.iter().zip(&encoded) {
            assert_eq!(to_bytes(enc).as_ref(), *raw);
        }
        let mut unique = encoded.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        assert_eq!(encoded[0], "app\0ff");
        assert_eq!(lossy(&encoded[2]), "a\u{fffd}\u{fffd}b");
    }

    #[test]
    fn escapes_are_unambiguous() {
        assert_eq!(escape("x\u{1b}[2J\u{1b}[31mFAKE"), "x\\x1b[2J\\x1b[31mFAKE");
        assert_eq!(escape("a\nb\tc\u{7f}"), "a\\nb\\tc\\x7f");
        assert_eq!(escape(&from_bytes(b"app\xff")), "app\\xff");
        // A literal backslash-x-f-f is not the invalid byte.
        assert_eq!(escape("app\\xff"), "app\\\\xff");
        assert_eq!(escape("evil\u{202e}txt"), "evil\\u{202e}txt");
        assert_eq!(escape("\u{85}"), "\\u{85}");
        assert_eq!(escape_text("name \"a\\b\"\n"), "name \"a\\b\"\\n");
        assert_eq!(Shown("a\u{1b}").to_string(), "a\\x1b");
        assert!(matches!(escape("plain-name_1.0"), Cow::Borrowed(_)));
    }

    #[test]
    fn paths_come_back_exact() {
        let p = to_path(&from_bytes(b"repositories/app\xff/_layers"));
        assert_eq!(p.as_os_str().as_bytes(), b"repositories/app\xff/_layers");
    }
}
