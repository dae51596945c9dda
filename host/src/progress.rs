//! Progress of long commands (check, export, backup, restore) on a
//! terminal: a spinner on stderr with what is being done, how many records
//! so far and the time taken. When stderr is not a terminal (piped,
//! redirected, under a supervisor) nothing is drawn, so scripts see only
//! the command's own output.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress(ProgressBar);

impl Progress {
    /// A spinner that counts `unit`s (`records`, `users`, …) while `what`
    /// runs.
    pub fn counting(what: &str, unit: &str) -> Progress {
        Progress::with_template(what, &format!("{{spinner}} {{msg}}: {{human_pos}} {unit} ({{elapsed}})"))
    }

    /// A spinner for one long step whose size is not known.
    pub fn working(what: &str) -> Progress {
        Progress::with_template(what, "{spinner} {msg} ({elapsed})")
    }

    fn with_template(what: &str, template: &str) -> Progress {
        let target =
            if std::io::stderr().is_terminal() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let bar = ProgressBar::with_draw_target(None, target);
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.set_message(what.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress(bar)
    }

    pub fn add(&self, n: u64) {
        self.0.inc(n);
    }

    pub fn set_message(&self, what: String) {
        self.0.set_message(what);
    }

    /// Runs `f` (which prints) with the spinner off the line.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.0.suspend(f)
    }
}

impl Drop for Progress {
    /// Clears the line, so what the command prints last is not mixed with it.
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
