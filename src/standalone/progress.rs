//! Progress lines for long work (big transfers) on a terminal; nothing at all when standard
//! error is not a TTY, so logs and pipes stay clean.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// A counter redrawn on standard error at most ten times a second.
pub struct Progress {
    label: &'static str,
    unit: &'static str,
    count: u64,
    start: Instant,
    last: Instant,
    shown: bool,
    enabled: bool,
}

impl Progress {
    /// A counter for `label` counting `unit`s; silent unless standard error is a terminal.
    pub fn new(label: &'static str, unit: &'static str) -> Self {
        Self::with_enabled(label, unit, std::io::stderr().is_terminal())
    }

    /// A counter that draws only when `enabled`.
    pub fn with_enabled(label: &'static str, unit: &'static str, enabled: bool) -> Self {
        let now = Instant::now();
        Self {
            label,
            unit,
            count: 0,
            start: now,
            last: now,
            shown: false,
            enabled,
        }
    }

    /// Counts `n` more; redraws when the last draw is old enough.
    pub fn tick(&mut self, n: u64) {
        self.count += n;
        // Small work finishes before anyone could read a progress line.
        if !self.enabled || self.last.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.last = Instant::now();
        self.draw();
        self.shown = true;
    }

    fn draw(&self) {
        let secs = self.start.elapsed().as_secs_f64().max(0.001);
        let rate = self.count as f64 / secs;
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{}: {} {} ({:.0}/s, {:.1}s)\x1b[K",
            self.label, self.count, self.unit, rate, secs
        );
        let _ = err.flush();
    }

    /// Draws the final count and ends the line, if anything was drawn.
    pub fn finish(&mut self) {
        if self.enabled && self.shown {
            self.draw();
            let _ = writeln!(std::io::stderr());
        }
    }

    /// The count so far.
    pub fn count(&self) -> u64 {
        self.count
    }
}

/// An elapsed-time line for work without a count (a reconcile pass, a sync), shown on a
/// terminal once the work has taken longer than a moment; cleared when dropped.
pub struct Working {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Working {
    /// Starts showing `label` (e.g. `applying example.com.`); silent off a terminal.
    pub fn start(label: String) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self { stop: None };
        }
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let start = Instant::now();
            let mut shown = false;
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tokio::select! {
                    _ = &mut rx => break,
                    _ = tick.tick() => {}
                }
                // Quick work never flashes a line.
                if start.elapsed() < Duration::from_millis(500) {
                    continue;
                }
                shown = true;
                let mut err = std::io::stderr().lock();
                let _ = write!(
                    err,
                    "\r{label} ({:.1}s)\x1b[K",
                    start.elapsed().as_secs_f64()
                );
                let _ = err.flush();
            }
            if shown {
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r\x1b[K");
                let _ = err.flush();
            }
        });
        Self { stop: Some(tx) }
    }
}

impl Drop for Working {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}
