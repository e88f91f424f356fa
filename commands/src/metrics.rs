//! The process's counters and latency histograms, rendered as Prometheus text by `GET /metrics`.
//!
//! One registry per process (the static `METRICS`): every role records into it, and the API
//! adds the gauges it reads at scrape time (projection lag and state, relay lag, pool usage).
//! Labels come from a bounded set only (route patterns, command names, error codes, projection
//! names), never from what a client typed, so a client cannot grow the registry.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 14] =
    [0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Label names and values of one series.
pub type Labels = Vec<(&'static str, String)>;

/// Families copied out of the registry for rendering: (name, help, series).
type Snapshot<T> = Vec<(&'static str, &'static str, Vec<(Labels, T)>)>;

#[derive(Default, Clone)]
struct Histogram {
    /// Observations at or under each bucket's bound (not cumulative; summed when rendered).
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

struct Family<T> {
    help: &'static str,
    series: BTreeMap<Labels, T>,
}

/// Counters and histograms by name, then by labels.
#[derive(Default)]
pub struct Registry {
    counters: Mutex<BTreeMap<&'static str, Family<u64>>>,
    histograms: Mutex<BTreeMap<&'static str, Family<Histogram>>>,
}

/// The process's registry.
pub static METRICS: LazyLock<Registry> = LazyLock::new(Registry::default);

impl Registry {
    /// Adds `n` to a counter.
    pub fn add(&self, name: &'static str, help: &'static str, labels: Labels, n: u64) {
        let mut all = self.counters.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let family = all.entry(name).or_insert_with(|| Family { help, series: BTreeMap::new() });
        *family.series.entry(labels).or_default() += n;
    }

    /// Observes a latency.
    pub fn observe(&self, name: &'static str, help: &'static str, labels: Labels, took: Duration) {
        let seconds = took.as_secs_f64();
        let mut all = self.histograms.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let family = all.entry(name).or_insert_with(|| Family { help, series: BTreeMap::new() });
        let h = family.series.entry(labels).or_default();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| seconds <= *b) {
            h.buckets[i] += 1;
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// A counter's value (tests, and rates computed in process).
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let all = self.counters.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        all.get(name).map_or(0, |f| f.series.iter().filter(|(l, _)| same(l, labels)).map(|(_, v)| *v).sum())
    }

    /// Observations of a histogram's series matching `labels` (all of them for `&[]`).
    pub fn observations(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let all = self.histograms.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        all.get(name).map_or(0, |f| f.series.iter().filter(|(l, _)| same(l, labels)).map(|(_, h)| h.count).sum())
    }

    /// Prometheus text of every counter and histogram. The series are copied under the locks and
    /// formatted after, so a scrape holds up no request's observation for long.
    pub fn render(&self) -> String {
        let counters: Snapshot<u64> = {
            let all = self.counters.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            all.iter().map(|(n, f)| (*n, f.help, f.series.iter().map(|(l, v)| (l.clone(), *v)).collect())).collect()
        };
        let histograms: Snapshot<Histogram> = {
            let all = self.histograms.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            all.iter()
                .map(|(n, f)| (*n, f.help, f.series.iter().map(|(l, h)| (l.clone(), h.clone())).collect()))
                .collect()
        };
        let mut out = String::new();
        for (name, help, series) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, v) in &series {
                let _ = writeln!(out, "{name}{} {v}", render_labels(labels, None));
            }
        }
        for (name, help, series) in histograms {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
            for (labels, h) in &series {
                let mut cumulative = 0;
                for (bound, n) in LATENCY_BUCKETS.iter().zip(h.buckets) {
                    cumulative += n;
                    let le = render_labels(labels, Some(&bound.to_string()));
                    let _ = writeln!(out, "{name}_bucket{le} {cumulative}");
                }
                let _ = writeln!(out, "{name}_bucket{} {}", render_labels(labels, Some("+Inf")), h.count);
                let _ = writeln!(out, "{name}_sum{} {}", render_labels(labels, None), h.sum);
                let _ = writeln!(out, "{name}_count{} {}", render_labels(labels, None), h.count);
            }
        }
        out
    }
}

fn same(have: &Labels, want: &[(&str, &str)]) -> bool {
    want.iter().all(|(k, v)| have.iter().any(|(hk, hv)| hk == k && hv == v))
}

/// `{a="x",b="y"}` with Prometheus's escaping, and `le` last when given.
pub fn render_labels(labels: &[(&'static str, String)], le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

/// A label value escaped for the text format.
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// An append's latency and outcome (`ok`, `conflict`, `error`).
pub fn appended(took: Duration, outcome: &'static str) {
    METRICS.observe(
        "bozor_append_seconds",
        "Event store appends (one transaction each), by outcome.",
        vec![("outcome", outcome.to_owned())],
        took,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_histograms() {
        let r = Registry::default();
        r.add("t_total", "Things.", vec![("kind", "a\"b".into())], 2);
        r.add("t_total", "Things.", vec![("kind", "a\"b".into())], 3);
        r.observe("t_seconds", "Took.", vec![], Duration::from_millis(3));
        r.observe("t_seconds", "Took.", vec![], Duration::from_secs(60));
        let text = r.render();
        assert!(text.contains("# TYPE t_total counter\nt_total{kind=\"a\\\"b\"} 5\n"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"0.0025\"} 0\n"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"10\"} 1\n"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"+Inf\"} 2\n"), "{text}");
        assert!(text.contains("t_seconds_count 2\n"), "{text}");
        assert_eq!(r.counter("t_total", &[("kind", "a\"b")]), 5);
    }
}
