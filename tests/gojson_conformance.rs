//! Differential test of the JSON decoder against the real registry 2.8.2:
//! thousands of manifest variants (key case and Unicode folds, repeated
//! keys, null, type errors, numbers, depth, whitespace, BOM, trailing bytes,
//! NUL, invalid UTF-8, lone surrogates, huge arrays, schema1) are stored in
//! one tree as revisions and tags, with every blob they name present, and
//! served by one registry process. For each, regaudit's predicted status of
//! GET by digest and by tag (what `inspect` reports as `fetch`) must equal
//! the real one; then, on the variants the registry serves, the real
//! `garbage-collect --dry-run` must mark exactly the blobs regaudit's `gc`
//! says it marks (what each manifest decodes to, not just whether it does).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::registry::{self, Real, Registry};
use common::*;
use regaudit::digest::Digest;
use regaudit::model::serve::{Fetch, Server};
use regaudit::model::Target;
use sha2::{Digest as _, Sha256};

const REPO: &str = "gojson/variants";
const FULL_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v1+prettyjws, application/json, */*";

const OCI: &str = "application/vnd.oci.image.manifest.v1+json";
const S2: &str = "application/vnd.docker.distribution.manifest.v2+json";
const LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The blobs every variant may name: a config, three layers, and a plain
/// manifest for index entries.
struct Blobs {
    config: (String, Vec<u8>),
    layers: Vec<(String, Vec<u8>)>,
    child: (String, Vec<u8>),
}

fn blobs() -> Blobs {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"history":[]}"#.to_vec();
    let layers: Vec<(String, Vec<u8>)> =
        (0..3).map(|i| format!("layer {i}").into_bytes()).map(|b| (sha(&b), b)).collect();
    let child = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[]}}"#,
        sha(&config),
        config.len()
    )
    .into_bytes();
    Blobs { config: (sha(&config), config), layers, child: (sha(&child), child) }
}

struct Gen<'a> {
    b: &'a Blobs,
    out: Vec<(String, Vec<u8>)>,
}

impl Gen<'_> {
    fn add(&mut self, what: impl Into<String>, body: impl Into<Vec<u8>>) {
        self.out.push((what.into(), body.into()));
    }

    fn config(&self) -> String {
        format!(
            r#"{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}}"#,
            self.b.config.0,
            self.b.config.1.len()
        )
    }

    fn layer(&self, i: usize) -> String {
        let (d, bytes) = &self.b.layers[i];
        format!(r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{d}","size":{}}}"#, bytes.len())
    }

    fn entry(&self) -> String {
        format!(
            r#"{{"mediaType":"{OCI}","digest":"{}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}}"#,
            self.b.child.0,
            self.b.child.1.len()
        )
    }

    /// An image manifest with `extra` members appended.
    fn image(&self, media_type: &str, extra: &str) -> String {
        let mt = if media_type.is_empty() { String::new() } else { format!(r#""mediaType":"{media_type}","#) };
        format!(r#"{{"schemaVersion":2,{mt}"config":{},"layers":[{}]{extra}}}"#, self.config(), self.layer(0))
    }

    /// An image manifest with this config and one layer.
    fn image_with(&self, media_type: &str, config: &str, layer: &str) -> String {
        let mt = if media_type.is_empty() { String::new() } else { format!(r#""mediaType":"{media_type}","#) };
        format!(r#"{{"schemaVersion":2,{mt}"config":{config},"layers":[{layer}]}}"#)
    }
}

/// Case variants of a key: as is, upper, lower, first letter flipped, and
/// each `s`/`k` replaced by U+017F/U+212A, and a look-alike Go does not fold.
fn key_variants(key: &str) -> Vec<String> {
    let mut v = vec![key.to_string(), key.to_uppercase(), key.to_lowercase()];
    let mut flipped: Vec<char> = key.chars().collect();
    flipped[0] =
        if flipped[0].is_lowercase() { flipped[0].to_ascii_uppercase() } else { flipped[0].to_ascii_lowercase() };
    v.push(flipped.into_iter().collect());
    if key.contains(['s', 'S']) {
        v.push(key.replacen(['s', 'S'], "\u{17f}", 1));
        v.push(key.replace(['s', 'S'], "\u{17f}"));
    }
    if key.contains(['k', 'K']) {
        v.push(key.replace(['k', 'K'], "\u{212a}"));
    }
    // Not folds in Go: dotless i, Latin small capital, fullwidth, escaped.
    v.push(key.replacen('i', "\u{131}", 1));
    v.push(key.replacen('e', "\u{1d07}", 1));
    v.push(format!("{key}\u{0}"));
    v.push(key.replacen('a', "\\u0061", 1));
    v.push(key.replacen('a', "\\u0041", 1));
    v.push(format!(" {key}"));
    v.dedup();
    v
}

fn variants(b: &Blobs) -> Vec<(String, Vec<u8>)> {
    let mut g = Gen { b, out: Vec::new() };
    let values = [
        format!("\"{OCI}\""),
        format!("\"{S2}\""),
        format!("\"{LIST}\""),
        format!("\"{INDEX}\""),
        "\"\"".to_string(),
        "\"x/y\"".to_string(),
        "null".to_string(),
        "5".to_string(),
        "{}".to_string(),
    ];
    // Repeated mediaType keys in every case, two and three at a time.
    let cases = key_variants("mediaType");
    for (i, v1) in values.iter().enumerate() {
        for (j, v2) in values.iter().enumerate() {
            for (k, key2) in cases.iter().enumerate() {
                let extra = format!(r#","mediaType":{v1},"{key2}":{v2}"#);
                g.add(format!("mediaType {i},{j} key {k}"), g.image("", &extra));
                if k % 4 == 0 {
                    for (l, v3) in values.iter().enumerate().step_by(3) {
                        let extra = format!(r#","{key2}":{v1},"MEDIATYPE":{v2},"mediaType":{v3}"#);
                        g.add(format!("mediaType {i},{j},{l} key {k}"), g.image("", &extra));
                    }
                }
            }
        }
    }
    // Every field name in every case, alone and repeated.
    for key in ["schemaVersion", "config", "layers", "manifests"] {
        for (k, kv) in key_variants(key).iter().enumerate() {
            let value = match key {
                "schemaVersion" => "2".to_string(),
                "config" => g.config(),
                "layers" => format!("[{}]", g.layer(1)),
                _ => format!("[{}]", g.entry()),
            };
            for mt in ["", OCI, S2, INDEX] {
                let body = format!(r#"{{"schemaVersion":2,"mediaType":"{mt}","{kv}":{value}}}"#);
                g.add(format!("{key} key {k} mediaType {mt:?}"), body);
                g.add(format!("{key} key {k} mediaType {mt:?} after"), g.image(mt, &format!(r#","{kv}":{value}"#)));
            }
        }
    }
    for (k, kv) in key_variants("digest").iter().chain(&key_variants("size")).enumerate() {
        let layer = format!(r#"{{"digest":"{}","{kv}":"{}"}}"#, b.layers[0].0, b.layers[1].0);
        g.add(
            format!("descriptor key {k} string"),
            format!(r#"{{"schemaVersion":2,"config":{},"layers":[{layer}]}}"#, g.config()),
        );
        let layer = format!(r#"{{"size":1,"{kv}":2}}"#);
        g.add(
            format!("descriptor key {k} number"),
            format!(r#"{{"schemaVersion":2,"config":{},"layers":[{layer}]}}"#, g.config()),
        );
    }
    // schemaVersion values, alone and repeated.
    let versions = [
        "1",
        "2",
        "3",
        "0",
        "-0",
        "\"2\"",
        "2.0",
        "2e0",
        "20e-1",
        "null",
        "true",
        "[]",
        "{}",
        "-1",
        "9223372036854775807",
        "9223372036854775808",
        "1e999",
    ];
    for (i, v1) in versions.iter().enumerate() {
        g.add(
            format!("schemaVersion {v1}"),
            format!(r#"{{"schemaVersion":{v1},"mediaType":"{OCI}","config":{},"layers":[]}}"#, g.config()),
        );
        for v2 in ["2", "null", "\"2\"", "1"] {
            g.add(
                format!("schemaVersion {i} then {v2}"),
                format!(r#"{{"schemaVersion":{v1},"mediaType":"{OCI}","config":{},"SCHEMAVERSION":{v2}}}"#, g.config()),
            );
        }
    }
    // Numbers in known and unknown fields.
    let numbers = [
        "1e999",
        "-1e999",
        "1.7976931348623157e308",
        "1.8e308",
        "4.9e-324",
        "1e-999",
        "123456789012345678901234567890",
        "-0.0",
        "1E+2",
        "0.5",
        "-1",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "1.0",
        "100",
        "0",
    ];
    for n in numbers {
        for mt in [OCI, S2, "", INDEX] {
            g.add(
                format!("unknown number {n} {mt}"),
                g.image(mt, &format!(r#","unknown":{n},"deep":{{"a":[{n},{{"b":{n}}}]}}"#)),
            );
        }
        let layer = format!(r#"{{"digest":"{}","size":{n}}}"#, b.layers[2].0);
        g.add(
            format!("size {n}"),
            format!(r#"{{"schemaVersion":2,"mediaType":"{S2}","config":{},"layers":[{layer}]}}"#, g.config()),
        );
        g.add(
            format!("config size {n}"),
            format!(r#"{{"schemaVersion":2,"config":{{"digest":"{}","size":{n}}}}}"#, b.config.0),
        );
        g.add(format!("annotation {n}"), g.image(OCI, &format!(r#","annotations":{{"a":{n}}}"#)));
        g.add(
            format!("layer annotation {n}"),
            format!(
                r#"{{"schemaVersion":2,"config":{},"layers":[{{"digest":"{}","annotations":{{"a":{n}}}}}]}}"#,
                g.config(),
                b.layers[0].0
            ),
        );
        g.add(format!("platform {n}"), format!(r#"{{"schemaVersion":2,"mediaType":"{INDEX}","manifests":[{{"digest":"{}","platform":{{"os":{n}}}}}]}}"#, b.child.0));
        g.add(format!("schema1 number {n}"), format!(r#"{{"schemaVersion":1,"name":"a","tag":"b","architecture":"amd64","fsLayers":[{{"blobSum":"{}"}}],"history":[{{"v1Compatibility":"{{}}"}}],"x":{n}}}"#, b.layers[0].0));
    }
    // Depth: an unknown member nested n levels (the top object is one more).
    for n in [126, 127, 128, 129, 1000, 9998, 9999, 10000, 10001] {
        g.add(format!("depth {n} arrays"), g.image(OCI, &format!(r#","x":{}{}"#, "[".repeat(n), "]".repeat(n))));
        g.add(
            format!("depth {n} objects"),
            g.image("", &format!(r#","x":{}1{}"#, r#"{"a":"#.repeat(n), "}".repeat(n))),
        );
        g.add(
            format!("schema1 depth {n}"),
            format!(r#"{{"schemaVersion":1,"fsLayers":[],"x":{}{}}}"#, "[".repeat(n), "]".repeat(n)),
        );
    }
    // Whitespace and bytes around the document.
    let base = g.image(OCI, "");
    for (name, pre, post) in [
        ("spaces", " \t\r\n", " \t\r\n"),
        ("space before", " ", ""),
        ("tab before", "\t", ""),
        ("spaces after", "", " \t\r\n"),
        ("BOM", "\u{feff}", ""),
        ("BOM after", "", "\u{feff}"),
        ("vertical tab", "\u{b}", ""),
        ("form feed after", "", "\u{c}"),
        ("NBSP", "\u{a0}", ""),
        ("NUL after", "", "\u{0}"),
        ("NUL before", "\u{0}", ""),
        ("trailing x", "", "x"),
        ("trailing brace", "", "}"),
        ("second value", "", "{}"),
        ("trailing comma", "", ","),
        ("newline", "", "\n"),
    ] {
        g.add(format!("around: {name}"), format!("{pre}{base}{post}"));
        let s1 = format!(r#"{{"schemaVersion":1,"fsLayers":[{{"blobSum":"{}"}}]}}"#, b.layers[0].0);
        g.add(format!("schema1 around: {name}"), format!("{pre}{s1}{post}"));
    }
    g.add("whitespace inside", base.replace(',', " ,\n\t").replace(':', "\r: "));
    g.add("empty", "");
    g.add("only spaces", "   ");
    g.add("null document", "null");
    g.add("array document", "[]");
    g.add("string document", "\"x\"");
    // Strings: invalid UTF-8, lone surrogates, NUL, escapes, in every field.
    let strings: [(&str, &[u8]); 12] = [
        ("invalid byte", b"a\xffb"),
        ("truncated sequence", b"a\xe2\x82b"),
        ("encoded surrogate", b"\xed\xa0\x80"),
        ("overlong", b"\xc0\xaf"),
        ("lone high", br"\ud800"),
        ("lone low", br"\udc00"),
        ("high then text", br"\ud800x"),
        ("pair", br"\ud83d\ude00"),
        ("reversed pair", br"\ude00\ud83d"),
        ("raw NUL", b"a\x00b"),
        ("escaped NUL", br"a\u0000b"),
        ("raw tab", b"a\tb"),
    ];
    let (config, layer0) = (g.config(), g.layer(0));
    for (name, s) in strings {
        let image = |field: &str| {
            let mut body =
                format!(r#"{{"schemaVersion":2,"mediaType":"{OCI}","config":{config},"layers":[{layer0}],"{field}":""#)
                    .into_bytes();
            body.extend_from_slice(s);
            body.extend_from_slice(b"\"}");
            body
        };
        g.add(format!("string {name} in unknown"), image("unknown"));
        g.add(format!("string {name} in mediaType"), image("mediaType"));
        g.add(format!("string {name} in key"), {
            let mut body = br#"{"schemaVersion":2,""#.to_vec();
            body.extend_from_slice(s);
            body.extend_from_slice(br#"":1}"#);
            body
        });
        let mut body = format!(
            r#"{{"schemaVersion":2,"config":{},"layers":[{{"digest":"{}","urls":[""#,
            g.config(),
            b.layers[0].0
        )
        .into_bytes();
        body.extend_from_slice(s);
        body.extend_from_slice(b"\"]}]}");
        g.add(format!("string {name} in urls"), body);
        let mut body =
            format!(r#"{{"schemaVersion":1,"fsLayers":[{{"blobSum":"{}"}}],"name":""#, b.layers[0].0).into_bytes();
        body.extend_from_slice(s);
        body.extend_from_slice(b"\"}");
        g.add(format!("schema1 string {name}"), body);
    }
    g.add(
        "escaped mediaType",
        g.image("", &format!(r#","mediaType":"{}""#, OCI.replace('a', "\\u0061").replace('/', "\\/"))),
    );
    g.add("invalid escape", g.image(OCI, r#","x":"\x""#));
    g.add("short unicode escape", g.image(OCI, r#","x":"\u12""#));
    // Null and repeated objects and arrays.
    for field in ["config", "layers", "manifests", "mediaType", "schemaVersion", "annotations"] {
        for mt in [OCI, S2, "", INDEX, LIST] {
            g.add(format!("{field} null {mt:?}"), g.image(mt, &format!(r#","{field}":null"#)));
        }
    }
    for field in ["digest", "size", "mediaType", "urls", "annotations", "platform"] {
        g.add(
            format!("layer {field} null"),
            format!(
                r#"{{"schemaVersion":2,"config":{},"layers":[{{"digest":"{}","{field}":null}}]}}"#,
                g.config(),
                b.layers[0].0
            ),
        );
        g.add(
            format!("entry {field} null"),
            format!(r#"{{"schemaVersion":2,"manifests":[{{"digest":"{}","{field}":null}}]}}"#, b.child.0),
        );
    }
    let l = |i: usize| b.layers[i].0.as_str();
    for (name, extra) in [
        ("config merged", r#","config":{"size":5}"#.to_string()),
        ("config replaced digest", format!(r#","config":{{"digest":"{}"}}"#, l(1))),
        ("config then null", ",\"config\":null".to_string()),
        ("layers shorter", r#","layers":[{"size":7}]"#.to_string()),
        ("layers longer", format!(r#","layers":[{{"size":7}},{{"digest":"{}"}}]"#, l(2))),
        ("layers empty", ",\"layers\":[]".to_string()),
        ("layers null then", format!(r#","layers":null,"layers":[{{"digest":"{}"}}]"#, l(1))),
        (
            "layers shrink grow",
            format!(
                r#","layers":[{{"digest":"{}"}},{{"digest":"{}"}}],"layers":[{{}}],"layers":[{{}},{{}}]"#,
                l(1),
                l(2)
            ),
        ),
        (
            "layers grow past cap",
            format!(
                r#","layers":[{{"digest":"{}"}},{{"digest":"{}"}},{{"digest":"{}"}},{{"digest":"{}"}}],"layers":[{{}}],"layers":[{{}},{{}},{{}},{{}},{{}}]"#,
                l(0),
                l(1),
                l(2),
                l(0)
            ),
        ),
        ("layer null element", format!(r#","layers":[{{"digest":"{}"}}],"layers":[null]"#, l(2))),
        ("config type error fixed later", format!(r#","config":5,"config":{}"#, g.config())),
        ("size type error fixed later", r#","config":{"size":"1"},"config":{"size":1}"#.to_string()),
        ("config array", ",\"config\":[]".to_string()),
        ("layers object", ",\"layers\":{}".to_string()),
        ("layers string", ",\"layers\":\"x\"".to_string()),
        ("layer number", ",\"layers\":[5]".to_string()),
        ("layer string", ",\"layers\":[\"x\"]".to_string()),
        ("digest number", ",\"layers\":[{\"digest\":5}]".to_string()),
        ("urls string", ",\"layers\":[{\"urls\":\"x\"}]".to_string()),
        ("urls number", ",\"layers\":[{\"urls\":[5]}]".to_string()),
        ("urls null element", ",\"layers\":[{\"urls\":[null]}]".to_string()),
        ("annotations array", ",\"annotations\":[]".to_string()),
        ("annotations number value", ",\"annotations\":{\"a\":5}".to_string()),
        ("annotations null value", ",\"annotations\":{\"a\":null}".to_string()),
        ("layer platform number", ",\"layers\":[{\"platform\":5}]".to_string()),
        ("layer platform features", ",\"layers\":[{\"platform\":{\"features\":5}}]".to_string()),
        ("layer platform os.version", ",\"layers\":[{\"platform\":{\"OS.VERSION\":5}}]".to_string()),
        ("layer platform os.features", ",\"layers\":[{\"platform\":{\"os.features\":[5]}}]".to_string()),
        ("mediaType object", ",\"mediaType\":{}".to_string()),
        ("manifests string", ",\"manifests\":\"x\"".to_string()),
        ("manifests number element", ",\"manifests\":[5]".to_string()),
        ("manifests empty", ",\"manifests\":[]".to_string()),
        ("manifests entry", format!(",\"manifests\":[{}]", g.entry())),
        ("manifests entry platform features", ",\"manifests\":[{\"platform\":{\"features\":5}}]".to_string()),
        ("manifests entry platform null", ",\"manifests\":[{\"platform\":null}]".to_string()),
        ("subject junk", ",\"subject\":5,\"artifactType\":[]".to_string()),
    ] {
        for mt in [OCI, S2, "", INDEX, LIST] {
            g.add(format!("{name} {mt:?}"), g.image(mt, &extra));
        }
    }
    // Schema1 shapes.
    for (name, body) in [
        ("minimal", r#"{"schemaVersion":1}"#.to_string()),
        ("fsLayers object", r#"{"schemaVersion":1,"fsLayers":{}}"#.to_string()),
        ("blobSum number", r#"{"schemaVersion":1,"fsLayers":[{"blobSum":5}]}"#.to_string()),
        ("history string", r#"{"schemaVersion":1,"history":"x"}"#.to_string()),
        ("v1Compatibility number", r#"{"schemaVersion":1,"history":[{"v1Compatibility":5}]}"#.to_string()),
        ("architecture number", r#"{"schemaVersion":1,"architecture":5}"#.to_string()),
        ("folded keys", format!(r#"{{"ſCHEMAVERSION":1,"FſLAYERS":[{{"BLOBſUM":"{}"}}]}}"#, l(1))),
        ("signatures", r#"{"schemaVersion":1,"signatures":5}"#.to_string()),
        (
            "repeated layers",
            format!(
                r#"{{"schemaVersion":1,"fsLayers":[{{"blobSum":"{}"}},{{"blobSum":"{}"}}],"fsLayers":[{{}}]}}"#,
                l(0),
                l(1)
            ),
        ),
        ("mediaType", format!(r#"{{"schemaVersion":1,"mediaType":"{S2}"}}"#)),
        ("trailing spaces", "{\"schemaVersion\":1}  \n".to_string()),
    ] {
        g.add(format!("schema1 {name}"), body);
    }
    // Huge arrays under the 4 MiB limit.
    for n in [1000, 26_000] {
        let layers: Vec<String> = (0..n).map(|i| g.layer(i % 3)).collect();
        g.add(
            format!("{n} layers"),
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{S2}","config":{},"layers":[{}]}}"#,
                g.config(),
                layers.join(",")
            ),
        );
    }
    g.add("200000 unknown elements", g.image(OCI, &format!(r#","x":[{}0]"#, "0,".repeat(200_000))));
    data_variants(&mut g);
    g.out
}

/// v3.1.1's descriptors are image-spec v1.1 `v1.Descriptor`: `data` is a
/// `[]byte` (base64 in a string, or an array of uint8) and `artifactType` a
/// string, in config, layers and index entries; its OCI index entries carry
/// a `*v1.Platform` (no `features`). 2.8.2 skips all of these.
fn data_variants(g: &mut Gen) {
    let datas = [
        r#""!!!notbase64""#,
        r#""""#,
        r#""AAAA""#,
        r#""AAA=""#,
        r#""AA==""#,
        r#""A===""#,
        r#""AAA""#,
        r#""AA""#,
        r#""A""#,
        r#""AB==""#,
        r#""AAAAAA==""#,
        r#""AA=A""#,
        r#""AA==AAAA""#,
        r#""AAAA====""#,
        r#""AA\r\n==""#,
        r#""A\nAAA""#,
        r#""AAAA\n""#,
        r#""AA=\n=""#,
        r#""AA== ""#,
        r#"" AAAA""#,
        r#""AAAA\t""#,
        r#""AA-_""#,
        r#""e30=""#,
        r#""e30""#,
        r#""\u0041AAA""#,
        r#""aGVsbG8gd29ybGQ=""#,
        "null",
        "5",
        "true",
        "{}",
        "[]",
        "[1,2,255]",
        "[256]",
        "[-1]",
        "[1.0]",
        "[1e2]",
        "[-0]",
        "[null]",
        r#"["AA=="]"#,
        "[[]]",
    ];
    let (layer1, config) = (&g.b.layers[1], &g.b.config);
    let child = &g.b.child;
    for (i, data) in datas.iter().enumerate() {
        let layer = format!(
            r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{},"data":{data}}}"#,
            layer1.0,
            layer1.1.len()
        );
        for mt in [OCI, S2, ""] {
            g.add(format!("data {i} in a layer ({mt})"), g.image_with(mt, &g.config(), &layer));
        }
        let config = format!(
            r#"{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{},"data":{data}}}"#,
            config.0,
            config.1.len()
        );
        g.add(format!("data {i} in the config"), g.image_with(OCI, &config, &g.layer(0)));
        let entry = format!(r#"{{"mediaType":"{OCI}","digest":"{}","size":{},"data":{data}}}"#, child.0, child.1.len());
        for mt in [INDEX, LIST, ""] {
            g.add(format!("data {i} in an entry ({mt})"), index(mt, &entry, ""));
        }
        g.add(format!("data {i} in a subject"), g.image(OCI, &format!(r#","subject":{config}"#)));
        g.add(format!("data {i} as an unknown key"), g.image(OCI, &format!(r#","data":{data}"#)));
    }
    // Case folds and repeats of `data` and `artifactType`.
    for key in ["DATA", "Data", "dAtA", "artifacttype", "ARTIFACTTYPE"] {
        for v in [r#""!!!""#, "5", r#""AAAA""#] {
            let layer = format!(r#"{{"digest":"{}","{key}":{v}}}"#, g.b.layers[2].0);
            g.add(format!("{key}:{v} in a layer"), g.image_with(OCI, &g.config(), &layer));
        }
    }
    for (name, layer) in [
        ("data repeated, bad last", r#"{"data":"AAAA","data":"!"}"#),
        ("data repeated, bad first", r#"{"data":"!","data":"AAAA"}"#),
        ("data bad then null", r#"{"data":"!","data":null}"#),
        ("artifactType number", r#"{"artifactType":5}"#),
        ("artifactType null", r#"{"artifactType":null}"#),
        ("artifactType object", r#"{"artifactType":{}}"#),
    ] {
        g.add(name, g.image_with(OCI, &g.config(), layer));
    }
    // Index entries' platform and annotations, by kind.
    for (name, extra) in [
        ("platform features", r#""platform":{"features":1}"#),
        ("platform features strings", r#""platform":{"features":["a"]}"#),
        ("platform null", r#""platform":null"#),
        ("platform string", r#""platform":"x""#),
        ("annotations number", r#""annotations":{"a":1}"#),
    ] {
        let entry = format!(r#"{{"mediaType":"{OCI}","digest":"{}","size":{},{extra}}}"#, child.0, child.1.len());
        for mt in [INDEX, LIST, ""] {
            g.add(format!("entry {name} ({mt})"), index(mt, &entry, ""));
        }
    }
    // The index's own annotations: a field of v3's ImageIndex only.
    for mt in [INDEX, LIST, ""] {
        for ann in [r#","annotations":5"#, r#","annotations":{"a":1}"#, r#","annotations":null"#] {
            let entry = format!(r#"{{"mediaType":"{OCI}","digest":"{}","size":{}}}"#, child.0, child.1.len());
            g.add(format!("index {ann} ({mt})"), index(mt, &entry, ann));
        }
    }
}

/// An index or list of one entry, with `extra` members appended.
fn index(media_type: &str, entry: &str, extra: &str) -> String {
    let mt = if media_type.is_empty() { String::new() } else { format!(r#""mediaType":"{media_type}","#) };
    format!(r#"{{"schemaVersion":2,{mt}"manifests":[{entry}]{extra}}}"#)
}

fn write_link(path: &Path, digest: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, digest).unwrap();
}

fn write_blob(v2: &Path, digest: &str, bytes: &[u8]) {
    let hex = &digest["sha256:".len()..];
    let dir = v2.join(format!("blobs/sha256/{}/{hex}", &hex[..2]));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("data"), bytes).unwrap();
}

/// A scratch directory in memory when the machine has one: the trees hold
/// tens of thousands of small files.
fn scratch_dir() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir()).unwrap()
}

/// A tree holding `bodies` as revisions of REPO, each tagged `v<i>`, with
/// the shared blobs linked.
fn build_tree(root: &Path, b: &Blobs, bodies: &[(String, Vec<u8>)]) -> Vec<String> {
    let v2 = root.join(V2);
    let repo = v2.join("repositories").join(REPO);
    let mut shared: Vec<(&String, &Vec<u8>)> = vec![(&b.config.0, &b.config.1)];
    shared.extend(b.layers.iter().map(|(d, x)| (d, x)));
    for (d, bytes) in shared {
        write_blob(&v2, d, bytes);
        write_link(&repo.join(format!("_layers/sha256/{}/link", &d[7..])), d);
    }
    write_blob(&v2, &b.child.0, &b.child.1);
    write_link(&repo.join(format!("_manifests/revisions/sha256/{}/link", &b.child.0[7..])), &b.child.0);
    let mut digests = Vec::new();
    for (i, (_, body)) in bodies.iter().enumerate() {
        let d = sha(body);
        write_blob(&v2, &d, body);
        write_link(&repo.join(format!("_manifests/revisions/sha256/{}/link", &d[7..])), &d);
        write_link(&repo.join(format!("_manifests/tags/v{i}/current/link")), &d);
        digests.push(d);
    }
    digests
}

/// The status regaudit predicts for a GET: 0 where the registry panics and
/// drops the connection (`no-answer`).
fn status(fetch: &Fetch) -> u16 {
    fetch.http_status()
}

/// What each served manifest decodes to, as the blobs GC marks: the served
/// variants alone in a fresh tree, the real `garbage-collect --dry-run` of
/// `real` against regaudit's `gc --format gc-log` for its target. Returns
/// the real marks.
fn compare_marks(real: Real, b: &Blobs, served_bodies: &[(String, Vec<u8>)]) -> BTreeMap<String, Vec<String>> {
    let dir = scratch_dir();
    build_tree(dir.path(), b, served_bodies);
    let out = registry::garbage_collect_real(real, dir.path(), true, false);
    assert!(out.status.success(), "{real:?}: real dry run failed: {}", String::from_utf8_lossy(&out.stderr));
    let root = dir.path().to_str().unwrap();
    let predicted = regaudit(&["gc", root, "--target", real.target(), "--format", "gc-log"]);
    let real_marks = marks(&String::from_utf8_lossy(&out.stdout));
    let predicted_marks = marks(&predicted.stdout);
    let differ: Vec<String> = real_marks
        .iter()
        .filter(|(m, blobs)| predicted_marks.get(*m) != Some(blobs))
        .map(|(m, blobs)| format!("{m}: registry marks {blobs:?}, predicted {:?}", predicted_marks.get(m)))
        .chain(
            predicted_marks
                .keys()
                .filter(|m| !real_marks.contains_key(*m))
                .map(|m| format!("{m}: not marked by the registry")),
        )
        .collect();
    eprintln!("{real:?}: {} manifests marked by the real dry run, {} differ", real_marks.len(), differ.len());
    assert!(real_marks.len() > 1000, "{real:?}: the real dry run marked only {} manifests", real_marks.len());
    assert!(
        differ.is_empty(),
        "{real:?}: {} manifests decode to other references:\n{}",
        differ.len(),
        differ.join("\n")
    );
    real_marks
}

/// `served` of every tag (regaudit `tags`) against the real registry: the
/// tag, and every blob or child the manifest references (the blobs the real
/// GC marked for it), answer 200. All of them are present in the tree unless
/// the decode gave an invalid or empty digest.
fn compare_served(
    real: Real,
    root: &Path,
    b: &Blobs,
    bodies: &[(String, Vec<u8>)],
    digests: &[String],
    served: &[usize],
    real_marks: &BTreeMap<String, Vec<String>>,
) {
    let mut present: Vec<&str> = vec![&b.config.0, &b.child.0];
    present.extend(b.layers.iter().map(|(d, _)| d.as_str()));
    let (_, tags) = json(&["tags", root.to_str().unwrap(), "--target", real.target()]);
    let mut served_mismatches = Vec::new();
    for t in tags["tags"].as_array().unwrap() {
        let i: usize = t["tag"].as_str().unwrap()[1..].parse().unwrap();
        let refs = real_marks.get(&digests[i]);
        let whole = served.contains(&i) && refs.is_some_and(|r| r.iter().all(|d| present.contains(&d.as_str())));
        if t["served"] != whole || t["served_unknown"] == true {
            let why = t["not_served"].to_string();
            served_mismatches
                .push(format!("{} ({}): registry serves it whole: {whole}; predicted {why}", bodies[i].0, digests[i]));
        }
    }
    eprintln!(
        "{real:?}: {} tags compared for `served`, {} differ",
        tags["tags"].as_array().unwrap().len(),
        served_mismatches.len()
    );
    assert!(served_mismatches.is_empty(), "{}", served_mismatches.join("\n"));
}

/// GETs every variant by digest and by tag from the real registry `real`
/// and compares each status with the one regaudit predicts for its target.
/// Returns the mismatches and the variants served by digest.
fn compare_statuses(
    real: Real,
    root: &Path,
    bodies: &[(String, Vec<u8>)],
    digests: &[String],
) -> (Vec<String>, Vec<usize>) {
    let target = if real == Real::V3 { Target::V3 } else { Target::V2_8 };
    let audit = regaudit::audit::Audit::run(root, target).unwrap();
    let repo = audit.inventory.repository(REPO).expect("the variants repository");
    let server = Server::new(&audit.inventory, &audit.contents, target);
    let reg = Registry::serve_real(real, root);
    let mut mismatches = Vec::new();
    let mut served = Vec::new();
    for (i, ((what, _), d)) in bodies.iter().zip(digests).enumerate() {
        let digest = Digest::parse(d).unwrap();
        let (fetch, _) = server.manifest(repo, &digest);
        let want = status(&fetch);
        let by_digest = reg.request("GET", &format!("/v2/{REPO}/manifests/{d}"), &[("Accept", FULL_ACCEPT)]).status;
        let tag = format!("v{i}");
        let want_tag = match server.tag(repo, &tag) {
            Ok(t) => status(&server.manifest(repo, &t).0),
            Err(f) => status(&f),
        };
        let by_tag = reg.request("GET", &format!("/v2/{REPO}/manifests/{tag}"), &[("Accept", FULL_ACCEPT)]).status;
        if by_digest != want || by_tag != want_tag {
            mismatches.push(format!(
                "{what} ({d}): registry {by_digest} by digest, {by_tag} by tag; predicted {want}, {want_tag} ({fetch:?})"
            ));
        }
        if by_digest == 200 && want == 200 {
            served.push(i);
        }
    }
    (mismatches, served)
}

/// The same variants served by the real v3.1.1, predicted with `--target 3`:
/// v3 decodes descriptors as image-spec v1.1 `v1.Descriptor` (`data` is
/// base64) and an OCI index as `ocischema.ImageIndex`.
#[test]
fn decoding_matches_the_real_v3() {
    if !registry::require_v3() {
        return;
    }
    let b = blobs();
    let bodies = variants(&b);
    let dir = scratch_dir();
    let digests = build_tree(dir.path(), &b, &bodies);
    let (mismatches, served) = compare_statuses(Real::V3, dir.path(), &bodies, &digests);
    eprintln!("v3: {} variants, {} served, {} status mismatches", bodies.len(), served.len(), mismatches.len());
    assert!(
        mismatches.is_empty(),
        "{} of {} variants differ:\n{}",
        mismatches.len(),
        bodies.len(),
        mismatches.join("\n")
    );
    let served_bodies: Vec<(String, Vec<u8>)> = served.iter().map(|&i| bodies[i].clone()).collect();
    // v3 logs a blob only the first time the run marks it
    // (garbagecollect.go markManifestReferences), so its log does not give
    // each manifest's references: `served` is compared with 2.8.2 only.
    compare_marks(Real::V3, &b, &served_bodies);
}

#[test]
fn decoding_matches_the_real_registry() {
    if !registry::require() {
        return;
    }
    let started = std::time::Instant::now();
    let b = blobs();
    let bodies = variants(&b);
    let dir = scratch_dir();
    let digests = build_tree(dir.path(), &b, &bodies);

    eprintln!("tree: {:?}", started.elapsed());
    let (mismatches, served) = compare_statuses(Real::V2_8, dir.path(), &bodies, &digests);
    eprintln!("requests done: {:?}", started.elapsed());
    eprintln!("{} variants, {} served, {} status mismatches", bodies.len(), served.len(), mismatches.len());
    assert!(bodies.len() > 2000, "only {} variants", bodies.len());
    assert!(
        mismatches.is_empty(),
        "{} of {} variants differ:\n{}",
        mismatches.len(),
        bodies.len(),
        mismatches.join("\n")
    );

    let first_root = dir.path().to_path_buf();
    let served_bodies: Vec<(String, Vec<u8>)> = served.iter().map(|&i| bodies[i].clone()).collect();
    let real_marks = compare_marks(Real::V2_8, &b, &served_bodies);
    eprintln!("dry runs compared: {:?}", started.elapsed());

    compare_served(Real::V2_8, &first_root, &b, &bodies, &digests, &served, &real_marks);
}

/// `<repo>: marking manifest <d>` lines, each with the `marking blob` lines
/// that follow it (the references Get decoded), in order.
fn marks(log: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = None;
    for line in log.lines() {
        if let Some((_, d)) = line.split_once("marking manifest ") {
            current = Some(d.trim().to_string());
            out.entry(d.trim().to_string()).or_default();
        } else if let (Some((_, d)), Some(m)) = (line.split_once("marking blob "), &current) {
            out.get_mut(m).unwrap().push(d.trim().to_string());
        }
    }
    out
}

/// The schema1 conversion (a GET by tag that does not accept schema2)
/// decodes the config's history `created` with go1.19's time.Parse: one
/// schema2 image per form, its GET status predicted by `regaudit writes`.
#[test]
fn history_times_match_the_real_conversion() {
    if !registry::require() {
        return;
    }
    let times = [
        r#""2024-01-01T00:00:00Z""#,
        r#""2024-01-01T1:00:00Z""#,
        r#""2024-01-01T01:02:03.123456789123Z""#,
        r#""2024-01-01T00:00:00,5Z""#,
        r#""2024-01-01T00:00:00.Z""#,
        r#""2024-01-01T00:00:00+99:99""#,
        r#""2024-01-01T00:00:00+24:00""#,
        r#""2024-01-01T00:00:00-25:61""#,
        r#""2024-01-01T00:00:00+01:0a""#,
        r#""2024-01-01T00:00:00*01:00""#,
        r#""2024-01-01T00:00:00+0100""#,
        r#""2024-01-01T00:00:00+01:00:00""#,
        r#""2024-01-01T00:00:60Z""#,
        r#""2024-01-01T24:00:00Z""#,
        r#""2024-01-01T00:60:00Z""#,
        r#""2024-02-30T00:00:00Z""#,
        r#""2023-02-29T00:00:00Z""#,
        r#""2024-02-29T00:00:00Z""#,
        r#""2024-13-01T00:00:00Z""#,
        r#""2024-1-01T00:00:00Z""#,
        r#""2024-01-01 00:00:00Z""#,
        r#""2024-01-01t00:00:00Z""#,
        r#""2024-01-01T00:00:00z""#,
        r#""2024-01-01T00:00Z""#,
        r#""2024-01-01T00:00:00""#,
        r#""0000-01-01T00:00:00Z""#,
        r#""9999-12-31T23:59:59Z""#,
        r#""+2024-01-01T00:00:00Z""#,
        r#"" 2024-01-01T00:00:00Z""#,
        r#""2024-01-01T00:00:00Z ""#,
        r#""2024-01-01T00:00:00\u005a""#,
        r#""2024-01-01T00:00:00.5.5Z""#,
        r#""""#,
        "null",
        "5",
        "{}",
        "[]",
        "true",
    ];
    let layer = b"conversion layer".to_vec();
    let dir = scratch_dir();
    let v2 = dir.path().join(V2);
    let repo = v2.join("repositories").join(REPO);
    write_blob(&v2, &sha(&layer), &layer);
    write_link(&repo.join(format!("_layers/sha256/{}/link", &sha(&layer)[7..])), &sha(&layer));
    let mut forms = Vec::new();
    for (i, t) in times.iter().enumerate() {
        for history in [
            format!(r#"[{{"created":{t},"created_by":"x"}}]"#),
            format!(r#"[{{"created":{t}}}],"history":[{{"created":"2024-01-01T00:00:00Z"}}]"#),
        ] {
            let config = format!(
                r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}},"history":{history}}}"#,
                sha(b"diff")
            );
            let manifest = format!(
                r#"{{"schemaVersion":2,"mediaType":"{S2}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{}","size":{}}}]}}"#,
                sha(config.as_bytes()),
                config.len(),
                sha(&layer),
                layer.len()
            );
            let tag = format!("t{}", forms.len());
            write_blob(&v2, &sha(config.as_bytes()), config.as_bytes());
            write_link(
                &repo.join(format!("_layers/sha256/{}/link", &sha(config.as_bytes())[7..])),
                &sha(config.as_bytes()),
            );
            let d = sha(manifest.as_bytes());
            write_blob(&v2, &d, manifest.as_bytes());
            write_link(&repo.join(format!("_manifests/revisions/sha256/{}/link", &d[7..])), &d);
            write_link(&repo.join(format!("_manifests/tags/{tag}/current/link")), &d);
            forms.push((tag, format!("{t} (form {i})")));
        }
    }
    let (_, writes) = json(&["writes", dir.path().to_str().unwrap()]);
    let predicted = |tag: &str| {
        writes["operations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["kind"] == "manifest-get-schema1" && o["reference"] == tag)
            .map(|o| o["status"].as_u64().map_or(200, |s| s as u16))
    };
    let reg = Registry::serve(dir.path());
    let mut mismatches = Vec::new();
    let mut statuses = BTreeMap::new();
    for (tag, what) in &forms {
        let real = reg.request("GET", &format!("/v2/{REPO}/manifests/{tag}"), &[]).status;
        *statuses.entry(real).or_insert(0) += 1;
        let want = predicted(tag);
        if want != Some(real) {
            mismatches.push(format!("{what}: registry {real}, predicted {want:?}"));
        }
    }
    eprintln!("{} history forms, {} mismatches, statuses {statuses:?}", forms.len(), mismatches.len());
    assert!(statuses.len() > 1, "every form got the same answer: {statuses:?}");
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// With no `mediaType`, a body that does not decode as an index panics Get
/// (2.8.2 asserts a manifest list, v3.1.1 an OCI index): a GET gets no
/// answer (`no-answer`), and garbage-collect dies (exit 2). v3's index
/// entries are `v1.Descriptor`s, so a bad `data` panics v3 only.
#[test]
fn a_failed_index_decode_panics_like_the_registry() {
    let b = blobs();
    let bodies = vec![
        ("manifests string".to_string(), br#"{"schemaVersion":2,"manifests":"x"}"#.to_vec()),
        ("entry data not base64".to_string(), br#"{"schemaVersion":2,"manifests":[{"data":"!"}]}"#.to_vec()),
    ];
    for real in [Real::V2_8, Real::V3] {
        if !registry::require_real(real) {
            continue;
        }
        for (what, body) in &bodies {
            let panics = real == Real::V3 || what == "manifests string";
            let dir = scratch_dir();
            let digests = build_tree(dir.path(), &b, &[(what.clone(), body.clone())]);
            let root = dir.path().to_str().unwrap();
            let reg = Registry::serve_real(real, dir.path());
            let got = reg.request("GET", &format!("/v2/{REPO}/manifests/{}", digests[0]), &[("Accept", FULL_ACCEPT)]);
            drop(reg);
            let (_, inspect) = json(&["inspect", root, &format!("{REPO}@{}", digests[0]), "--target", real.target()]);
            let predicted = &inspect["tree"]["fetch"]["status"];
            assert_eq!(got.status == 0, panics, "{real:?} {what}: the registry answered {}", got.status);
            assert_eq!(predicted == "no-answer", panics, "{real:?} {what}: predicted {predicted}");
            let real_gc = registry::garbage_collect_real(real, dir.path(), true, false);
            let (_, gc) = json(&["gc", root, "--target", real.target()]);
            if !panics {
                assert!(real_gc.status.success(), "{real:?} {what}: {}", String::from_utf8_lossy(&real_gc.stderr));
                assert!(gc["aborts"].is_null(), "{real:?} {what}: {gc}");
                continue;
            }
            assert_eq!(real_gc.status.code(), Some(2), "{}", String::from_utf8_lossy(&real_gc.stderr));
            assert_eq!(gc["aborts"]["panics"], true, "{gc}");
            let stderr = String::from_utf8_lossy(&real_gc.stderr);
            let first_line = stderr.lines().find(|l| l.starts_with("panic: ")).unwrap_or_default();
            assert_eq!(gc["aborts"]["message"], first_line, "{real:?} {what}");
        }
    }
}

/// v3.1.1 decodes a descriptor's `data` as base64: a layer whose `data` is
/// not is a 500 and aborts garbage-collect (exit 1, dry run too); 2.8.2
/// serves it and collects.
#[test]
fn a_layer_data_not_base64_fails_v3_only() {
    let b = blobs();
    let layer = format!(r#"{{"digest":"{}","size":{},"data":"!!!notbase64"}}"#, b.layers[0].0, b.layers[0].1.len());
    let g = Gen { b: &b, out: Vec::new() };
    let body = g.image_with(OCI, &g.config(), &layer);
    for real in [Real::V2_8, Real::V3] {
        if !registry::require_real(real) {
            continue;
        }
        let dir = scratch_dir();
        let digests = build_tree(dir.path(), &b, &[("data".to_string(), body.clone().into_bytes())]);
        let root = dir.path().to_str().unwrap();
        let reg = Registry::serve_real(real, dir.path());
        let got = reg.request("GET", &format!("/v2/{REPO}/manifests/{}", digests[0]), &[("Accept", FULL_ACCEPT)]);
        drop(reg);
        let (_, inspect) = json(&["inspect", root, &format!("{REPO}@{}", digests[0]), "--target", real.target()]);
        let want = if real == Real::V3 { (500, "server-error") } else { (200, "ok") };
        assert_eq!((got.status, inspect["tree"]["fetch"]["status"].as_str().unwrap()), want, "{real:?}");
        let real_gc = registry::garbage_collect_real(real, dir.path(), true, false);
        let (_, gc) = json(&["gc", root, "--target", real.target()]);
        if real == Real::V3 {
            assert_eq!(real_gc.status.code(), Some(1), "{}", String::from_utf8_lossy(&real_gc.stderr));
            assert_eq!(gc["aborts"]["stage"], "mark", "{gc}");
            assert_eq!(gc["aborts"]["dry_run_too"], true, "{gc}");
        } else {
            assert!(real_gc.status.success(), "{}", String::from_utf8_lossy(&real_gc.stderr));
            assert!(gc["aborts"].is_null(), "{gc}");
        }
    }
}
