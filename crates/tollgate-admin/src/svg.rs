//! Charts drawn on the server as SVG: stacked bars per day, and ranges per row. No script,
//! no external asset.

use std::fmt::Write as _;

/// One bar: its label and its stacked parts `(css class, value)`.
pub struct Bar {
    /// Under the bar.
    pub label: String,
    /// Stacked bottom to top.
    pub parts: Vec<(&'static str, f64)>,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Chart width in SVG units; the chart scales to its box and keeps its proportions.
const WIDTH: f64 = 1000.0;

/// A number shown with the digits it needs: `0.000123`, `4.20`, `1234`.
pub fn amount(v: f64) -> String {
    match v.abs() {
        0.0 => "0".to_owned(),
        a if a < 0.01 => format!("{v:.6}"),
        a if a < 100.0 => format!("{v:.2}"),
        _ => format!("{v:.0}"),
    }
}

/// A stacked bar chart, `height` units tall, with a title for screen readers; each part has
/// a tooltip with its value. Labels are thinned so they never overlap.
pub fn bars(title: &str, bars: &[Bar], height: u32, unit: &str) -> String {
    let n = bars.len().max(1);
    let slot = WIDTH / n as f64;
    let bar = (slot * 0.7).max(1.0);
    // A label is about 40 units wide: show every `step`-th.
    let step = (40.0 / slot).ceil().max(1.0) as usize;
    let top = bars.iter().map(|b| b.parts.iter().map(|p| p.1).sum::<f64>()).fold(0.0, f64::max);
    let plot = f64::from(height) - 32.0;
    let scale = if top > 0.0 { plot / top } else { 0.0 };
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg role="img" viewBox="0 0 {WIDTH} {height}" width="100%"><title>{}</title>"#,
        escape(title)
    );
    for (i, b) in bars.iter().enumerate() {
        let x = i as f64 * slot + (slot - bar) / 2.0;
        let mut y = f64::from(height) - 18.0;
        for (class, value) in &b.parts {
            let h = value * scale;
            if h <= 0.0 {
                continue;
            }
            y -= h;
            let _ = write!(
                out,
                r#"<rect class="{class}" x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{h:.1}"><title>{}: {} {unit}</title></rect>"#,
                escape(&b.label),
                amount(*value)
            );
        }
        if i % step == 0 {
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
                x + bar / 2.0,
                height - 4,
                escape(&b.label)
            );
        }
    }
    let _ = write!(out, r#"<text x="2" y="10">max {} {unit}</text></svg>"#, amount(top));
    out
}

/// Classes of a chart's series, in order; the last one stands for "the rest".
pub const SERIES: [&str; 6] = ["bar-s0", "bar-s1", "bar-s2", "bar-s3", "bar-s4", "bar-s5"];

/// Horizontal bars, one row per `(label, low, high)`: a light bar to `high` with a dark one
/// to `low` on top (for p50 within p95), scaled to the largest `high`.
pub fn ranges(title: &str, rows: &[(String, f64, f64)], unit: &str) -> String {
    const ROW: f64 = 22.0;
    const LABEL: f64 = 260.0;
    let height = (rows.len().max(1) as f64 * ROW + 18.0).ceil();
    let top = rows.iter().map(|r| r.2).fold(0.0, f64::max);
    let scale = if top > 0.0 { (WIDTH - LABEL - 80.0) / top } else { 0.0 };
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg role="img" viewBox="0 0 {WIDTH} {height}" width="100%"><title>{}</title>"#,
        escape(title)
    );
    for (i, (label, low, high)) in rows.iter().enumerate() {
        let y = i as f64 * ROW + 4.0;
        let name = escape(label);
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{name}</text>"#,
            LABEL - 8.0,
            y + 13.0
        );
        for (class, value, what) in [("bar-a-light", high, "p95"), ("bar-a", low, "p50")] {
            let _ = write!(
                out,
                r#"<rect class="{class}" x="{LABEL}" y="{y:.1}" width="{:.1}" height="16"><title>{name} {what}: {} {unit}</title></rect>"#,
                (value * scale).max(1.0),
                amount(*value)
            );
        }
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}">{} / {} {unit}</text>"#,
            LABEL + high * scale + 6.0,
            y + 13.0,
            amount(*low),
            amount(*high)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_tallest_and_escape_labels() {
        let svg = bars(
            "t",
            &[
                Bar { label: "<a>".into(), parts: vec![("bar-ok", 10.0)] },
                Bar { label: "b".into(), parts: vec![("bar-ok", 5.0), ("bar-bad", 5.0)] },
            ],
            130,
            "req",
        );
        assert!(svg.contains("&lt;a&gt;") && !svg.contains("<a>"));
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains(r#"height="98.0""#), "{svg}");
        assert!(!svg.contains("preserveAspectRatio"));
    }

    #[test]
    fn ranges_put_the_low_mark_inside_the_high_bar() {
        let svg = ranges("t", &[("<m>".into(), 100.0, 400.0), ("n".into(), 50.0, 200.0)], "ms");
        assert!(svg.contains("&lt;m&gt;") && !svg.contains("<m>"));
        assert_eq!(svg.matches("<rect").count(), 4);
        // The largest p95 spans the plot (1000 - 260 - 80 units); the rest scale to it.
        assert!(svg.contains(r#"class="bar-a-light" x="260" y="4.0" width="660.0""#), "{svg}");
        assert!(svg.contains(r#"class="bar-a" x="260" y="4.0" width="165.0""#), "{svg}");
        assert!(svg.contains(r#"width="330.0""#), "{svg}");
    }

    #[test]
    fn labels_thin_out_and_small_amounts_keep_their_digits() {
        let many: Vec<Bar> = (0..60)
            .map(|i| Bar { label: format!("d{i}"), parts: vec![("bar-a", 0.0001)] })
            .collect();
        let svg = bars("t", &many, 160, "USD");
        assert_eq!(svg.matches("<text").count(), 1 + 60_usize.div_ceil(3));
        assert!(svg.contains("max 0.000100 USD"), "{svg}");
        assert_eq!(amount(4.2), "4.20");
    }
}
