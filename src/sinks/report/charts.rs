//! The report's charts, drawn with plotters' SVG backend into strings that the HTML inlines.

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use crate::error::{Error, Result};

const SIZE: (u32, u32) = (640, 340);
/// The current configuration's colour.
pub const CURRENT: RGBColor = RGBColor(214, 39, 40);
/// The recommended configuration's colour.
pub const CHOSEN: RGBColor = RGBColor(44, 160, 44);
/// Everything else searched.
pub const OTHER: RGBColor = RGBColor(160, 160, 160);
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// The colour of series `i` (classes, metrics).
pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// A named series of points.
pub struct Series<'a> {
    pub name: &'a str,
    pub points: Vec<(f64, f64)>,
    pub colour: RGBColor,
}

/// plotters reports drawing failures with backend-specific types; the report only needs the text.
fn drawn<T, E: std::fmt::Debug>(what: &str, r: std::result::Result<T, E>) -> Result<T> {
    r.map_err(|e| Error::Internal(format!("drawing the {what} chart: {e:?}")))
}

/// Draws into an SVG string of the report's chart size.
fn svg(
    what: &str,
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<()>,
) -> Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        drawn(what, root.fill(&WHITE))?;
        draw(&root)?;
        drawn(what, root.present())?;
    }
    Ok(out)
}

/// A chart with the report's title style and margins; `y_labels` is the width of the y labels.
fn builder<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, Shift>,
    title: &str,
    y_labels: u32,
) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(y_labels);
    builder
}

/// Range from zero (or the lowest negative value) to the highest of `values`, with a little
/// room above; `0..1` when there is none.
fn span(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((0.0f64, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !hi.is_finite() {
        return 0.0..1.0;
    }
    let pad = ((hi - lo) * 0.08).max(hi.abs() * 0.05).max(1e-9);
    lo..hi + pad
}

/// Lines and dots (single points: candidates, highlights) on shared axes.
pub struct LineChart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub lines: Vec<Series<'a>>,
    /// Points drawn as dots without a line (candidates, highlights).
    pub dots: Vec<Series<'a>>,
    /// Draw y = x (predicted vs observed) on log-log axes.
    pub diagonal: bool,
    /// Where the legend goes (the y axis gets headroom for it when at the top).
    pub legend: SeriesLabelPosition,
}

impl LineChart<'_> {
    pub fn svg(&self) -> Result<String> {
        let all = || {
            self.lines
                .iter()
                .chain(&self.dots)
                .flat_map(|s| s.points.iter().copied())
        };
        if self.diagonal {
            return self.parity();
        }
        let xs = span(all().map(|p| p.0));
        let mut ys = span(all().map(|p| p.1));
        if matches!(
            self.legend,
            SeriesLabelPosition::UpperRight | SeriesLabelPosition::UpperLeft
        ) {
            ys.end += (ys.end - ys.start) * 0.35;
        }
        svg(self.title, |root| self.draw(root, xs, ys, None))
    }

    /// Axes, the optional y = x line between `diagonal`'s bounds, the series and the legend.
    fn draw<X, Y>(
        &self,
        root: &DrawingArea<SVGBackend, Shift>,
        xs: X,
        ys: Y,
        diagonal: Option<(f64, f64)>,
    ) -> Result<()>
    where
        X: AsRangedCoord<Value = f64>,
        Y: AsRangedCoord<Value = f64>,
        X::CoordDescType: ValueFormatter<f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let mut chart = drawn(
            self.title,
            builder(root, self.title, 60).build_cartesian_2d(xs, ys),
        )?;
        drawn(
            self.title,
            chart
                .configure_mesh()
                .x_desc(self.x_label)
                .y_desc(self.y_label)
                .light_line_style(RGBColor(235, 235, 235))
                .draw(),
        )?;
        if let Some((lo, hi)) = diagonal {
            drawn(
                self.title,
                chart.draw_series(LineSeries::new([(lo, lo), (hi, hi)], OTHER.stroke_width(1))),
            )?
            .label("predicted = observed")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], OTHER));
        }
        self.series(&mut chart)?;
        drawn(
            self.title,
            chart
                .configure_series_labels()
                .position(self.legend.clone())
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw(),
        )
    }

    /// The lines and dots, with their legend entries.
    fn series<X, Y>(&self, chart: &mut ChartContext<SVGBackend, Cartesian2d<X, Y>>) -> Result<()>
    where
        X: Ranged<ValueType = f64>,
        Y: Ranged<ValueType = f64>,
    {
        for s in &self.lines {
            let c = s.colour;
            drawn(
                self.title,
                chart.draw_series(LineSeries::new(s.points.clone(), c.stroke_width(2))),
            )?
            .label(s.name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], c.stroke_width(2)));
        }
        for s in &self.dots {
            let c = s.colour;
            drawn(
                self.title,
                chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 4, c.filled()))),
            )?
            .label(s.name)
            .legend(move |(x, y)| Circle::new((x + 8, y), 4, c.filled()));
        }
        Ok(())
    }

    /// Predicted against observed on log-log axes (values from milliseconds to minutes), with the
    /// y = x line.
    fn parity(&self) -> Result<String> {
        let values = self
            .dots
            .iter()
            .flat_map(|s| s.points.iter().flat_map(|p| [p.0, p.1]))
            .filter(|v| v.is_finite() && *v > 0.0);
        let (lo, hi) = values.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let (lo, hi) = if lo.is_finite() {
            (lo / 2.0, hi * 2.0)
        } else {
            (1.0, 10.0)
        };
        svg(self.title, |root| {
            self.draw(
                root,
                (lo..hi).log_scale(),
                (lo..hi).log_scale(),
                Some((lo, hi)),
            )
        })
    }
}

/// Horizontal stacked bars: one bar per row, segments in shares summing to one.
pub struct StackedBars<'a> {
    pub title: &'a str,
    pub rows: Vec<(String, Vec<f64>)>,
    pub segments: Vec<String>,
}

impl StackedBars<'_> {
    pub fn svg(&self) -> Result<String> {
        let n = self.rows.len().max(1) as u32;
        svg(self.title, |root| {
            let (plot, key) = root.split_horizontally(400);
            let mut chart = drawn(
                self.title,
                builder(&plot, self.title, 90)
                    .build_cartesian_2d(0.0..1.0, (0..n).into_segmented()),
            )?;
            let labels: Vec<&str> = self.rows.iter().map(|(l, _)| l.as_str()).collect();
            drawn(
                self.title,
                chart
                    .configure_mesh()
                    .disable_y_mesh()
                    .x_desc("share of the app's requests")
                    .y_labels(labels.len().max(1))
                    .y_label_formatter(&|y| match y {
                        SegmentValue::CenterOf(i) => labels
                            .get(*i as usize)
                            .map_or(String::new(), |l| (*l).to_string()),
                        _ => String::new(),
                    })
                    .draw(),
            )?;
            for (k, _) in self.segments.iter().enumerate() {
                let c = colour(k);
                let bars = self.rows.iter().enumerate().map(|(i, (_, shares))| {
                    let from: f64 = shares[..k].iter().sum();
                    let i = i as u32;
                    let mut bar = Rectangle::new(
                        [
                            (from, SegmentValue::Exact(i)),
                            (from + shares[k], SegmentValue::Exact(i + 1)),
                        ],
                        c.filled(),
                    );
                    bar.set_margin(6, 6, 0, 0);
                    bar
                });
                drawn(self.title, chart.draw_series(bars))?;
            }
            for (k, segment) in self.segments.iter().enumerate() {
                let y = 50 + 22 * k as i32;
                drawn(
                    self.title,
                    key.draw(&Rectangle::new(
                        [(8, y - 6), (20, y + 6)],
                        colour(k).filled(),
                    )),
                )?;
                drawn(
                    self.title,
                    key.draw(&Text::new(
                        segment.as_str(),
                        (26, y - 6),
                        ("sans-serif", 12),
                    )),
                )?;
            }
            Ok(())
        })
    }
}
