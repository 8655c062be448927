//! Percentiles of one run, and the median / min / max of several runs.

use std::fmt;

/// The `q` quantile (0..=1) of `sorted` by the nearest-rank method; 0 when empty.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Sorts a sample in place (NaNs last) and returns it.
pub fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

/// The median of several runs with their spread.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spread {
    /// Median of the runs (the mean of the middle two for an even count).
    pub median: f64,
    /// Smallest run.
    pub min: f64,
    /// Largest run.
    pub max: f64,
}

impl Spread {
    /// Summarises one value per run.
    pub fn of(runs: &[f64]) -> Self {
        let s = sorted(runs.to_vec());
        if s.is_empty() {
            return Self::default();
        }
        let n = s.len();
        Self {
            // The middle value, or the mean of the middle two (the same index when odd).
            median: (s[(n - 1) / 2] + s[n / 2]) / 2.0,
            min: s[0],
            max: s[s.len() - 1],
        }
    }

    /// Formats as `median (min–max)` with `decimals` digits (just the value for one run).
    pub fn show(&self, decimals: usize) -> String {
        if self.min == self.max {
            return format!("{:.d$}", self.median, d = decimals);
        }
        format!(
            "{:.d$} ({:.d$}–{:.d$})",
            self.median,
            self.min,
            self.max,
            d = decimals
        )
    }
}

impl fmt::Display for Spread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.show(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let s = sorted((1..=100).map(f64::from).collect());
        assert_eq!(quantile(&s, 0.5), 50.0);
        assert_eq!(quantile(&s, 0.99), 99.0);
        assert_eq!(quantile(&s, 1.0), 100.0);
        assert_eq!(quantile(&s, 0.0), 1.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }

    #[test]
    fn spread_of_runs() {
        let s = Spread::of(&[3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Spread::of(&[1.0, 2.0, 3.0, 10.0]).median, 2.5);
        assert_eq!(s.show(0), "2 (1–3)");
        assert_eq!(Spread::of(&[4.0]).show(1), "4.0");
    }
}
