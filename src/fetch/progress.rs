//! Download progress: a bar per file plus a total when stderr is a terminal,
//! one plain line per finished file otherwise (CI logs stay readable).
use std::io::IsTerminal;
use std::sync::OnceLock;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

struct Board {
    multi: MultiProgress,
    total: ProgressBar,
}

/// The shared bars, or `None` when stderr is not a terminal (or `-q`).
fn board() -> Option<&'static Board> {
    static BOARD: OnceLock<Option<Board>> = OnceLock::new();
    BOARD
        .get_or_init(|| {
            if !std::io::stderr().is_terminal() || crate::log::level() == 0 {
                return None;
            }
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let total = multi.add(ProgressBar::new(0));
            total.set_style(
                ProgressStyle::with_template("total {bytes}/{total_bytes} {bytes_per_sec}")
                    .expect("valid template"),
            );
            Some(Board { multi, total })
        })
        .as_ref()
}

/// Progress of one file.
pub(crate) struct Bar {
    name: String,
    bar: Option<ProgressBar>,
}

impl Bar {
    pub(crate) fn new(name: &str) -> Bar {
        let bar = board().map(|b| {
            let bar = b.multi.insert_before(&b.total, ProgressBar::new(0));
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg:40!} {bar:30} {bytes:>10}/{total_bytes:10} {eta:>4}",
                )
                .expect("valid template"),
            );
            bar.set_message(name.to_string());
            bar
        });
        Bar {
            name: name.to_string(),
            bar,
        }
    }

    /// A transfer (re)starts: `len` if known, `done` bytes already on disk.
    pub(crate) fn start(&self, len: Option<u64>, done: u64) {
        if let (Some(bar), Some(board)) = (&self.bar, board()) {
            let before = bar.length().unwrap_or(0);
            let len = len.unwrap_or(0);
            board.total.inc_length(len.saturating_sub(before));
            bar.set_length(len);
            board
                .total
                .set_position(board.total.position().saturating_sub(bar.position()) + done);
            bar.set_position(done);
        }
    }

    pub(crate) fn inc(&self, n: u64) {
        if let (Some(bar), Some(board)) = (&self.bar, board()) {
            bar.inc(n);
            board.total.inc(n);
        }
    }

    /// The file is done: clear its bar, or print its line.
    pub(crate) fn finish(&self, what: &str) {
        match &self.bar {
            Some(bar) => {
                bar.finish_and_clear();
                if let Some(board) = board() {
                    board.multi.suspend(|| crate::info!("{} {what}", self.name));
                }
            }
            None => crate::info!("{} {what}", self.name),
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
