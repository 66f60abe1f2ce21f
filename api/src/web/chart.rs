//! Utilisation charts drawn on the server as SVG: no chart library, nothing downloaded when the
//! page is shown. One chart per entitlement: seats allocated against the national cap, then the
//! seats held by each kind of organisation. The page shows the same numbers in a table.

use std::fmt::Write;

use db::reports::EntitlementUtilisation;

use crate::web::count;

const WIDTH: f64 = 640.0;
const LABEL_WIDTH: f64 = 190.0;
const VALUE_WIDTH: f64 = 150.0;
const ROW_HEIGHT: f64 = 34.0;
const BAR_HEIGHT: f64 = 20.0;
const TOP: f64 = 8.0;

/// Text made safe for SVG element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

struct Row {
    label: String,
    seats: i64,
    value: String,
}

/// The SVG for one entitlement line.
pub fn utilisation_svg(line: &EntitlementUtilisation) -> String {
    let mut rows = vec![Row {
        label: "All organisations".into(),
        seats: line.seats_allocated,
        value: match line.seat_cap {
            Some(cap) => format!("{} of {}", count(line.seats_allocated), count(cap)),
            None => format!("{} (no cap)", count(line.seats_allocated)),
        },
    }];
    for group in &line.by_kind {
        rows.push(Row {
            label: crate::web::start::kind_words(&group.key),
            seats: group.seats,
            value: count(group.seats),
        });
    }
    let scale_max = line.seat_cap.unwrap_or(0).max(line.seats_allocated).max(1) as f64;
    let bar_area = WIDTH - LABEL_WIDTH - VALUE_WIDTH;
    let height = TOP * 2.0 + ROW_HEIGHT * rows.len() as f64;
    let id = format!("chart-{}", line.entitlement_id);
    let description = match line.seat_cap {
        Some(cap) => format!(
            "{} of {} seats allocated ({} left, {} over the cap), across {} kinds of organisation",
            count(line.seats_allocated),
            count(cap),
            count(line.seats_remaining.unwrap_or(0)),
            count(line.seats_over_cap),
            line.by_kind.len()
        ),
        None => format!(
            "{} seats allocated, no national cap, across {} kinds of organisation",
            count(line.seats_allocated),
            line.by_kind.len()
        ),
    };
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="app-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" aria-labelledby="{id}-title {id}-desc"><title id="{id}-title">Seat utilisation: {title}</title><desc id="{id}-desc">{desc}</desc>"#,
        title = escape(&line.product),
        desc = escape(&description),
    );
    for (index, row) in rows.iter().enumerate() {
        let y = TOP + ROW_HEIGHT * index as f64;
        let bar_y = y + (ROW_HEIGHT - BAR_HEIGHT) / 2.0;
        let text_y = y + ROW_HEIGHT / 2.0 + 5.0;
        let _ = write!(
            svg,
            r#"<text class="app-chart__label" x="0" y="{text_y}">{}</text><rect class="app-chart__track" x="{LABEL_WIDTH}" y="{bar_y}" width="{bar_area}" height="{BAR_HEIGHT}"/>"#,
            escape(&row.label)
        );
        let within = match line.seat_cap {
            Some(cap) if index == 0 => row.seats.min(cap),
            _ => row.seats,
        };
        let width = (within as f64 / scale_max * bar_area).clamp(0.0, bar_area);
        let _ = write!(
            svg,
            r#"<rect class="app-chart__allocated" x="{LABEL_WIDTH}" y="{bar_y}" width="{width:.1}" height="{BAR_HEIGHT}"/>"#
        );
        if index == 0 && line.seats_over_cap > 0 {
            let over = (line.seats_over_cap as f64 / scale_max * bar_area).clamp(0.0, bar_area - width);
            let _ = write!(
                svg,
                r#"<rect class="app-chart__over" x="{:.1}" y="{bar_y}" width="{over:.1}" height="{BAR_HEIGHT}"/>"#,
                LABEL_WIDTH + width
            );
        }
        let _ = write!(
            svg,
            r#"<text class="app-chart__label" x="{:.1}" y="{text_y}">{}</text>"#,
            LABEL_WIDTH + bar_area + 10.0,
            escape(&row.value)
        );
    }
    if let Some(cap) = line.seat_cap {
        let x = LABEL_WIDTH + (cap as f64 / scale_max * bar_area).min(bar_area);
        let _ = write!(
            svg,
            r#"<line class="app-chart__cap" x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{:.1}"/>"#,
            height - TOP
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use db::reports::SeatsBy;
    use db::vocabulary::Tier;

    fn line(cap: Option<i64>, allocated: i64) -> EntitlementUtilisation {
        EntitlementUtilisation {
            entitlement_id: 7,
            product: "Windows 10 <Enterprise>".into(),
            tier: Tier::NationalProvision,
            seat_cap: cap,
            seats_allocated: allocated,
            seats_remaining: cap.map(|c| (c - allocated).max(0)),
            seats_over_cap: cap.map_or(0, |c| (allocated - c).max(0)),
            by_kind: vec![SeatsBy { key: "trust".into(), seats: allocated, organisations: 2 }],
            by_region: Vec::new(),
        }
    }

    #[test]
    fn the_chart_is_accessible_svg_with_escaped_text() {
        let svg = utilisation_svg(&line(Some(1000), 250));
        assert!(svg.starts_with("<svg"));
        assert!(svg.ends_with("</svg>"));
        assert!(svg.contains(r#"role="img""#));
        assert!(svg.contains("Windows 10 &lt;Enterprise&gt;"));
        assert!(!svg.contains("<Enterprise>"));
        assert!(svg.contains("250 of 1,000"));
        assert!(svg.contains("app-chart__cap"), "the cap is drawn");
        // 250 of 1000 seats: a quarter of the 300-unit bar area.
        assert!(svg.contains(r#"width="75.0""#), "{svg}");
        assert!(!svg.contains("style="), "no inline styles: the page CSP forbids them");
    }

    #[test]
    fn over_allocation_and_no_cap_are_shown() {
        let over = utilisation_svg(&line(Some(100), 150));
        assert!(over.contains("app-chart__over"));
        let uncapped = utilisation_svg(&line(None, 40));
        assert!(uncapped.contains("40 (no cap)"));
        assert!(!uncapped.contains("app-chart__cap"));
    }
}
