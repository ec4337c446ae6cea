//! Progress on stderr while the benchmark runs: one bar over the stages, one for the stage
//! that runs. Hidden when stderr is not a terminal.

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// The run's progress.
pub struct Progress {
    multi: MultiProgress,
    overall: ProgressBar,
}

/// One stage's bar; finishing it advances the overall bar.
pub struct Stage {
    bar: ProgressBar,
    overall: ProgressBar,
}

impl Progress {
    /// Progress over `stages` stages.
    pub fn new(stages: u64) -> Progress {
        let multi = MultiProgress::new();
        let overall = multi.add(ProgressBar::new(stages));
        overall.set_style(style("{elapsed_precise} [{bar:30}] stage {pos}/{len} {msg}"));
        Progress { multi, overall }
    }

    /// Starts a stage of `len` steps.
    pub fn stage(&self, name: &str, len: u64) -> Stage {
        self.overall.set_message(name.to_owned());
        let bar = self.multi.add(ProgressBar::new(len));
        bar.set_style(style("  {bar:40} {pos}/{len} {msg} ({eta} left)"));
        Stage {
            bar,
            overall: self.overall.clone(),
        }
    }

    /// Prints a line above the bars.
    pub fn note(&self, line: &str) {
        if self.multi.println(line).is_err() || self.overall.is_hidden() {
            eprintln!("{line}");
        }
    }

    /// Removes the bars.
    pub fn finish(&self) {
        self.overall.finish_and_clear();
    }
}

impl Stage {
    /// One step done.
    pub fn tick(&self) {
        self.bar.inc(1);
    }

    /// One step done, with a message.
    pub fn tick_with(&self, message: &str) {
        self.bar.set_message(message.to_owned());
        self.bar.inc(1);
    }

    /// The stage is over.
    pub fn finish(self) {
        self.bar.finish_and_clear();
        self.overall.inc(1);
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}
