//! regaudit on a real terminal, driven as a person would: tmux runs a shell
//! in an 80x24 window, keys are sent to it, and the screen is read back
//! (send-keys, capture-pane). `scan --verify` on a large generated tree:
//! the progress bar appears, moves and is gone at the end; colours appear
//! on a terminal and not with NO_COLOR or `--color never`; the summary fits
//! the 80x24 screen.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// A tmux server of this test's own (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(name: &str) -> Option<Tmux> {
        // Fails loudly without tmux, as conformance does without the registry.
        if std::env::var_os("REGAUDIT_SKIP_TERMINAL").is_some() {
            eprintln!("terminal test skipped: REGAUDIT_SKIP_TERMINAL is set");
            return None;
        }
        let installed = Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success());
        assert!(installed, "tmux is not installed: run scripts/test, which installs it");
        let tmux = Tmux { socket: format!("regaudit-test-{}-{name}", std::process::id()) };
        // A plain shell with a fixed prompt, in an 80x24 window, colour-capable.
        let ok = tmux
            .cmd(&[
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "80",
                "-y",
                "24",
                "env",
                "-u",
                "NO_COLOR",
                "-u",
                "CLICOLOR_FORCE",
            ])
            .args(["TERM=xterm-256color", "PS1=$ ", "sh"])
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux new-session failed");
        Some(tmux)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket, "-f", "/dev/null"]).args(args);
        c.env_remove("NO_COLOR").env_remove("CLICOLOR_FORCE").env_remove("TMUX");
        c
    }

    /// Types a command line and presses Enter.
    fn type_line(&self, line: &str) {
        assert!(self.cmd(&["send-keys", "-t", "t", "-l", line]).status().unwrap().success());
        assert!(self.cmd(&["send-keys", "-t", "t", "Enter"]).status().unwrap().success());
    }

    /// The visible screen; with `escapes`, colour sequences included.
    fn screen(&self, escapes: bool) -> String {
        let mut args = vec!["capture-pane", "-p", "-t", "t"];
        if escapes {
            args.push("-e");
        }
        String::from_utf8_lossy(&self.cmd(&args).output().unwrap().stdout).into_owned()
    }

    fn clear(&self) {
        self.type_line("clear");
        self.wait_for(|s| s.trim() == "$", Duration::from_secs(10));
    }

    /// Polls the screen until `done` holds; returns every distinct screen seen.
    fn wait_for(&self, done: impl Fn(&str) -> bool, timeout: Duration) -> Vec<String> {
        let start = Instant::now();
        let mut seen: Vec<String> = Vec::new();
        loop {
            let screen = self.screen(false);
            if seen.last() != Some(&screen) {
                seen.push(screen.clone());
            }
            if done(&screen) {
                return seen;
            }
            assert!(start.elapsed() < timeout, "timed out; last screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(40));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]).status();
    }
}

/// The minimal tree plus `n` unreferenced blobs of `size` bytes each (real
/// digests), so that hashing takes a few seconds.
fn large_tree(dir: &Path, n: usize, size: usize) {
    copy_tree(&testdata("trees/minimal"), dir);
    let blobs = dir.join("docker/registry/v2/blobs/sha256");
    let staging = dir.join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    for i in 0..n {
        let data: Vec<u8> = (0..size).map(|j| ((j * 31 + i * 7) % 251) as u8).collect();
        let file = staging.join(format!("{i}"));
        std::fs::write(&file, data).unwrap();
        let out = Command::new("sha256sum").arg(&file).output().unwrap();
        let hex = String::from_utf8_lossy(&out.stdout)[..64].to_string();
        let blob = blobs.join(&hex[..2]).join(&hex);
        std::fs::create_dir_all(&blob).unwrap();
        std::fs::rename(&file, blob.join("data")).unwrap();
    }
    std::fs::remove_dir(&staging).unwrap();
}

const ESC: &str = "\x1b[";

#[test]
fn scan_verify_on_a_terminal() {
    let Some(tmux) = Tmux::start("scan") else { return };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("r");
    large_tree(&root, 24, 8 << 20);
    let bin = env!("CARGO_BIN_EXE_regaudit");
    let root = root.to_str().unwrap();
    let now = "--now 2026-12-01T00:00:00Z";

    // The progress bar appears, moves, and is gone once the report is printed.
    tmux.clear();
    tmux.type_line(&format!("{bin} scan --verify {root} {now}; echo EX\"\"IT=$?"));
    let screens = tmux.wait_for(|s| s.contains("EXIT="), Duration::from_secs(300));
    let bars: Vec<&String> = screens.iter().filter(|s| s.contains("verifying [")).collect();
    assert!(!bars.is_empty(), "no progress bar seen in {} screens:\n{}", screens.len(), screens.join("\n----\n"));
    let counts: std::collections::BTreeSet<String> = bars
        .iter()
        .filter_map(|s| s.lines().find(|l| l.contains("verifying [")))
        .map(|l| l.split("] ").nth(1).unwrap_or("").split(' ').next().unwrap_or("").to_string())
        .collect();
    assert!(counts.len() >= 2, "the bar did not move: {counts:?}");
    let last = screens.last().unwrap();
    assert!(!last.contains("verifying ["), "the bar stays after the report:\n{last}");
    assert!(last.contains("EXIT=0"), "{last}");
    assert!(last.contains("Verified 28 blobs"), "{last}");

    // The summary fits 80x24: the screen holds it whole, from its first line on.
    tmux.clear();
    tmux.type_line(&format!("{bin} scan --verify --no-progress {root} {now} | head -n 22"));
    let screen = tmux.wait_for(|s| s.contains("No problems found."), Duration::from_secs(300)).pop().unwrap();
    let rows: Vec<&str> = screen.lines().collect();
    let first = rows.iter().position(|l| l.starts_with("Storage tree")).expect("summary on screen");
    let end = rows.iter().position(|l| l.starts_with("No problems found.")).unwrap();
    assert!(end - first < 24, "{screen}");
    assert!(rows[first + 1].starts_with("Verdict: OK"), "{screen}");
    assert!(rows.iter().any(|l| l.starts_with("garbage-collect -m: ")), "{screen}");

    // Colour on a terminal; none with NO_COLOR or --color never.
    let small = testdata("trees/minimal");
    let small = small.to_str().unwrap();
    for (line, coloured) in [
        (format!("{bin} scan {small} {now}"), true),
        (format!("NO_COLOR=1 {bin} scan {small} {now}"), false),
        (format!("{bin} scan {small} {now} --color never"), false),
        (format!("{bin} scan {small} {now} | cat"), false),
        (format!("{bin} scan {small} {now} --color always | cat"), true),
    ] {
        tmux.clear();
        tmux.type_line(&format!("{line}; echo EX\"\"IT=$?"));
        tmux.wait_for(|s| s.contains("EXIT="), Duration::from_secs(60));
        let screen = tmux.screen(true);
        let verdict = screen.lines().find(|l| l.contains("Verdict:")).unwrap_or_else(|| panic!("{screen}"));
        assert_eq!(verdict.contains(ESC), coloured, "{line}: {verdict:?}");
    }
}
