//! A timer as libprocess's `Timer<Milliseconds>` reports one: the last duration under
//! `<name>_ms`, and over a window (the last hour for the docker store's pulls) the count,
//! minimum, maximum and percentiles under `<name>_ms/count`, `/min`, `/max`, `/p50`,
//! `/p90`, `/p95`, `/p99`, `/p999`, `/p9999`: only with two samples or more, and
//! percentiles interpolated linearly between the sorted samples, as libprocess's
//! `Statistics` does. Nothing is reported before the first sample.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most this many samples are kept (libprocess's time series keeps 1000).
const CAPACITY: usize = 1000;

#[derive(Debug)]
pub struct Timer {
    name: &'static str,
    window: Duration,
    samples: Mutex<VecDeque<(Instant, f64)>>,
}

impl Timer {
    pub fn new(name: &'static str, window: Duration) -> Timer {
        Timer {
            name,
            window,
            samples: Mutex::new(VecDeque::new()),
        }
    }

    /// Records one timed operation.
    pub fn record(&self, took: Duration) {
        let Ok(mut samples) = self.samples.lock() else {
            return;
        };
        samples.push_back((Instant::now(), took.as_secs_f64() * 1000.0));
        if samples.len() > CAPACITY {
            samples.pop_front();
        }
    }

    /// The timer's values, by name.
    pub fn snapshot(&self) -> Vec<(String, f64)> {
        let Ok(mut samples) = self.samples.lock() else {
            return Vec::new();
        };
        let Some(&(_, last)) = samples.back() else {
            return Vec::new();
        };
        let key = format!("{}_ms", self.name);
        let mut out = vec![(key.clone(), last)];
        let now = Instant::now();
        while samples
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > self.window)
        {
            samples.pop_front();
        }
        let mut values: Vec<f64> = samples.iter().map(|(_, v)| *v).collect();
        if values.len() < 2 {
            return out;
        }
        values.sort_by(f64::total_cmp);
        out.push((format!("{key}/count"), values.len() as f64));
        out.push((format!("{key}/max"), values[values.len() - 1]));
        out.push((format!("{key}/min"), values[0]));
        for (suffix, p) in [
            ("p50", 0.5),
            ("p90", 0.9),
            ("p95", 0.95),
            ("p99", 0.99),
            ("p999", 0.999),
            ("p9999", 0.9999),
        ] {
            out.push((format!("{key}/{suffix}"), percentile(&values, p)));
        }
        out
    }
}

/// Linear interpolation between the sorted `values` (at least two).
fn percentile(values: &[f64], p: f64) -> f64 {
    let position = p * (values.len() - 1) as f64;
    let index = position.floor() as usize;
    let delta = position - index as f64;
    match values.get(index + 1) {
        Some(next) => values[index] + (next - values[index]) * delta,
        None => values[index],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_value_then_statistics_from_two_samples() {
        let t = Timer::new("x/pull", Duration::from_secs(3600));
        assert!(t.snapshot().is_empty(), "nothing before the first sample");
        t.record(Duration::from_millis(30));
        assert_eq!(t.snapshot(), [("x/pull_ms".to_string(), 30.0)]);
        t.record(Duration::from_millis(10));
        t.record(Duration::from_millis(20));
        let s: std::collections::BTreeMap<_, _> = t.snapshot().into_iter().collect();
        assert_eq!(s["x/pull_ms"], 20.0, "the last one");
        assert_eq!(s["x/pull_ms/count"], 3.0);
        assert_eq!(s["x/pull_ms/min"], 10.0);
        assert_eq!(s["x/pull_ms/max"], 30.0);
        assert_eq!(s["x/pull_ms/p50"], 20.0);
        assert!(
            (s["x/pull_ms/p90"] - 28.0).abs() < 1e-9,
            "{}",
            s["x/pull_ms/p90"]
        );
    }

    #[test]
    fn old_samples_leave_the_window() {
        let t = Timer::new("y", Duration::from_millis(1));
        t.record(Duration::from_millis(5));
        t.record(Duration::from_millis(6));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(
            t.snapshot(),
            [("y_ms".to_string(), 6.0)],
            "the last value stays"
        );
    }
}
