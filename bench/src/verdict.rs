//! A target's verdict, as every section of the report prints it: what was aimed at, what the
//! run measured, and whether it held. Figures, never assertions: a miss does not fail the run.

/// One target of a run.
pub struct Verdict {
    /// What the target is.
    pub target: String,
    /// What the run measured.
    pub observed: String,
    /// Whether the run met it; `None` when this run did not measure it.
    pub pass: Option<bool>,
}

impl Verdict {
    /// `PASS`, `MISS`, or `N/A` when not measured.
    pub fn mark(&self) -> &'static str {
        match self.pass {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "N/A",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_say_pass_miss_and_not_measured() {
        let v = |pass| Verdict {
            target: "t".into(),
            observed: "o".into(),
            pass,
        };
        assert_eq!(v(Some(true)).mark(), "PASS");
        assert_eq!(v(Some(false)).mark(), "MISS");
        assert_eq!(v(None).mark(), "N/A");
    }
}
