//! The figure (SVG): the swap pause against the state size (log-log), and the request latency
//! around an upgrade under load, molt's swap beside the restart baseline, on the same axes.

use crate::report::Report;
use crate::restart::Bin;
use anyhow::Context;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// A named, coloured series and how to read its value.
type Series<T> = (&'static str, RGBColor, fn(&T) -> f64);

/// Draws the figure of `report` into `path`.
pub fn draw(report: &Report, path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (1000, 1250)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((3, 1));
    pauses(report, &panels[0])?;
    let r = &report.restart_baseline;
    let x_end = [&r.molt_timeline, &r.restart_timeline]
        .iter()
        .filter_map(|t| t.last())
        .map(|b| b.t_ms + 10.0)
        .fold(100.0, f64::max);
    let y_max = [&r.molt_timeline, &r.restart_timeline]
        .iter()
        .flat_map(|t| t.iter())
        .map(|b| b.max_ms)
        .fold(1.0, f64::max)
        * 2.0;
    let molt_title = format!(
        "molt swap under load: {:.0} failed, longest gap {:.2} ms",
        r.molt_swap.runs.first().map_or(0, |x| x.failed_requests),
        r.molt_swap.runs.first().map_or(0.0, |x| x.unavailable_ms)
    );
    let restart_title = format!(
        "restart with snapshot under load: {} failed, unavailable {:.0} ms",
        r.restart.runs.first().map_or(0, |x| x.failed_requests),
        r.restart.runs.first().map_or(0.0, |x| x.unavailable_ms)
    );
    let gap = |runs: &[crate::restart::Run]| {
        runs.first().map_or((0.0, 0.0), |r| {
            (r.unavailable_from_ms, r.unavailable_from_ms + r.unavailable_ms)
        })
    };
    let (molt_gap, restart_gap) = (gap(&r.molt_swap.runs), gap(&r.restart.runs));
    timeline(
        &panels[1],
        &molt_title,
        &r.molt_timeline,
        molt_gap,
        (x_end, y_max),
    )?;
    timeline(
        &panels[2],
        &restart_title,
        &r.restart_timeline,
        restart_gap,
        (x_end, y_max),
    )?;
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Pause (p50, p99, max) against the state size.
fn pauses(report: &Report, area: &DrawingArea<SVGBackend<'_>, Shift>) -> anyhow::Result<()> {
    let sizes = &report.swap_pause_us;
    let x_max = sizes.iter().map(|s| s.state_bytes as f64).fold(1e4, f64::max) * 3.0;
    let x_min = sizes.iter().map(|s| s.state_bytes as f64).fold(x_max, f64::min) / 3.0;
    let y_max = sizes.iter().map(|s| s.pause_us.max).fold(10.0, f64::max) * 3.0;
    let y_min = sizes
        .iter()
        .map(|s| s.pause_us.p50)
        .fold(y_max, f64::min)
        .max(0.1)
        / 3.0;
    let mut chart = ChartBuilder::on(area)
        .caption(
            "Swap pause vs state size (kv, in-process engine): bytes (solid) and tables (dashed)",
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(75)
        .build_cartesian_2d((x_min..x_max).log_scale(), (y_min..y_max).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("state size (bytes)")
        .y_desc("pause (µs)")
        .x_label_formatter(&|v| bytes(*v))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    let series: [Series<crate::pause::SizeResult>; 3] = [
        ("p50", BLUE, |s| s.pause_us.p50),
        ("p99", RGBColor(230, 120, 0), |s| s.pause_us.p99),
        ("max", RED, |s| s.pause_us.max),
    ];
    for state in ["bytes", "tables"] {
        // One line per kind of state, of 1 KiB values (the 100-byte entries are other points
        // at the same sizes, in the table and the JSON).
        let of_state: Vec<_> = sizes
            .iter()
            .filter(|s| s.state == state && s.value_bytes == crate::pause::VALUE_BYTES)
            .collect();
        for (name, color, value) in series {
            let points: Vec<(f64, f64)> = of_state
                .iter()
                .map(|s| (s.state_bytes as f64, value(s).max(y_min)))
                .collect();
            let label = format!("{name}, state in {state}");
            if state == "bytes" {
                chart
                    .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
                chart.draw_series(points.into_iter().map(|p| Circle::new(p, 4, color.filled())))?;
            } else {
                chart
                    .draw_series(DashedLineSeries::new(points.clone(), 6, 4, color.stroke_width(2)))?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 8, y)], color.stroke_width(2)));
                chart.draw_series(
                    points
                        .into_iter()
                        .map(|p| TriangleMarker::new(p, 5, color.filled())),
                )?;
            }
        }
    }
    let goal = RGBColor(0, 150, 0);
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(x_min, 1000.0), (x_max, 1000.0)],
            goal.stroke_width(1),
        )))?
        .label("1 ms (goal at 1 MB)")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], goal.stroke_width(1)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// Latency per 10 ms bin (max and median of the successful requests sent in it), failures
/// marked along the top, the longest interval without a successful response shaded, the start
/// of the upgrade at 0. `(x_end, y_max)`: the axes' far ends, shared by both timelines.
fn timeline(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    bins: &[Bin],
    gap: (f64, f64),
    (x_end, y_max): (f64, f64),
) -> anyhow::Result<()> {
    let y_min = 0.01;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(75)
        .build_cartesian_2d(-500.0..x_end, (y_min..y_max).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("ms since the upgrade started")
        .y_desc("request latency (ms)")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v}"))
        .draw()?;
    let shade = RED.mix(0.2);
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(gap.0, y_min), (gap.1.max(gap.0 + 1.0), y_max)],
            shade.filled(),
        )))?
        .label("longest interval without a successful response")
        .legend(move |(x, y)| Rectangle::new([(x, y - 4), (x + 20, y + 4)], shade.filled()));
    let ok: Vec<&Bin> = bins.iter().filter(|b| b.ok > 0).collect();
    let lines: [Series<Bin>; 2] = [
        ("max per 10 ms", RED, |b| b.max_ms),
        ("median per 10 ms", BLUE, |b| b.p50_ms),
    ];
    for (name, color, value) in lines {
        chart
            .draw_series(
                ok.iter()
                    .map(|b| Circle::new((b.t_ms, value(b).max(y_min)), 2, color.filled())),
            )?
            .label(name)
            .legend(move |(x, y)| Circle::new((x + 10, y), 3, color.filled()));
    }
    let failed = bins.iter().filter(|b| b.failed > 0);
    chart
        .draw_series(failed.map(|b| Cross::new((b.t_ms, y_max / 1.5), 4, BLACK.stroke_width(2))))?
        .label("failed requests in the bin")
        .legend(|(x, y)| Cross::new((x + 10, y), 4, BLACK.stroke_width(2)));
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(0.0, y_min), (0.0, y_max)],
        BLACK.mix(0.4).stroke_width(1),
    )))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// 1 KB, 1 MB, 100 MB …
fn bytes(v: f64) -> String {
    match v {
        v if v >= 1e9 => format!("{:.0} GB", v / 1e9),
        v if v >= 1e6 => format!("{:.0} MB", v / 1e6),
        v if v >= 1e3 => format!("{:.0} KB", v / 1e3),
        v => format!("{v:.0} B"),
    }
}
