//! How many weak-model groups a run trains side by side (`--jobs`).
//!
//! A job trains one weak-model group at a time with its share of the
//! threads. Small models gain less than twofold from a second thread inside
//! one training, while two trainings side by side each keep a core busy, so
//! on a CPU one job per thread finishes sooner than one job with every
//! thread (the README gives the measured times). Results do not depend on
//! the count.

use std::fmt;
use std::num::NonZeroUsize;
use std::str::FromStr;

/// `--jobs`: a count, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jobs {
    /// One job per thread on a CPU (at most one per weak-model group); one
    /// job on a GPU, which the jobs would otherwise share.
    Auto,
    /// This many (at most one per weak-model group).
    Count(NonZeroUsize),
}

impl Jobs {
    /// The jobs to start for `groups` weak-model groups with `threads`
    /// threads in all, on a CPU or not.
    pub fn resolve(self, threads: usize, groups: usize, on_cpu: bool) -> usize {
        let wanted = match self {
            Jobs::Count(count) => count.get(),
            Jobs::Auto if on_cpu => threads,
            Jobs::Auto => 1,
        };
        wanted.min(groups).max(1)
    }
}

impl fmt::Display for Jobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Jobs::Auto => f.write_str("auto"),
            Jobs::Count(count) => write!(f, "{count}"),
        }
    }
}

/// A `--jobs` value that is neither `auto` nor a positive count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a job count: give a whole number from 1, or auto")]
pub struct InvalidJobs(String);

impl FromStr for Jobs {
    type Err = InvalidJobs;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.eq_ignore_ascii_case("auto") {
            return Ok(Jobs::Auto);
        }
        text.parse::<NonZeroUsize>()
            .map(Jobs::Count)
            .map_err(|_| InvalidJobs(text.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(n: usize) -> Jobs {
        Jobs::Count(NonZeroUsize::new(n).unwrap())
    }

    #[test]
    fn parses_auto_and_positive_counts_only() {
        assert_eq!("auto".parse::<Jobs>(), Ok(Jobs::Auto));
        assert_eq!("AUTO".parse::<Jobs>(), Ok(Jobs::Auto));
        assert_eq!("3".parse::<Jobs>(), Ok(count(3)));
        for bad in ["0", "-1", "two", ""] {
            let error = bad.parse::<Jobs>().unwrap_err();
            assert!(
                error.to_string().starts_with(&format!("'{bad}'")),
                "{error}"
            );
        }
        assert_eq!(Jobs::Auto.to_string(), "auto");
        assert_eq!(count(4).to_string(), "4");
    }

    #[test]
    fn auto_is_one_job_per_thread_on_a_cpu_and_one_on_a_gpu() {
        assert_eq!(Jobs::Auto.resolve(2, 10, true), 2);
        assert_eq!(Jobs::Auto.resolve(16, 3, true), 3);
        assert_eq!(Jobs::Auto.resolve(16, 10, false), 1);
        assert_eq!(Jobs::Auto.resolve(2, 0, true), 1);
    }

    #[test]
    fn a_count_is_kept_up_to_the_groups() {
        assert_eq!(count(1).resolve(16, 10, true), 1);
        assert_eq!(count(4).resolve(2, 10, true), 4);
        assert_eq!(count(4).resolve(2, 3, false), 3);
    }
}
