//! The progress display of `pxebuild wait`: change lines always (stderr, so logs
//! and CI show them), plus a live spinner line with the current summary when
//! stderr is a terminal. Quiet mode (`-q`) shows neither.
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub(crate) struct Progress {
    /// `Some` only on a terminal: the live summary line.
    bar: Option<ProgressBar>,
}

impl Progress {
    pub(crate) fn start() -> Progress {
        let target = ProgressDrawTarget::stderr();
        if crate::log::level() == 0 || target.is_hidden() {
            return Progress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(None, target);
        if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress { bar: Some(bar) }
    }

    /// A line that stays (printed above the live line on a terminal).
    pub(crate) fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => crate::info!("{text}"),
        }
    }

    /// Replaces the live summary (terminal only).
    pub(crate) fn status(&self, text: String) {
        if let Some(bar) = &self.bar {
            bar.set_message(text);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
