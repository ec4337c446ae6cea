//! Order statistics of a set of measurements.

use serde::Serialize;

/// p50, p99, max (and the count) of a set of measurements, in their unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Summary {
    /// How many measurements.
    pub n: usize,
    /// The median.
    pub p50: f64,
    /// The 99th percentile (nearest rank).
    pub p99: f64,
    /// The largest.
    pub max: f64,
    /// The smallest.
    pub min: f64,
}

impl Summary {
    /// Summarises `values` (any order); all zero when empty.
    pub fn of(values: &[f64]) -> Summary {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Summary {
            n: sorted.len(),
            p50: percentile(&sorted, 50.0),
            p99: percentile(&sorted, 99.0),
            max: sorted.last().copied().unwrap_or(0.0),
            min: sorted.first().copied().unwrap_or(0.0),
        }
    }
}

/// The nearest-rank percentile `p` (0–100) of sorted values; 0 when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of `values` (the mean of the two middle ones for an even count); 0 when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Two series measured in alternating rounds (round `i` of `a` beside round `i` of `b`),
/// compared: the ratio of their medians, and the median of the per-round ratios (which a
/// machine that slows down for a while affects less).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paired {
    /// The median of `a`.
    pub a: f64,
    /// The median of `b`.
    pub b: f64,
    /// `a / b` of the medians.
    pub ratio: f64,
    /// The median of `a[i] / b[i]`.
    pub paired_ratio: f64,
}

impl Paired {
    /// Compares `a` against `b`.
    pub fn of(a: &[f64], b: &[f64]) -> Paired {
        let per_round: Vec<f64> = a.iter().zip(b).map(|(a, b)| a / b.max(1e-9)).collect();
        let (a, b) = (median(a), median(b));
        Paired {
            a,
            b,
            ratio: a / b.max(1e-9),
            paired_ratio: median(&per_round),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Summary::of(&values);
        assert_eq!((s.n, s.p50, s.p99, s.max, s.min), (100, 50.0, 99.0, 100.0, 1.0));
        assert_eq!(Summary::of(&[]).p99, 0.0);
        assert_eq!(Summary::of(&[7.0]).p99, 7.0);
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), 2.5);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    }

    #[test]
    fn paired_rounds() {
        let p = Paired::of(&[10.0, 20.0, 30.0], &[10.0, 10.0, 60.0]);
        assert_eq!((p.a, p.b), (20.0, 10.0));
        assert_eq!(p.ratio, 2.0);
        assert_eq!(p.paired_ratio, 1.0);
    }
}
