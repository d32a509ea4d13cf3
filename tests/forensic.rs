//! Forensic safety: every command leaves the evidence as it found it.
//!
//! Each command runs under `strace -f` on a read-only bind mount of a tree;
//! the trace must show no open for writing, no create, rename, unlink,
//! chmod, utime or other change below the mount, every open of the tree
//! with `O_NOATIME`, and nothing at all outside it reached through a
//! symlink. The tree's bytes, mtimes, atimes and ctimes must be the same
//! afterwards. A second test runs every command on a writable tree and
//! checks atimes directly.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::registry::require_root;
use common::{copy_tree, testdata};
use rustix::fs::{Mode, OFlags};
use sha2::{Digest as _, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_regaudit");
const REF: &str = "multi/docker-list:latest";
/// 2001-01-01: older than every mtime, so a read without O_NOATIME would
/// update it even under `relatime`.
const OLD_ATIME: &str = "@978307200";

/// Every command with the arguments that exercise its reads: `a` and `b`
/// are trees, `dest` an export directory outside both.
fn commands(a: &str, b: &str, dest: &str) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<&str>> = Vec::new();
    for format in ["text", "json"] {
        out.push(vec!["tags", a, "--verify", "--format", format]);
        out.push(vec!["inspect", a, REF, "--verify", "--format", format]);
        out.push(vec!["verify", a, "--format", format]);
        out.push(vec!["scan", a, "--verify", "--format", format]);
        out.push(vec!["du", a, "--format", format]);
        out.push(vec!["diff", a, b, "--format", format]);
        out.push(vec!["gc", a, "--format", format]);
        out.push(vec!["gc", a, "-m", "--format", format]);
    }
    out.push(vec!["gc", a, "--format", "gc-log"]);
    out.push(vec!["gc", a, "-m", "--format", "gc-log"]);
    out.push(vec!["tags", b, "--verify"]);
    for format in ["text", "json", "bodyfile"] {
        out.push(vec!["timeline", a, "--format", format]);
    }
    out.push(vec!["verify", a, "--format", "dfxml"]);
    out.push(vec!["verify", a, "--format", "bodyfile"]);
    out.push(vec!["export", a, REF, dest]);
    out.into_iter().map(|c| c.into_iter().map(str::to_string).collect()).collect()
}

/// The evidence: `a` (the full tree, plus a symlink pointing outside it and
/// a FIFO) and `b` (the minimal tree), with every atime set far back.
struct Evidence {
    dir: tempfile::TempDir,
    /// What the planted symlinks point at; nothing may ever touch it.
    outside: tempfile::TempDir,
}

impl Evidence {
    fn make() -> Evidence {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "not evidence").unwrap();
        copy_tree(&testdata("trees/full"), &dir.path().join("a"));
        copy_tree(&testdata("trees/minimal"), &dir.path().join("b"));
        let v2 = dir.path().join("a/docker/registry/v2");
        std::os::unix::fs::symlink(outside.path(), v2.join("repositories/evil")).unwrap();
        let layers = v2.join("repositories/base/schema2/_layers/sha256");
        let first = std::fs::read_dir(&layers).unwrap().next().unwrap().unwrap().path();
        std::fs::remove_file(first.join("link")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), first.join("link")).unwrap();
        let fifo = v2.join("repositories/base/schema2/_manifests/fifo");
        assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let touched = Command::new("sh")
            .arg("-c")
            .arg(format!("find . -exec touch -a -h -d {OLD_ATIME} {{}} +"))
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(touched.success());
        Evidence { dir, outside }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

#[derive(Debug, PartialEq, Eq)]
struct State {
    mode: u32,
    len: u64,
    mtime: (i64, i64),
    atime: (i64, i64),
    ctime: (i64, i64),
    content: Option<String>,
}

/// Every entry below `root` with its times and (for files) content hash,
/// read with O_NOATIME so that taking the snapshot changes nothing.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, State> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, State>) {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOATIME | OFlags::CLOEXEC;
        let fd = rustix::fs::open(dir, flags, Mode::empty()).unwrap();
        for e in rustix::fs::Dir::new(fd).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let p = dir.join(std::ffi::OsStr::from_bytes(name));
            let m = std::fs::symlink_metadata(&p).unwrap();
            let mut state = State {
                mode: m.mode(),
                len: m.len(),
                mtime: (m.mtime(), m.mtime_nsec()),
                atime: (m.atime(), m.atime_nsec()),
                ctime: (m.ctime(), m.ctime_nsec()),
                content: None,
            };
            if m.is_file() {
                let mut f = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(OFlags::NOATIME.bits() as i32)
                    .open(&p)
                    .unwrap();
                let mut bytes = Vec::new();
                f.read_to_end(&mut bytes).unwrap();
                state.content = Some(hex::encode(Sha256::digest(&bytes)));
            }
            if m.is_dir() {
                walk(root, &p, out);
            }
            out.insert(p.strip_prefix(root).unwrap().to_path_buf(), state);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn assert_unchanged(before: &BTreeMap<PathBuf, State>, after: &BTreeMap<PathBuf, State>) {
    let changed: Vec<String> = before
        .iter()
        .filter(|(p, s)| after.get(*p) != Some(s))
        .map(|(p, s)| format!("{}: {s:?} -> {:?}", p.display(), after.get(p)))
        .chain(after.keys().filter(|p| !before.contains_key(*p)).map(|p| format!("{}: created", p.display())))
        .collect();
    assert!(changed.is_empty(), "the evidence changed:\n{}", changed.join("\n"));
}

/// Syscalls that change something about the path or fd they name.
const CHANGING: &[&str] = &[
    "creat",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "unlink",
    "unlinkat",
    "rmdir",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "truncate",
    "ftruncate",
    "fallocate",
    "chmod",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "chown",
    "fchown",
    "lchown",
    "fchownat",
    "utime",
    "utimes",
    "futimesat",
    "utimensat",
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    "write",
    "writev",
    "pwrite64",
    "pwritev",
    "pwritev2",
];

/// One syscall of an strace log: its name, its arguments and result as
/// text. `<unfinished ...>` / `<... resumed>` pairs (threads) are joined.
fn syscalls(log: &str) -> Vec<(String, String)> {
    let mut pending: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::new();
    for line in log.lines() {
        let Some((pid, rest)) = line.split_once(' ') else { continue };
        let rest = rest.trim_start();
        let full = if let Some(head) = rest.strip_suffix(" <unfinished ...>") {
            pending.insert(pid.to_string(), head.to_string());
            continue;
        } else if rest.starts_with("<... ") {
            let tail = rest.split_once(" resumed>").map(|x| x.1).unwrap_or("");
            format!("{}{tail}", pending.remove(pid).unwrap_or_default())
        } else {
            rest.to_string()
        };
        if let Some((name, args)) = full.split_once('(') {
            if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                out.push((name.to_string(), args.to_string()));
            }
        }
    }
    out
}

/// Top-level comma-separated arguments of a syscall's text.
fn args(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start, mut quoted) = (0i32, 0, false);
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b'{' | b'[' | b'(' | b'<' if !quoted => depth += 1,
            b'}' | b']' | b'>' if !quoted => depth -= 1,
            b')' if !quoted => {
                if depth == 0 {
                    out.push(text[start..i].trim());
                    return out;
                }
                depth -= 1;
            }
            b',' if !quoted && depth == 0 => {
                out.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Everything in one trace that writes below `tree` or touches `outside`;
/// also counts the opens below `tree`.
fn violations(log: &str, tree: &str, outside: &str, opens: &mut usize) -> Vec<String> {
    let mut bad = Vec::new();
    for (name, text) in syscalls(log) {
        if text.contains(outside) {
            bad.push(format!("reached outside the tree: {name}({text}"));
        }
        if !text.contains(tree) {
            continue;
        }
        let a = args(&text);
        let under = |i: usize| a.get(i).is_some_and(|s| s.contains(tree));
        match name.as_str() {
            "open" | "openat" | "openat2" => {
                let flags = match name.as_str() {
                    "open" => a.get(1).copied().unwrap_or(""),
                    "openat" => a.get(2).copied().unwrap_or(""),
                    _ => a.get(2).copied().unwrap_or(""),
                };
                let path_arg = if name == "open" { 0 } else { 1 };
                // The walk opens names relative to a directory of the tree it
                // holds open: then the directory argument is under the tree.
                let relative_to_tree = name != "open" && under(0);
                if !under(path_arg) && !relative_to_tree {
                    continue;
                }
                *opens += 1;
                let writes = ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND", "O_TMPFILE"];
                if !flags.contains("O_RDONLY") || writes.iter().any(|w| flags.contains(w)) {
                    bad.push(format!("opened for writing: {name}({text}"));
                }
                if !flags.contains("O_NOATIME") {
                    bad.push(format!("opened without O_NOATIME: {name}({text}"));
                }
                if !flags.contains("O_NOFOLLOW") {
                    bad.push(format!("opened without O_NOFOLLOW: {name}({text}"));
                }
            }
            // Reads from the tree into DEST are fine; only the output fd matters.
            "copy_file_range" | "splice" if under(2) => bad.push(format!("wrote into the tree: {name}({text}")),
            "sendfile" | "tee" if under(0) => bad.push(format!("wrote into the tree: {name}({text}")),
            "mmap" if text.contains("PROT_WRITE") && text.contains("MAP_SHARED") => {
                bad.push(format!("mapped for writing: {name}({text}"))
            }
            // These name the file by fd (the first argument); their other
            // arguments (written bytes) may well mention the tree's path.
            "write" | "writev" | "pwrite64" | "pwritev" | "pwritev2" | "ftruncate" | "fallocate" | "fchmod"
            | "fchown" | "fsetxattr" | "fremovexattr"
                if !under(0) => {}
            n if CHANGING.contains(&n) => bad.push(format!("changed the tree: {name}({text}")),
            _ => {}
        }
    }
    bad
}

fn tool(name: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().is_ok_and(|o| o.status.success())
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Needs root: unshare -m, mount --bind, mount -o remount,ro.
#[test]
#[ignore = "needs root"]
fn every_command_is_read_only_on_a_read_only_mount_under_strace() {
    require_root();
    for t in ["strace", "unshare", "mount", "mkfifo"] {
        assert!(tool(t), "{t} is not installed: run scripts/test, which installs it");
    }
    let evidence = Evidence::make();
    let mnt = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let dest_parent = tempfile::tempdir().unwrap();
    let mnt_path = mnt.path().canonicalize().unwrap();
    let a = mnt_path.join("a").display().to_string();
    let b = mnt_path.join("b/docker/registry/v2").display().to_string();
    let dest = dest_parent.path().join("oci").display().to_string();
    let commands = commands(&a, &b, &dest);

    let mut script = format!(
        "set -e\nmount --bind {ev} {mnt}\nmount -o remount,bind,ro {mnt}\n\
         if touch {mnt}/probe 2>/dev/null; then echo 'mount is writable' >&2; exit 99; fi\nset +e\n",
        ev = sh_quote(&evidence.path().display().to_string()),
        mnt = sh_quote(&mnt_path.display().to_string()),
    );
    for (i, cmd) in commands.iter().enumerate() {
        let argv: Vec<String> = cmd.iter().map(|s| sh_quote(s)).collect();
        script.push_str(&format!(
            "NO_COLOR=1 strace -f -y -qq -e trace=%file,%desc -o {log}/{i}.trace {bin} {argv} >{log}/{i}.out 2>{log}/{i}.err; \
             echo $? >{log}/{i}.rc\n",
            log = logs.path().display(),
            bin = sh_quote(BIN),
            argv = argv.join(" "),
        ));
    }
    let before = snapshot(evidence.path());
    let status =
        Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", &script]).status().unwrap();
    assert!(status.success(), "the read-only mount could not be set up: {status}");

    let tree = format!("{}/", mnt_path.display());
    let outside = evidence.outside.path().canonicalize().unwrap().display().to_string();
    let mut failures = Vec::new();
    let mut total_opens = 0;
    for (i, cmd) in commands.iter().enumerate() {
        let read = |ext: &str| std::fs::read_to_string(logs.path().join(format!("{i}.{ext}"))).unwrap_or_default();
        let rc: i32 = read("rc").trim().parse().unwrap_or(-1);
        let what = cmd.join(" ");
        if !(0..=1).contains(&rc) && !incomplete(rc, &read("err")) {
            failures.push(format!("`{what}` exited {rc}: {}", read("err")));
        }
        let mut opens = 0;
        for v in violations(&read("trace"), &tree, &outside, &mut opens) {
            failures.push(format!("`{what}`: {v}"));
        }
        if opens == 0 {
            failures.push(format!("`{what}`: the trace shows no open below the mount; is strace tracing it?"));
        }
        total_opens += opens;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(total_opens > 1000, "only {total_opens} opens traced");
    // The export did happen, outside the tree.
    assert!(Path::new(&dest).join("index.json").is_file());
    assert_unchanged(&before, &snapshot(evidence.path()));
}

/// On a writable tree the kernel would update atimes (relatime does when
/// atime is older than mtime); every command must leave them as found.
#[test]
fn every_command_leaves_atimes_as_found_on_a_writable_tree() {
    let evidence = Evidence::make();
    let probe = evidence.path().join("probe");
    std::fs::write(&probe, "x").unwrap();
    assert!(Command::new("touch").args(["-a", "-d", OLD_ATIME]).arg(&probe).status().unwrap().success());
    let atime = |p: &Path| std::fs::metadata(p).unwrap().atime();
    let old = atime(&probe);
    std::fs::read(&probe).unwrap();
    if atime(&probe) == old {
        eprintln!(
            "\n*** SKIPPED atime test: this filesystem does not update atimes on read (mounted noatime?), \
             so it cannot tell whether regaudit uses O_NOATIME ***\n"
        );
        return;
    }
    std::fs::remove_file(&probe).unwrap();
    let dest_parent = tempfile::tempdir().unwrap();
    let a = evidence.path().join("a").display().to_string();
    let b = evidence.path().join("b/docker/registry/v2").display().to_string();
    let dest = dest_parent.path().join("oci").display().to_string();
    let before = snapshot(evidence.path());
    for cmd in commands(&a, &b, &dest) {
        let out = Command::new(BIN).args(&cmd).env("NO_COLOR", "1").output().unwrap();
        let rc = out.status.code().unwrap_or(-1);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!((0..=1).contains(&rc) || incomplete(rc, &err), "`{}` exited {rc}: {err}", cmd.join(" "));
    }
    assert_unchanged(&before, &snapshot(evidence.path()));
}

#[test]
fn the_strace_parser_sees_what_it_must() {
    let log = "\
12 openat(AT_FDCWD, \"/m/t/x\", O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_NOFOLLOW|O_NOATIME) = 3</m/t/x>
12 openat2(AT_FDCWD, \"/m/t/y\", {flags=O_RDONLY|O_NOFOLLOW|O_CLOEXEC, resolve=RESOLVE_NO_SYMLINKS}, 24 <unfinished ...>
13 unlinkat(AT_FDCWD, \"/m/t/z\", 0) = -1 EROFS (Read-only file system)
12 <... openat2 resumed>) = 4</m/t/y>
13 copy_file_range(4</m/t/y>, NULL, 5</d/blob>, 100, 0) = 100
13 copy_file_range(5</d/blob>, NULL, 4</m/t/y>, 100, 0) = 100
13 openat(AT_FDCWD, \"/m/t/w\", O_WRONLY|O_CREAT|O_NOFOLLOW|O_NOATIME, 0644) = 6
13 write(1<pipe:[7]>, \"root /m/t/a\", 11) = 11
13 write(4</m/t/y>, \"x\", 1) = -1 EBADF (Bad file descriptor)
13 newfstatat(AT_FDCWD, \"/o/secret\", {st_mode=S_IFREG|0644, st_size=1, ...}, AT_SYMLINK_NOFOLLOW) = 0
";
    let mut opens = 0;
    let v = violations(log, "/m/t/", "/o", &mut opens);
    assert_eq!(opens, 3);
    assert_eq!(v.len(), 6, "{v:#?}");
    let expected = [
        "changed the tree: unlinkat",
        "opened without O_NOATIME: openat2(AT_FDCWD, \"/m/t/y\"",
        "wrote into the tree: copy_file_range(5",
        "opened for writing: openat(AT_FDCWD, \"/m/t/w\"",
        "changed the tree: write(4",
        "reached outside the tree: newfstatat",
    ];
    for (got, want) in v.iter().zip(expected) {
        assert!(got.starts_with(want), "{got} should start with {want}");
    }
}

/// The planted symlinks are followed by the real registry: predictions they
/// affect (gc, writes) say they are incomplete and exit 2 (issue 12).
fn incomplete(rc: i32, stderr: &str) -> bool {
    rc == 2 && stderr.contains("incomplete: the answer above does not cover")
}
