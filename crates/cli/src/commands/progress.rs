//! Progress on stderr for work that waits on a server: a spinner with the
//! elapsed time, or a bar of bytes sent. indicatif draws nothing when
//! stderr is not a terminal, so scripts and pipes see no progress output.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A spinner saying `message` and the time spent, ticking on its own until
/// dropped (then it is cleared).
pub(super) struct Spinner(ProgressBar);

impl Spinner {
    /// Starts a spinner with `message`.
    pub(super) fn start(message: impl Into<String>) -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(message.into());
        bar.enable_steady_tick(Duration::from_millis(120));
        Spinner(bar)
    }

    /// Changes what the spinner says.
    pub(super) fn say(&self, message: impl Into<String>) {
        self.0.set_message(message.into());
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// A bar of `total` bytes to send, saying `message`; cleared when dropped.
pub(super) struct Bytes(ProgressBar);

impl Bytes {
    /// Starts a bar of `total` bytes.
    pub(super) fn start(total: u64, message: impl Into<String>) -> Self {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(message.into());
        Bytes(bar)
    }

    /// `bytes` more were sent (and acknowledged); the bar now says `message`.
    pub(super) fn sent(&self, bytes: u64, message: impl Into<String>) {
        self.0.inc(bytes);
        self.0.set_message(message.into());
    }
}

impl Drop for Bytes {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
