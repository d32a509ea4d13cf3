//! The evidence formats: `verify --format dfxml` validated against the DFXML
//! schema (tests/dfxml-schema, v1.1.1 of the DFXML working group's schema)
//! by xmllint and its hashes checked with sha256sum; `verify --format
//! bodyfile`; the provenance header of JSON documents; `--report-digest`.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{regaudit, scratch, testdata};
use sha2::{Digest as _, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_regaudit");

fn run_bytes(args: &[&str], envs: &[(&str, &str)]) -> (i32, Vec<u8>, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove("NO_COLOR").env_remove("CLICOLOR_FORCE");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (out.status.code().unwrap_or(-1), out.stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn set_times(root: &Path) {
    let ok = Command::new("find")
        .args([".", "-exec", "touch", "-h", "-m", "-d", "2024-05-06T07:08:09Z", "{}", "+"])
        .current_dir(root)
        .status()
        .unwrap();
    assert!(ok.success());
}

/// sha256sum of each file, keyed by the path given.
fn sha256sum(root: &Path, paths: &[String]) -> BTreeMap<String, String> {
    let out = Command::new("sha256sum").args(paths).current_dir(root).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (hash, path) = l.split_once("  ").unwrap();
            (path.to_string(), hash.to_string())
        })
        .collect()
}

/// (filename, hash type, hash, filesize, mtime) of every fileobject, read by
/// python3's own XML parser.
fn fileobjects(xml: &Path) -> Vec<[String; 5]> {
    let script = r#"
import sys, xml.etree.ElementTree as ET
ns = {"d": "http://www.forensicswiki.org/wiki/Category:Digital_Forensics_XML"}
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "{%s}dfxml" % ns["d"], root.tag
assert root.find("d:creator/d:program", ns).text == "regaudit"
for fo in root.findall("d:fileobject", ns):
    h = fo.find("d:hashdigest", ns)
    print("\t".join([fo.find("d:filename", ns).text,
                     h.get("type") if h is not None else "-",
                     h.text if h is not None else "-",
                     fo.find("d:filesize", ns).text,
                     fo.find("d:mtime", ns).text]))
"#;
    let out = Command::new("python3").arg("-c").arg(script).arg(xml).output().expect("run python3");
    assert!(out.status.success(), "python3: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            [f[0], f[1], f[2], f[3], f[4]].map(str::to_string)
        })
        .collect()
}

fn xmllint_schema(xml: &Path) {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dfxml-schema/dfxml.xsd");
    let out = Command::new("xmllint")
        .args(["--noout", "--schema", schema.to_str().unwrap(), xml.to_str().unwrap()])
        .output()
        .expect("run xmllint (scripts/test installs libxml2-utils)");
    assert!(out.status.success(), "xmllint: {}", String::from_utf8_lossy(&out.stderr));
}

/// Every blob data file and every link the verify of a whole tree reads.
fn files_read(root: &Path) -> Vec<String> {
    let out = Command::new("find")
        .args([".", "-type", "f", "(", "-name", "data", "-path", "*/blobs/*", "-o", "-name", "link", ")"])
        .current_dir(root)
        .output()
        .unwrap();
    let mut files: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim_start_matches("./").to_string())
        .filter(|p| !p.contains("/signatures/"))
        .collect();
    files.sort();
    files
}

#[test]
fn dfxml_is_valid_and_its_hashes_are_the_files() {
    for tree in ["trees/full", "broken/blob-corrupt"] {
        let dir = scratch(tree);
        set_times(dir.path());
        let root = dir.path().to_str().unwrap();
        let (_, stdout, stderr) = run_bytes(&["verify", root, "--format", "dfxml"], &[]);
        assert!(!stdout.is_empty(), "{stderr}");
        let out = tempfile::tempdir().unwrap();
        let xml = out.path().join("verify.xml");
        std::fs::write(&xml, &stdout).unwrap();
        xmllint_schema(&xml);
        let objects = fileobjects(&xml);
        let names: Vec<String> = objects.iter().map(|o| o[0].clone()).collect();
        assert_eq!(names, files_read(dir.path()), "{tree}: one fileobject per blob and link");
        let sums = sha256sum(dir.path(), &names);
        for [name, kind, hash, size, mtime] in &objects {
            assert_eq!(kind, "sha256", "{name}");
            assert_eq!(hash, &sums[name], "{tree}: {name}");
            let m = std::fs::metadata(dir.path().join(name)).unwrap();
            assert_eq!(size, &m.size().to_string(), "{name}");
            assert_eq!(mtime, "2024-05-06T07:08:09.000000000Z", "{name}");
        }
        if tree == "broken/blob-corrupt" {
            // The corrupt blob's hash is its content's, not its name's.
            assert!(objects.iter().any(|o| o[0].contains("/blobs/") && !o[0].contains(&o[2])), "{objects:?}");
        }
    }
}

/// Lines whose content is the machine's, the run's or the copy's.
fn redact_dfxml(xml: &str) -> String {
    let varying = [
        "os_release",
        "os_version",
        "host",
        "arch",
        "command_line",
        "uid",
        "gid",
        "username",
        "start_time",
        "image_filename",
        "inode",
        "ctime",
        "atime",
        "crtime",
    ];
    xml.lines()
        .filter(|l| !l.trim_start().starts_with("<crtime>"))
        .map(|l| {
            let t = l.trim_start();
            let indent = &l[..l.len() - t.len()];
            if t.starts_with("<regaudit:run ") {
                return format!("{indent}<regaudit:run [redacted]>\n");
            }
            if t.starts_with("<regaudit:root ") {
                return format!("{indent}<regaudit:root [redacted]/>\n");
            }
            for tag in varying {
                if t.starts_with(&format!("<{tag}>")) {
                    return format!("{indent}<{tag}>_</{tag}>\n");
                }
            }
            format!("{l}\n")
        })
        .collect()
}

#[test]
fn dfxml_snapshot() {
    let dir = scratch("trees/minimal");
    set_times(dir.path());
    let (code, stdout, stderr) = run_bytes(&["verify", dir.path().to_str().unwrap(), "--format", "dfxml"], &[]);
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!("verify_minimal_dfxml", redact_dfxml(&String::from_utf8(stdout).unwrap()));
}

#[test]
fn verify_bodyfile_carries_each_files_sha256() {
    let dir = scratch("broken/blob-corrupt");
    set_times(dir.path());
    let run = regaudit(&["verify", dir.path().to_str().unwrap(), "--format", "bodyfile"]);
    assert_eq!(run.code, 1, "a corrupt blob is a finding: {}", run.stderr);
    let lines: Vec<Vec<&str>> = run.stdout.lines().map(|l| l.split('|').collect()).collect();
    let names: Vec<String> = lines.iter().map(|f| f[1].to_string()).collect();
    assert_eq!(names, files_read(dir.path()));
    let sums = sha256sum(dir.path(), &names);
    for f in &lines {
        assert_eq!(f.len(), 11);
        assert_eq!(f[0], sums[f[1]], "{}", f[1]);
        let m = std::fs::symlink_metadata(dir.path().join(f[1])).unwrap();
        assert_eq!((f[2], f[6], f[8]), (&*m.ino().to_string(), &*m.size().to_string(), "1714979289"));
    }
    let redacted: String = run
        .stdout
        .lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split('|').collect();
            for i in [2, 4, 5, 7, 9, 10] {
                f[i] = "_";
            }
            f.join("|") + "\n"
        })
        .collect();
    insta::assert_snapshot!("verify_blob_corrupt_bodyfile", redacted);
}

#[test]
fn provenance_header() {
    let dir = scratch("trees/minimal");
    let given = dir.path().join("docker/registry");
    let given = given.to_str().unwrap();
    let other = testdata("trees/minimal");
    let args = ["diff", given, other.to_str().unwrap(), "--format", "json"];
    let (code, stdout, stderr) = run_bytes(&args, &[]);
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
    assert_eq!(v.as_object().unwrap().keys().next().unwrap(), "provenance", "the header comes first");
    let p = &v["provenance"];
    assert_eq!(p["tool"], "regaudit");
    assert_eq!(p["version"], env!("CARGO_PKG_VERSION"));
    let mut argv = vec![BIN];
    argv.extend(args);
    assert_eq!(p["arguments"], serde_json::json!(argv));
    assert_eq!(p["target"], "2.8");
    let roots = p["roots"].as_array().unwrap();
    assert_eq!(roots.len(), 2);
    for (r, path) in roots.iter().zip([PathBuf::from(given), other]) {
        let resolved = std::fs::canonicalize(&path).unwrap();
        let m = std::fs::metadata(&resolved).unwrap();
        assert_eq!(r["given"], path.to_str().unwrap());
        assert_eq!(r["resolved"], resolved.to_str().unwrap());
        assert_eq!((r["device"].as_u64(), r["inode"].as_u64()), (Some(m.dev()), Some(m.ino())));
    }
    let time = |k: &str| chrono::DateTime::parse_from_rfc3339(p[k].as_str().unwrap()).unwrap();
    assert!(time("started") <= time("finished"));
    assert!(p["started"].as_str().unwrap().ends_with('Z'));
    let id = |flag: &str| {
        let out = Command::new("id").arg(flag).output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    assert_eq!(p["user"]["uid"].to_string(), id("-ru"));
    assert_eq!(p["user"]["euid"].to_string(), id("-u"));
    assert_eq!(p["user"]["gid"].to_string(), id("-rg"));
    assert_eq!(p["user"]["name"], id("-un"));
    // The tree is ours: O_NOATIME is always allowed.
    assert_eq!(p["noatime_honoured"], true);
}

/// Arguments and extra environment of one run.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);

#[test]
fn report_digest_seals_exactly_what_went_to_stdout() {
    let dir = scratch("trees/minimal");
    let root = dir.path().to_str().unwrap();
    let out = tempfile::tempdir().unwrap();
    let seal = out.path().join("report.sha256");
    let seal_arg = seal.to_str().unwrap();
    let cases: [Case; 6] = [
        (&["tags", root, "--format", "json"], &[]),
        (&["tags", root], &[]),
        // Colour forced onto a pipe: the codes are part of what was written.
        (&["tags", root], &[("CLICOLOR_FORCE", "1")]),
        (&["verify", root, "--format", "dfxml"], &[]),
        (&["timeline", root, "--format", "bodyfile"], &[]),
        (&["scan", root, "--format", "json"], &[]),
    ];
    let mut saw_colour = false;
    for (args, envs) in cases {
        let mut all = args.to_vec();
        all.extend(["--report-digest", seal_arg]);
        let (code, stdout, stderr) = run_bytes(&all, envs);
        assert_ne!(code, 2, "{args:?}: {stderr}");
        assert!(!stdout.is_empty());
        saw_colour |= stdout.contains(&0x1b);
        let expected = format!("{}  -\n", hex::encode(Sha256::digest(&stdout)));
        assert_eq!(std::fs::read_to_string(&seal).unwrap(), expected, "{args:?} {envs:?}");
        // And sha256sum agrees, reading the saved report on stdin.
        let saved = out.path().join("report");
        std::fs::write(&saved, &stdout).unwrap();
        let check = Command::new("sha256sum")
            .args(["-c", seal_arg])
            .stdin(Stdio::from(std::fs::File::open(&saved).unwrap()))
            .output()
            .unwrap();
        assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
        std::fs::remove_file(&seal).unwrap();
    }
    assert!(saw_colour, "CLICOLOR_FORCE should have coloured one report");
    // Never written inside the evidence, at any level of it.
    for inside in [dir.path().join("seal"), dir.path().join("docker/registry/seal")] {
        let arg = dir.path().join("docker/registry/v2");
        let run = regaudit(&["tags", arg.to_str().unwrap(), "--report-digest", inside.to_str().unwrap()]);
        assert_eq!(run.code, 2, "{}", run.stdout);
        assert!(run.stdout.is_empty());
        assert!(run.stderr.contains("inside the tree"), "{}", run.stderr);
        assert!(!inside.exists());
    }
}
