//! A latency CDF as a self-contained SVG, written by hand (no plotting dependency):
//! logarithmic milliseconds across, percentile up, one line per series, dashed targets.

use std::fmt::Write;

use crate::stats::quantile;

/// One line of the plot.
pub struct Series<'a> {
    /// Legend text.
    pub label: String,
    /// CSS colour.
    pub color: &'a str,
    /// Sorted latencies in milliseconds.
    pub values: &'a [f64],
}

const W: f64 = 820.0;
/// Height of the plotting area; the legend goes below the axis.
const PLOT_H: f64 = 336.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 48.0;
const BOTTOM: f64 = 56.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Renders the CDF of every series, with vertical dashed lines at `targets` (ms, label).
pub fn latency_cdf(title: &str, series: &[Series<'_>], targets: &[(f64, &str)]) -> String {
    let all = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .filter(|v| *v > 0.0);
    let (min, max) = all.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (min, max) = if min > max { (1.0, 100.0) } else { (min, max) };
    let max = targets.iter().map(|t| t.0).fold(max, f64::max);
    let lo = 10f64.powf(min.log10().floor());
    let hi = 10f64.powf(max.log10().ceil()).max(lo * 10.0);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = PLOT_H;
    let h = TOP + PLOT_H + BOTTOM + 18.0 * series.len() as f64 + 8.0;
    let x = |ms: f64| LEFT + (ms.max(lo).log10() - lo.log10()) / (hi.log10() - lo.log10()) * plot_w;
    let y = |pct: f64| TOP + plot_h - pct / 100.0 * plot_h;

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="{W}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>"#,
        W / 2.0,
        escape(title)
    );
    // Grid and ticks.
    for pct in (0..=100).step_by(10) {
        let py = y(f64::from(pct));
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#e4e4e4"/><text x="{:.1}" y="{:.1}" text-anchor="end">{pct}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            py + 4.0
        );
    }
    let mut decade = lo;
    while decade <= hi * 1.0001 {
        for m in [1.0, 2.0, 5.0] {
            let v = decade * m;
            if v > hi * 1.0001 {
                break;
            }
            let px = x(v);
            let label = if v >= 1.0 {
                format!("{v:.0}")
            } else {
                format!("{v}")
            };
            let _ = writeln!(
                out,
                r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#e4e4e4"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
                TOP + plot_h,
                TOP + plot_h + 16.0
            );
        }
        decade *= 10.0;
    }
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#888"/>"##
    );
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">latency, ms (log scale)</text>"#,
        LEFT + plot_w / 2.0,
        TOP + plot_h + 38.0
    );
    let _ = writeln!(
        out,
        r#"<text x="16" y="{:.1}" text-anchor="middle" transform="rotate(-90 16 {:.1})">percentile</text>"#,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0
    );
    for (ms, label) in targets {
        let px = x(*ms);
        let _ = writeln!(
            out,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#c0392b" stroke-dasharray="5,4"/><text x="{:.1}" y="{:.1}" fill="#c0392b">{}</text>"##,
            TOP + plot_h,
            px + 4.0,
            TOP + 14.0,
            escape(label)
        );
    }
    // The lines, sampled at 1000 evenly spaced ranks plus every point of the top 1%.
    for s in series {
        let n = s.values.len();
        if n == 0 {
            continue;
        }
        let mut points = String::new();
        let steps = 1000;
        for i in 0..=steps {
            let q = f64::from(i) / f64::from(steps) * 0.99;
            let _ = write!(
                points,
                "{:.1},{:.1} ",
                x(quantile(s.values, q)),
                y(q * 100.0)
            );
        }
        let tail_start = ((n as f64) * 0.99) as usize;
        for (i, v) in s.values.iter().enumerate().skip(tail_start) {
            let q = (i + 1) as f64 / n as f64;
            let _ = write!(points, "{:.1},{:.1} ", x(*v), y(q * 100.0));
        }
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
            s.color,
            points.trim_end()
        );
    }
    for (i, s) in series.iter().enumerate() {
        let ly = TOP + plot_h + BOTTOM + 6.0 + 18.0 * i as f64;
        let _ = writeln!(
            out,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{}" stroke-width="3"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            LEFT + 12.0,
            LEFT + 36.0,
            s.color,
            LEFT + 42.0,
            ly + 4.0,
            escape(&s.label)
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_well_formed_svg_with_every_series() {
        let a: Vec<f64> = (1..=200).map(f64::from).collect();
        let svg = latency_cdf(
            "t <x>",
            &[Series {
                label: "a & b".into(),
                color: "#1f77b4",
                values: &a,
            }],
            &[(25.0, "target")],
        );
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("t &lt;x&gt;") && svg.contains("a &amp; b"));
        assert_eq!(svg.matches("<polyline").count(), 1);
    }
}
