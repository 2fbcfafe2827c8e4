//! The instruction-set extensions this build was compiled for, checked
//! against the CPU it runs on.
//!
//! x86-64 builds target x86-64-v3 (`.cargo/config.toml`): code compiled for
//! it may use AVX2 and FMA anywhere, and on a CPU without them the process
//! would die with an illegal instruction at some arbitrary point. The
//! binary checks first and stops with a message that names the missing
//! extensions and how to build for the CPU at hand.

/// The extensions this build assumes that the running CPU lacks (empty when
/// none, and on other architectures).
pub fn missing_features() -> Vec<&'static str> {
    #[cfg(target_arch = "x86_64")]
    {
        let mut missing = Vec::new();
        macro_rules! require {
            ($($feature:tt),*) => {$(
                if cfg!(target_feature = $feature) && !std::is_x86_feature_detected!($feature) {
                    missing.push($feature);
                }
            )*};
        }
        require!(
            "sse3", "ssse3", "sse4.1", "sse4.2", "popcnt", "avx", "avx2", "fma", "bmi1", "bmi2",
            "f16c", "lzcnt", "movbe"
        );
        missing
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Vec::new()
    }
}

/// The message for a CPU that lacks `missing`.
pub fn unsupported_message(missing: &[&str]) -> String {
    format!(
        "this ablate binary was built for x86-64-v3 CPUs and this CPU lacks {}; \
         rebuild it for this CPU with: RUSTFLAGS=\"-C target-cpu=native\" cargo build --release",
        missing.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_machine_runs_what_it_was_built_for() {
        // The tests themselves run code built with these extensions: had one
        // been missing, they could not have got this far reliably.
        assert_eq!(missing_features(), Vec::<&str>::new());
    }

    #[test]
    fn the_message_names_the_missing_extensions_and_the_fix() {
        let message = unsupported_message(&["avx2", "fma"]);
        assert!(message.contains("avx2, fma"), "{message}");
        assert!(message.contains("target-cpu=native"), "{message}");
    }
}
