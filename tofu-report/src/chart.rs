//! Charts of multi-dimensional measurements: the value against the first dimension, reduced
//! for drawing before it is embedded.

use serde_json::{Value, json};

use crate::limits::Limits;

/// Pixel columns a chart is reduced to: about the width of a wide chart on a large screen.
pub(crate) const COLUMNS: usize = 2000;

/// One measurement's chart, ready to embed.
#[derive(Debug)]
pub(crate) struct Chart {
    /// What the page's script reads (`x`, `y`, labels, limits, counts).
    pub(crate) data: Value,
    /// Points recorded.
    pub(crate) total: usize,
    /// Points embedded for drawing.
    pub(crate) drawn: usize,
    /// Points outside the limits (all of them embedded).
    pub(crate) outside: usize,
    /// Rows that had no numeric coordinate or value (not drawn).
    pub(crate) skipped: usize,
}

/// Labels and limits of a chart.
#[derive(Debug)]
pub(crate) struct Axes {
    pub(crate) title: String,
    pub(crate) x_label: String,
    pub(crate) y_label: String,
    /// The second dimension's label, for the lines of a 2-D sweep.
    pub(crate) z_label: String,
    pub(crate) limits: Limits,
}

/// A sweep over two dimensions is drawn as one line per value of the second (an IV curve per
/// temperature) when it takes at most this many values; more are drawn against the first.
pub(crate) const MAX_LINES: usize = 12;

/// Points up to which a 2-D sweep is drawn line by line (whole, not reduced).
const MAX_LINE_POINTS: usize = 4 * COLUMNS;

/// Whether a measured value is a list of points (rows of at least a coordinate and a value),
/// as OpenHTF writes multi-dimensional measurements.
pub(crate) fn is_points(value: &Value) -> bool {
    value.as_array().is_some_and(|rows| {
        !rows.is_empty()
            && rows
                .iter()
                .all(|r| r.as_array().is_some_and(|r| r.len() >= 2))
    })
}

/// The chart of `rows` (each `[x, (other coordinates…), value]`).
pub(crate) fn build(rows: &[Value], axes: Axes) -> Chart {
    if let Some(chart) = build_lines(rows, &axes) {
        return chart;
    }
    let (mut xs, mut ys) = (
        Vec::with_capacity(rows.len()),
        Vec::with_capacity(rows.len()),
    );
    let mut skipped = 0;
    for row in rows {
        let row = row.as_array().map(Vec::as_slice).unwrap_or_default();
        let x = row
            .first()
            .and_then(Value::as_f64)
            .filter(|v| v.is_finite());
        let y = row.last().and_then(Value::as_f64).filter(|v| v.is_finite());
        match (x, y, row.len() >= 2) {
            (Some(x), Some(y), true) => {
                xs.push(x);
                ys.push(y);
            }
            _ => skipped += 1,
        }
    }
    let sorted = xs.windows(2).all(|w| w[0] <= w[1]);
    if !sorted {
        // uPlot draws x in ascending order; a sweep that goes back and forth is drawn sorted.
        let mut order: Vec<usize> = (0..xs.len()).collect();
        order.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
        xs = order.iter().map(|&i| xs[i]).collect();
        ys = order.iter().map(|&i| ys[i]).collect();
    }
    let limits = axes.limits;
    let kept = decimate(&xs, &ys, COLUMNS, |y| limits.outside(y));
    let outside = ys.iter().filter(|&&y| limits.outside(y)).count();
    let x: Vec<f64> = kept.iter().map(|&i| xs[i]).collect();
    let y: Vec<f64> = kept.iter().map(|&i| ys[i]).collect();
    let mut data = labels_and_limits(&axes);
    data["total"] = json!(xs.len());
    data["sorted"] = json!(sorted);
    data["x"] = json!(x);
    data["y"] = json!(y);
    Chart {
        data,
        total: rows.len(),
        drawn: kept.len(),
        outside,
        skipped,
    }
}

/// What every chart's data has: its title, axis labels and limits.
fn labels_and_limits(axes: &Axes) -> Value {
    let limits = &axes.limits;
    json!({
        "title": axes.title,
        "xLabel": axes.x_label,
        "yLabel": axes.y_label,
        "lower": limits.lower,
        "upper": limits.upper,
        "marginalLower": limits.marginal_lower,
        "marginalUpper": limits.marginal_upper,
    })
}

/// A 2-D sweep (`[x, z, value]` rows) whose second coordinate takes 2 to [`MAX_LINES`]
/// values: one line per value of `z`, on the union of the `x`s (`null` where a line has no
/// point). `None` for anything else.
fn build_lines(rows: &[Value], axes: &Axes) -> Option<Chart> {
    if rows.len() > MAX_LINE_POINTS {
        return None;
    }
    let mut points = Vec::with_capacity(rows.len());
    for row in rows {
        let row = row.as_array()?;
        if row.len() != 3 {
            return None;
        }
        let number = |v: &Value| v.as_f64().filter(|v| v.is_finite());
        points.push((number(&row[0])?, number(&row[1])?, number(&row[2])?));
    }
    let mut zs: Vec<f64> = points.iter().map(|p| p.1).collect();
    zs.sort_by(f64::total_cmp);
    zs.dedup();
    if !(2..=MAX_LINES).contains(&zs.len()) {
        return None;
    }
    let mut xs: Vec<f64> = points.iter().map(|p| p.0).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let mut lines = vec![vec![Value::Null; xs.len()]; zs.len()];
    for &(x, z, y) in &points {
        let (Ok(i), Ok(k)) = (
            xs.binary_search_by(|v| v.total_cmp(&x)),
            zs.binary_search_by(|v| v.total_cmp(&z)),
        ) else {
            continue;
        };
        lines[k][i] = json!(y);
    }
    let limits = &axes.limits;
    let outside = points.iter().filter(|p| limits.outside(p.2)).count();
    let series: Vec<Value> = zs
        .iter()
        .zip(lines)
        .map(|(z, y)| json!({"label": format!("{} = {z}", axes.z_label), "y": y}))
        .collect();
    let mut data = labels_and_limits(axes);
    data["total"] = json!(points.len());
    data["sorted"] = json!(true);
    data["x"] = json!(xs);
    data["series"] = json!(series);
    Some(Chart {
        data,
        total: rows.len(),
        drawn: points.len(),
        outside,
        skipped: 0,
    })
}

/// The indices of the points to draw, ascending: for each of `columns` equal slices of the x
/// range (a pixel column), its first, last, lowest and highest point (M4 reduction: the line
/// drawn through them covers the same pixels as the line through all points), plus every
/// point for which `keep` is true (points outside the limits are never dropped). Series of up
/// to `4 × columns` points are kept whole.
///
/// `xs` must be sorted ascending and as long as `ys`; both finite.
pub(crate) fn decimate(
    xs: &[f64],
    ys: &[f64],
    columns: usize,
    keep: impl Fn(f64) -> bool,
) -> Vec<usize> {
    let n = xs.len().min(ys.len());
    let columns = columns.max(1);
    if n <= columns * 4 {
        return (0..n).collect();
    }
    let (x0, x1) = (xs[0], xs[n - 1]);
    let span = x1 - x0;
    let by_x = span > 0.0 && span.is_finite();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let column_of = |i: usize| -> usize {
        let fraction = if by_x {
            (xs[i] - x0) / span
        } else {
            // All points at one x: slice by position instead.
            i as f64 / n as f64
        };
        ((fraction * columns as f64) as usize).min(columns - 1)
    };
    let mut kept = Vec::with_capacity(columns * 4 + 64);
    let mut start = 0;
    while start < n {
        let column = column_of(start);
        let (mut low, mut high, mut end) = (start, start, start + 1);
        while end < n && column_of(end) == column {
            if ys[end] < ys[low] {
                low = end;
            }
            if ys[end] > ys[high] {
                high = end;
            }
            end += 1;
        }
        let last = end - 1;
        kept.extend(
            (start..end)
                .filter(|&i| i == start || i == last || i == low || i == high || keep(ys[i])),
        );
        start = end;
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep(n: usize) -> (Vec<f64>, Vec<f64>) {
        let xs: Vec<f64> = (0..n).map(|i| i as f64 * 1e-3).collect();
        let ys: Vec<f64> = xs.iter().map(|x| 100.0 + 5.0 * (x * 7.0).sin()).collect();
        (xs, ys)
    }

    #[test]
    fn small_series_are_kept_whole() {
        let (xs, ys) = sweep(100);
        assert_eq!(
            decimate(&xs, &ys, 2000, |_| false),
            (0..100).collect::<Vec<_>>()
        );
        assert!(decimate(&[], &[], 2000, |_| false).is_empty());
    }

    #[test]
    fn a_million_points_keep_their_envelope_and_every_outlier() {
        let (xs, mut ys) = sweep(1_000_000);
        let limits = Limits {
            lower: Some(90.0),
            upper: Some(110.0),
            ..Limits::default()
        };
        // Outliers, some of them next to each other in one column and none the column's
        // extreme (a plain min/max reduction would drop those).
        let outliers = [3, 17, 500_000, 500_001, 500_002, 777_777, 999_999];
        for (k, &i) in outliers.iter().enumerate() {
            ys[i] = if k % 2 == 0 {
                111.0 + k as f64 * 1e-3
            } else {
                80.0
            };
        }
        ys[500_003] = 150.0; // the column's maximum
        let kept = decimate(&xs, &ys, COLUMNS, |y| limits.outside(y));
        assert!(
            kept.len() <= COLUMNS * 4 + outliers.len() + 1,
            "{}",
            kept.len()
        );
        assert!(
            kept.windows(2).all(|w| w[0] < w[1]),
            "ascending, no repeats"
        );
        for &i in outliers.iter().chain(&[500_003]) {
            assert!(kept.contains(&i), "outlier {i} dropped");
        }
        for (i, &y) in ys.iter().enumerate() {
            if limits.outside(y) {
                assert!(kept.binary_search(&i).is_ok(), "point {i} ({y}) dropped");
            }
        }
        assert_eq!(kept.first(), Some(&0));
        assert_eq!(kept.last(), Some(&999_999));
        // Same shape: the envelope of every column is kept.
        let drawn_max = kept.iter().map(|&i| ys[i]).fold(f64::MIN, f64::max);
        let drawn_min = kept.iter().map(|&i| ys[i]).fold(f64::MAX, f64::min);
        assert_eq!(drawn_max, 150.0);
        assert_eq!(drawn_min, 80.0);
        // Each pixel column keeps its highest and lowest point.
        let span = xs[xs.len() - 1] - xs[0];
        let column = |i: usize| ((xs[i] - xs[0]) / span * COLUMNS as f64) as usize;
        for c in [0, 1, 400, 1000, 1999] {
            let all: Vec<f64> = (0..xs.len())
                .filter(|&i| column(i).min(COLUMNS - 1) == c)
                .map(|i| ys[i])
                .collect();
            let drawn: Vec<f64> = kept
                .iter()
                .filter(|&&i| column(i).min(COLUMNS - 1) == c)
                .map(|&i| ys[i])
                .collect();
            let max = |v: &[f64]| v.iter().copied().fold(f64::MIN, f64::max);
            let min = |v: &[f64]| v.iter().copied().fold(f64::MAX, f64::min);
            assert!(!all.is_empty());
            assert_eq!(
                (max(&all), min(&all)),
                (max(&drawn), min(&drawn)),
                "column {c}"
            );
        }
    }

    #[test]
    fn one_x_for_every_point_is_sliced_by_position() {
        let xs = vec![1.0; 100_000];
        let ys: Vec<f64> = (0..100_000).map(|i| (i % 97) as f64).collect();
        let kept = decimate(&xs, &ys, 100, |y| y > 95.5);
        assert!(kept.len() < 100 * 4 + 100_000 / 97 + 10);
        assert!(
            kept.iter().filter(|&&i| ys[i] == 96.0).count()
                == ys.iter().filter(|&&y| y == 96.0).count()
        );
    }

    #[test]
    fn charts_sort_unsorted_sweeps_and_skip_non_numbers() {
        let rows: Vec<Value> = vec![
            json!([2.0, 0.1, 20.0]),
            json!([1.0, 0.1, 10.0]),
            json!([3.0, 0.1, null]),
            json!(["a", 1.0]),
        ];
        let chart = build(
            &rows,
            Axes {
                z_label: String::new(),
                title: "t".into(),
                x_label: "x".into(),
                y_label: "y".into(),
                limits: Limits::from_validators(["All values pass: 0 <= x <= 15"]),
            },
        );
        assert_eq!(
            (chart.total, chart.drawn, chart.skipped, chart.outside),
            (4, 2, 2, 1)
        );
        assert_eq!(chart.data["x"], json!([1.0, 2.0]));
        assert_eq!(chart.data["y"], json!([10.0, 20.0]));
        assert_eq!(chart.data["upper"], json!(15.0));
        assert_eq!(chart.data["sorted"], json!(false));
    }

    fn axes() -> Axes {
        Axes {
            title: "iv".into(),
            x_label: "voltage (V)".into(),
            y_label: "current (A)".into(),
            z_label: "temperature (°C)".into(),
            limits: Limits::from_validators(["All values pass: 0 <= x <= 1"]),
        }
    }

    #[test]
    fn a_2d_sweep_is_one_line_per_value_of_its_second_dimension() {
        // Three temperatures; the third misses x = 1 and has a point outside the limits.
        let rows: Vec<Value> = [
            [0.0, 25.0, 0.1],
            [1.0, 25.0, 0.2],
            [0.0, 50.0, 0.3],
            [1.0, 50.0, 0.4],
            [0.0, 85.0, 1.5],
            [2.0, 85.0, 0.6],
        ]
        .iter()
        .map(|r| json!(r))
        .collect();
        let chart = build(&rows, axes());
        assert_eq!(chart.data["x"], json!([0.0, 1.0, 2.0]));
        assert_eq!(
            chart.data["series"],
            json!([
                {"label": "temperature (°C) = 25", "y": [0.1, 0.2, null]},
                {"label": "temperature (°C) = 50", "y": [0.3, 0.4, null]},
                {"label": "temperature (°C) = 85", "y": [1.5, null, 0.6]},
            ])
        );
        assert_eq!((chart.total, chart.drawn, chart.outside), (6, 6, 1));
        assert!(chart.data.get("y").is_none());
    }

    #[test]
    fn too_many_values_of_the_second_dimension_or_one_are_drawn_against_the_first() {
        let many: Vec<Value> = (0..=MAX_LINES)
            .map(|z| json!([0.0, z as f64, 0.5]))
            .collect();
        assert!(build(&many, axes()).data.get("series").is_none());
        let one: Vec<Value> = (0..5).map(|x| json!([x as f64, 1.0, 0.5])).collect();
        let chart = build(&one, axes());
        assert!(chart.data.get("series").is_none());
        assert_eq!(chart.data["y"], json!([0.5, 0.5, 0.5, 0.5, 0.5]));
        let three_d: Vec<Value> = (0..5).map(|x| json!([x as f64, 1.0, 2.0, 0.5])).collect();
        assert!(build(&three_d, axes()).data.get("series").is_none());
    }
}
