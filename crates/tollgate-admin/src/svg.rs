//! Charts drawn on the server as SVG: stacked bars per day. No script, no external asset.

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

/// A stacked bar chart, `height` pixels tall, with a title for screen readers; each part has
/// a tooltip with its value.
pub fn bars(title: &str, bars: &[Bar], height: u32, unit: &str) -> String {
    let width = (bars.len().max(1) as u32 * 28).max(200);
    let top = bars.iter().map(|b| b.parts.iter().map(|p| p.1).sum::<f64>()).fold(0.0, f64::max);
    let scale = if top > 0.0 { f64::from(height - 30) / top } else { 0.0 };
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg role="img" viewBox="0 0 {width} {height}" width="100%" height="{height}" preserveAspectRatio="none"><title>{}</title>"#,
        escape(title)
    );
    for (i, bar) in bars.iter().enumerate() {
        let x = i as u32 * 28 + 4;
        let mut y = f64::from(height - 18);
        for (class, value) in &bar.parts {
            let h = value * scale;
            if h <= 0.0 {
                continue;
            }
            y -= h;
            let _ = write!(
                out,
                r#"<rect class="{class}" x="{x}" y="{y:.1}" width="20" height="{h:.1}"><title>{}: {value:.4} {unit}</title></rect>"#,
                escape(&bar.label)
            );
        }
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            x + 10,
            height - 4,
            escape(&bar.label)
        );
    }
    let _ = write!(out, r#"<text x="2" y="10">max {top:.2} {unit}</text></svg>"#);
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
        assert!(svg.contains(r#"height="100.0""#), "{svg}");
    }
}
