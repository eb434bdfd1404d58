//! Progress of long commands on stderr (stdout stays for the result and
//! `--json`): on a terminal a bar with bytes, rate and ETA redrawn in
//! place; otherwise (logs, pipes) one plain line every few seconds.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::output::bytes_text;

/// Bytes done and expected (0: not known yet), polled.
pub type Probe = Box<dyn Fn() -> (u64, u64) + Send>;

/// A running progress display; [`Progress::finish`] ends it.
pub struct Progress {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    last: Arc<parking_lot::Mutex<Option<(u64, u64)>>>,
}

fn rate_text(r: f64) -> String {
    format!("{}/s", bytes_text(Some(r as u64)))
}

fn eta_text(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{}:{:02}", s / 60, s % 60),
        _ => format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60),
    }
}

/// One progress line.
pub fn line(label: &str, done: u64, total: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(0.001);
    let rate = done as f64 / secs;
    let mut s = format!("{label}: {}", bytes_text(Some(done)));
    if total > 0 {
        let pct = (done.min(total) as f64 * 100.0 / total as f64).floor();
        s += &format!(" of {} ({pct}%)", bytes_text(Some(total)));
    }
    s += &format!(", {}", rate_text(rate));
    if total > done && rate > 0.0 {
        s += &format!(", ETA {}", eta_text((total - done) as f64 / rate));
    }
    s
}

fn bar(done: u64, total: u64) -> String {
    const W: usize = 24;
    let filled = if total == 0 { 0 } else { ((done.min(total) as f64 / total as f64) * W as f64) as usize };
    format!("[{}{}]", "#".repeat(filled), "-".repeat(W - filled))
}

impl Progress {
    /// Starts showing `label`'s progress as `probe` reports it.
    pub fn start(label: &str, probe: Probe) -> Progress {
        let stop = Arc::new(AtomicBool::new(false));
        let last = Arc::new(parking_lot::Mutex::new(None));
        let final_values = last.clone();
        let tty = std::io::stderr().is_terminal();
        let label = label.to_string();
        let s = stop.clone();
        let handle = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                let started = Instant::now();
                let mut last_plain = Instant::now();
                let tick = if tty { Duration::from_millis(200) } else { Duration::from_millis(250) };
                while !s.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    let (done, total) = probe();
                    if tty {
                        let l = line(&label, done, total, started.elapsed());
                        let mut e = std::io::stderr().lock();
                        let _ = write!(e, "\r\x1b[2K{} {l}", bar(done, total));
                        let _ = e.flush();
                    } else if last_plain.elapsed() >= Duration::from_secs(5) {
                        last_plain = Instant::now();
                        eprintln!("{}", line(&label, done, total, started.elapsed()));
                    }
                }
                let (done, total) = final_values.lock().unwrap_or_else(&probe);
                if tty {
                    eprint!("\r\x1b[2K");
                }
                eprintln!("{}", line(&label, done, total.max(done), started.elapsed()));
            })
            .ok();
        Progress { stop, handle, last }
    }

    /// Stops, printing `done` of `total` as the final line (work that ended
    /// before the probe could see it).
    pub fn finish_at(self, done: u64, total: u64) {
        *self.last.lock() = Some((done, total));
        self.finish();
    }

    /// Stops and prints the final line.
    pub fn finish(mut self) {
        self.end();
    }

    fn end(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.end();
    }
}

/// Total size of the files under `dir` (a generation being written).
pub fn dir_size(dir: &std::path::Path) -> u64 {
    crate::backup::manifest::list_files(dir)
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_show_bytes_rate_and_eta() {
        let l = line("upload", 10 << 20, 40 << 20, Duration::from_secs(5));
        assert!(l.contains("of") && l.contains("25%") && l.contains("/s") && l.contains("ETA 15 s"), "{l}");
        assert_eq!(bar(1, 2).matches('#').count(), 12);
        assert_eq!(eta_text(75.0), "1:15");
    }
}
