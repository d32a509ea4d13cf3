//! Progress on stderr, only when stderr is a terminal and not disabled:
//! a byte bar while hashing, and the running cost of each object-store root
//! (objects listed, bytes read, requests made, rate). Every bar is drawn
//! through one [`MultiProgress`], so they stack rather than overwrite.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::storage::s3::RequestStats;

static BARS: LazyLock<MultiProgress> = LazyLock::new(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));

fn shown(enabled: bool) -> bool {
    enabled && std::io::stderr().is_terminal()
}

pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A byte-counting bar with rate and ETA; hidden unless `enabled` and
    /// stderr is a terminal.
    pub fn bytes(enabled: bool, total: u64, message: &str) -> Progress {
        let bar = if shown(enabled) {
            let bar = BARS.add(ProgressBar::new(total));
            let style =
                ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message(message.to_string());
            bar
        } else {
            ProgressBar::hidden()
        };
        Progress { bar }
    }

    pub fn add(&self, n: u64) {
        self.bar.inc(n);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// The running cost of one object-store root, redrawn a few times a second
/// until [`finish_object_stores`].
struct StoreLine {
    bar: ProgressBar,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

static STORE_LINES: Mutex<Vec<StoreLine>> = Mutex::new(Vec::new());

/// Shows the cost of reading `url`: `stats` are its live request counters,
/// `objects` how many objects its listing found (0 until it ends).
pub fn object_store(enabled: bool, url: &str, stats: Arc<RequestStats>, objects: Arc<AtomicU64>) {
    if !shown(enabled) {
        return;
    }
    let bar = BARS.add(ProgressBar::new_spinner());
    bar.set_style(ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
    let stop = Arc::new(AtomicBool::new(false));
    let (line, halt, url) = (bar.clone(), stop.clone(), url.to_string());
    let started = Instant::now();
    let thread = std::thread::spawn(move || {
        while !halt.load(Ordering::Relaxed) {
            let c = stats.snapshot();
            let secs = started.elapsed().as_secs_f64().max(0.001);
            let listed = match objects.load(Ordering::Relaxed) {
                0 => format!("listing ({} pages)", c.list),
                n => format!("{n} objects listed"),
            };
            line.set_message(format!(
                "{url}: {listed}, {} read, {} requests ({} LIST, {} GET, {} HEAD), {:.0} requests/s",
                HumanBytes(c.bytes_read),
                c.total(),
                c.list,
                c.get,
                c.head,
                c.total() as f64 / secs
            ));
            line.tick();
            std::thread::sleep(Duration::from_millis(150));
        }
    });
    STORE_LINES.lock().unwrap_or_else(|p| p.into_inner()).push(StoreLine { bar, stop, thread: Some(thread) });
}

/// Clears every object-store line (before the report is written).
pub fn finish_object_stores() {
    let lines = std::mem::take(&mut *STORE_LINES.lock().unwrap_or_else(|p| p.into_inner()));
    for mut line in lines {
        line.stop.store(true, Ordering::Relaxed);
        if let Some(t) = line.thread.take() {
            let _ = t.join();
        }
        line.bar.finish_and_clear();
    }
}
