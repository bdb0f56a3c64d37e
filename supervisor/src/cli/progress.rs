//! Progress on stderr for anything that may take more than a moment: a registration's prepare,
//! a cold start or a long invocation, a prewarm. One spinner for all of them, so they look and
//! behave alike: on a terminal an indicatif spinner with the stage and the elapsed time, cleared
//! when the wait ends; on a pipe either nothing or one line per stage change (for logs of
//! deploy hooks), as the caller chooses.

use std::future::Future;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::output::print_stderr;

/// How long a wait goes unannounced: most warm invocations answer well within it, and a spinner
/// that flashes for a few milliseconds is noise.
pub(super) const SPINNER_DELAY: Duration = Duration::from_millis(300);

/// How often the elapsed time on the spinner is refreshed.
const REFRESH: Duration = Duration::from_millis(100);

/// What to show where stderr is not a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OnPipe {
    /// Nothing: the command's own output says it all (an invocation).
    Quiet,
    /// A line whenever the stage changes (a prepare, whose steps are worth a log line).
    Lines,
}

/// Progress on stderr (see the module docs).
pub(super) enum Progress {
    Spinner(ProgressBar),
    Lines {
        /// The last stage printed, `None` before the first.
        shown: Option<String>,
    },
    Quiet,
}

impl Progress {
    /// Progress for this process's stderr.
    pub(super) fn on_stderr(on_pipe: OnPipe, first: &str) -> Progress {
        Progress::new(std::io::stderr().is_terminal(), on_pipe, first)
    }

    /// A spinner showing `first` when `terminal`, else what `on_pipe` says.
    pub(super) fn new(terminal: bool, on_pipe: OnPipe, first: &str) -> Progress {
        if !terminal {
            return match on_pipe {
                OnPipe::Quiet => Progress::Quiet,
                OnPipe::Lines => Progress::Lines { shown: None },
            };
        }
        let bar = ProgressBar::new_spinner();
        // The template is a constant; the fallback only guards against an indicatif that
        // reads it differently.
        let style = ProgressStyle::with_template("{spinner} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        // Something to read before the first update comes.
        bar.set_message(first.to_owned());
        bar.enable_steady_tick(REFRESH);
        Progress::Spinner(bar)
    }

    /// Shows the current stage: on the spinner with the time waited so far, as a line when the
    /// stage changed.
    pub(super) fn update(&mut self, stage: &str, elapsed: Duration) {
        match self {
            Progress::Spinner(bar) => bar.set_message(spinner_line(stage, elapsed)),
            Progress::Lines { shown } => {
                if shown.as_deref() != Some(stage) {
                    print_stderr(stage);
                    *shown = Some(stage.to_owned());
                }
            }
            Progress::Quiet => {}
        }
    }

    /// Clears the spinner, or closes the lines with `last` (only when a stage was printed: a
    /// wait that showed nothing needs no ending either); the caller prints the rest.
    pub(super) fn finish(&mut self, last: &str) {
        match self {
            Progress::Spinner(bar) => bar.finish_and_clear(),
            Progress::Lines { shown: Some(_) } => print_stderr(last),
            Progress::Lines { shown: None } | Progress::Quiet => {}
        }
    }
}

impl Drop for Progress {
    // On an error, a timeout or Ctrl-C the spinner goes, so the messages after it start on a
    // clean line.
    fn drop(&mut self) {
        if let Progress::Spinner(bar) = self
            && !bar.is_finished()
        {
            bar.finish_and_clear();
        }
    }
}

/// How a wait under [`waiting`] ended.
#[derive(Debug)]
pub(super) enum Waited<T> {
    /// The future's output.
    Done(T),
    /// Ctrl-C came first (only listened for while a spinner shows).
    Interrupted,
}

/// Awaits `work`; on a terminal, a spinner with `stage` and the elapsed time appears once it has
/// taken [`SPINNER_DELAY`], and Ctrl-C then stops the wait. On a pipe it only awaits: nothing is
/// printed and Ctrl-C keeps its default action.
pub(super) async fn waiting<T>(work: impl Future<Output = T>, stage: &str) -> Waited<T> {
    waiting_on(std::io::stderr().is_terminal(), work, stage).await
}

async fn waiting_on<T>(terminal: bool, work: impl Future<Output = T>, stage: &str) -> Waited<T> {
    if !terminal {
        return Waited::Done(work.await);
    }
    let started = Instant::now();
    tokio::pin!(work);
    tokio::select! {
        out = &mut work => return Waited::Done(out),
        () = tokio::time::sleep(SPINNER_DELAY) => {}
    }
    let mut progress = Progress::new(true, OnPipe::Quiet, &spinner_line(stage, started.elapsed()));
    // Listening only from here on: a quick answer never changes what Ctrl-C does.
    let interrupted = ctrl_c();
    tokio::pin!(interrupted);
    let mut tick = tokio::time::interval(REFRESH);
    loop {
        tokio::select! {
            out = &mut work => {
                progress.finish("");
                return Waited::Done(out);
            }
            () = &mut interrupted => return Waited::Interrupted,
            _ = tick.tick() => progress.update(stage, started.elapsed()),
        }
    }
}

/// Resolves on Ctrl-C; never, when no handler can be installed (then Ctrl-C still ends the
/// process the default way).
pub(super) async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The spinner's text: the stage and how long this client has waited.
pub(super) fn spinner_line(stage: &str, elapsed: Duration) -> String {
    format!("{stage} {}", seconds(elapsed.as_secs_f64()))
}

/// `1.2 s`, `3 min 05 s`, `1 h 02 min`.
pub(super) fn seconds(secs: f64) -> String {
    if secs < 59.95 {
        return format!("{:.1} s", secs.max(0.0));
    }
    // Whole seconds are enough once it takes minutes; the float is finite and positive here.
    let whole = secs.round() as u64;
    if whole < 3600 {
        format!("{} min {:02} s", whole / 60, whole % 60)
    } else {
        format!("{} h {:02} min", whole / 3600, whole % 3600 / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_seconds_minutes_or_hours() {
        assert_eq!(seconds(0.0), "0.0 s");
        assert_eq!(seconds(1.25), "1.2 s");
        assert_eq!(seconds(59.94), "59.9 s");
        assert_eq!(seconds(59.96), "1 min 00 s");
        assert_eq!(seconds(125.4), "2 min 05 s");
        assert_eq!(seconds(3725.0), "1 h 02 min");
        assert_eq!(
            spinner_line("running greet…", Duration::from_millis(3240)),
            "running greet… 3.2 s"
        );
    }

    #[test]
    fn off_a_terminal_nothing_shows_unless_lines_are_asked_for() {
        assert!(matches!(
            Progress::new(false, OnPipe::Quiet, "x"),
            Progress::Quiet
        ));
        let mut lines = Progress::new(false, OnPipe::Lines, "x");
        assert!(matches!(lines, Progress::Lines { shown: None }));
        lines.update("a", Duration::ZERO);
        lines.update("a", Duration::from_secs(1));
        assert!(matches!(&lines, Progress::Lines { shown: Some(s) } if s == "a"));
    }

    #[tokio::test]
    async fn a_quick_answer_shows_no_spinner_and_a_slow_one_still_returns() {
        let quick = waiting_on(true, async { 7 }, "running").await;
        assert!(matches!(quick, Waited::Done(7)));
        // Past the delay a spinner is drawn (hidden: the test's stderr is no terminal to
        // indicatif) and the answer still comes through.
        let slow = waiting_on(
            true,
            async {
                tokio::time::sleep(SPINNER_DELAY + Duration::from_millis(150)).await;
                8
            },
            "running",
        )
        .await;
        assert!(matches!(slow, Waited::Done(8)));
        let piped = waiting_on(false, async { 9 }, "running").await;
        assert!(matches!(piped, Waited::Done(9)));
    }
}
