//! The sending side of a transfer as a pure state machine: which blocks are in
//! flight, what an ACK means, when the file is done. Block indices are 64-bit
//! (so files past 32 MiB at 512-byte blocks just keep counting); only the wire
//! number wraps, 65535 → 0, as tftpd-hpa, atftp, curl and PXE ROMs expect.
//!
//! Retransmission happens only on timeout, never because of a duplicate ACK: with
//! window 1 a duplicate ACK is ignored, which avoids the Sorcerer's Apprentice
//! bug (RFC 1123 4.2.3.1). With a window > 1 an ACK of the block before the window
//! is the RFC 7440 "I lost the start of the window" signal; it restarts the window
//! once, and further copies of it are ignored until the window moves.
use std::ops::RangeInclusive;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Window {
    /// First block (1-based) the client has not acknowledged.
    base: u64,
    /// Index of the final block (a short, possibly empty block ends the file).
    last: u64,
    size: u64,
    restarted: bool,
}

/// What the transfer should do after an ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckOutcome {
    /// Send the window starting at [`Window::span`].
    Send,
    /// Nothing to do; keep waiting.
    Ignore,
    /// The final block is acknowledged.
    Done,
}

impl Window {
    pub(crate) fn new(file_size: u64, blksize: u16, windowsize: u16) -> Window {
        Window {
            base: 1,
            last: file_size / u64::from(blksize.max(1)) + 1,
            size: u64::from(windowsize.max(1)),
            restarted: false,
        }
    }

    /// The blocks to send now: the whole current window.
    pub(crate) fn span(&self) -> RangeInclusive<u64> {
        self.base..=(self.base + self.size - 1).min(self.last)
    }

    /// The window that follows the current one if the client acknowledges all
    /// of it, so its blocks can be read while the client is still receiving;
    /// `None` when the current window ends the file.
    pub(crate) fn next_span(&self) -> Option<RangeInclusive<u64>> {
        let end = *self.span().end();
        (end < self.last).then(|| end + 1..=(end + self.size).min(self.last))
    }

    /// Blocks the client has acknowledged.
    pub(crate) fn acked_blocks(&self) -> u64 {
        self.base - 1
    }

    pub(crate) fn on_ack(&mut self, ack: u16) -> AckOutcome {
        let first = self.base - 1;
        let end = (self.base + self.size - 1).min(self.last);
        let Some(k) = (first..=end).find(|&k| wire(k) == ack) else {
            return AckOutcome::Ignore;
        };
        if k >= self.base {
            self.base = k + 1;
            self.restarted = false;
            return if self.base > self.last {
                AckOutcome::Done
            } else {
                AckOutcome::Send
            };
        }
        if self.size > 1 && !self.restarted {
            self.restarted = true;
            return AckOutcome::Send;
        }
        AckOutcome::Ignore
    }
}

/// The 16-bit block number on the wire for a block index.
pub(crate) fn wire(index: u64) -> u16 {
    (index & 0xffff) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_count_includes_the_short_or_empty_last_block() {
        assert_eq!(Window::new(0, 512, 1).span(), 1..=1);
        assert_eq!(Window::new(1024, 512, 8).span(), 1..=3);
        assert_eq!(Window::new(1023, 512, 8).span(), 1..=2);
    }

    #[test]
    fn lock_step_transfer_ignores_duplicate_acks() {
        let mut w = Window::new(1024, 512, 1);
        assert_eq!(w.on_ack(1), AckOutcome::Send);
        assert_eq!(w.span(), 2..=2);
        assert_eq!(
            w.on_ack(1),
            AckOutcome::Ignore,
            "duplicate ACK must not resend"
        );
        assert_eq!(w.on_ack(7), AckOutcome::Ignore);
        assert_eq!(w.on_ack(2), AckOutcome::Send);
        assert_eq!(w.on_ack(3), AckOutcome::Done);
        assert_eq!(w.acked_blocks(), 3);
    }

    #[test]
    fn window_partial_ack_restarts_after_the_acked_block() {
        let mut w = Window::new(10 * 512, 512, 4);
        assert_eq!(w.span(), 1..=4);
        assert_eq!(w.on_ack(2), AckOutcome::Send);
        assert_eq!(w.span(), 3..=6);
        // ACK of the block before the window: restart once, then ignore copies.
        assert_eq!(w.on_ack(2), AckOutcome::Send);
        assert_eq!(w.on_ack(2), AckOutcome::Ignore);
        assert_eq!(w.on_ack(6), AckOutcome::Send);
        assert_eq!(w.span(), 7..=10);
        assert_eq!(w.on_ack(10), AckOutcome::Send);
        assert_eq!(w.span(), 11..=11);
        assert_eq!(w.on_ack(11), AckOutcome::Done);
    }

    #[test]
    fn next_span_is_what_a_full_ack_leads_to() {
        let mut w = Window::new(10 * 512, 512, 4);
        assert_eq!(w.next_span(), Some(5..=8));
        assert_eq!(w.on_ack(4), AckOutcome::Send);
        assert_eq!(w.span(), 5..=8);
        assert_eq!(w.next_span(), Some(9..=11));
        assert_eq!(w.on_ack(8), AckOutcome::Send);
        assert_eq!(w.span(), 9..=11);
        assert_eq!(w.next_span(), None, "the window ends the file");
    }

    #[test]
    fn block_numbers_roll_over_to_zero() {
        let mut w = Window::new(70_000 * 512, 512, 1);
        for index in 1..=65_535u64 {
            assert_eq!(w.on_ack(wire(index)), AckOutcome::Send);
        }
        assert_eq!(w.span(), 65_536..=65_536);
        assert_eq!(wire(65_536), 0);
        assert_eq!(w.on_ack(0), AckOutcome::Send);
        assert_eq!(w.span(), 65_537..=65_537);
        assert_eq!(wire(65_537), 1);
    }
}
