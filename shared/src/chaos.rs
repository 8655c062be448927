//! Crash points for the chaos suite.
//!
//! Built only with the `chaos` feature; otherwise [`crash_point`] compiles to nothing.
//! With the feature, `CHAOS_CRASH_AT=<point>:<n>` makes the process SIGKILL itself the
//! n-th time execution reaches `<point>` (several points separated by commas), so the
//! suite can stop a service exactly inside a crash window and restart it.

/// Dies here if the chaos configuration says so.
#[inline]
pub fn crash_point(name: &'static str) {
    #[cfg(feature = "chaos")]
    imp::hit(name);
    #[cfg(not(feature = "chaos"))]
    let _ = name;
}

#[cfg(feature = "chaos")]
mod imp {
    use std::{
        collections::HashMap,
        sync::{Mutex, OnceLock},
    };

    fn plan() -> &'static Mutex<HashMap<String, u64>> {
        static PLAN: OnceLock<Mutex<HashMap<String, u64>>> = OnceLock::new();
        PLAN.get_or_init(|| {
            let spec = std::env::var("CHAOS_CRASH_AT").unwrap_or_default();
            Mutex::new(
                spec.split(',')
                    .filter_map(|item| {
                        let (name, n) = item.trim().split_once(':')?;
                        Some((name.to_owned(), n.parse().ok()?))
                    })
                    .collect(),
            )
        })
    }

    pub(super) fn hit(name: &'static str) {
        let mut plan = plan().lock().unwrap_or_else(|p| p.into_inner());
        let Some(remaining) = plan.get_mut(name) else {
            return;
        };
        *remaining = remaining.saturating_sub(1);
        if *remaining == 0 {
            eprintln!("chaos: crash point {name} reached, SIGKILL");
            // A real SIGKILL: no destructors, no flushes, no graceful anything.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &std::process::id().to_string()])
                .status();
            std::process::abort();
        }
    }
}
