//! Prometheus metrics in the text exposition format, without a metrics
//! crate: request counts by route and status, a latency histogram by route,
//! named counters, and gauges computed at scrape time (database pool, outbox).
//!
//! Labels use route *patterns* (`/api/sections/{id}`), never raw paths, so
//! ids never reach the metrics and cardinality stays bounded.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

type Labels = Vec<(String, String)>;

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    counters: BTreeMap<(String, Labels), u64>,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// A gauge read at scrape time.
pub struct Gauge<'a> {
    pub name: &'a str,
    pub help: &'a str,
    pub labels: Vec<(&'a str, String)>,
    pub value: f64,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn label_text(labels: &[(String, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", parts.join(","))
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn observe_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let mut g = self.inner.lock().expect("metrics lock");
        *g.requests
            .entry((route.to_string(), method.to_string(), status))
            .or_default() += 1;
        let h = g.latency.entry(route.to_string()).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    pub fn inc(&self, name: &str, labels: &[(&str, &str)]) {
        self.add(name, labels, 1);
    }

    pub fn add(&self, name: &str, labels: &[(&str, &str)], n: u64) {
        let labels: Labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut g = self.inner.lock().expect("metrics lock");
        *g.counters.entry((name.to_string(), labels)).or_default() += n;
    }

    /// The current value of a counter (tests and the demo read these).
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let labels: Labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let g = self.inner.lock().expect("metrics lock");
        g.counters
            .get(&(name.to_string(), labels))
            .copied()
            .unwrap_or(0)
    }

    pub fn render(&self, gauges: &[Gauge<'_>]) -> String {
        let g = self.inner.lock().expect("metrics lock");
        let mut out = String::new();
        out.push_str("# HELP kaibiao_http_requests_total HTTP requests by route pattern, method and status.\n");
        out.push_str("# TYPE kaibiao_http_requests_total counter\n");
        for ((route, method, status), n) in &g.requests {
            let _ = writeln!(
                out,
                "kaibiao_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        out.push_str(
            "# HELP kaibiao_http_request_duration_seconds Time to respond, by route pattern.\n",
        );
        out.push_str("# TYPE kaibiao_http_request_duration_seconds histogram\n");
        for (route, h) in &g.latency {
            let r = escape(route);
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "kaibiao_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "kaibiao_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "kaibiao_http_request_duration_seconds_sum{{route=\"{r}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "kaibiao_http_request_duration_seconds_count{{route=\"{r}\"}} {}",
                h.count
            );
        }
        let mut last = "";
        for ((name, labels), n) in &g.counters {
            if name != last {
                let _ = writeln!(out, "# TYPE {name} counter");
                last = name;
            }
            let _ = writeln!(out, "{name}{} {n}", label_text(labels));
        }
        let mut last = "";
        for gauge in gauges {
            if gauge.name != last {
                let _ = writeln!(out, "# HELP {} {}", gauge.name, gauge.help);
                let _ = writeln!(out, "# TYPE {} gauge", gauge.name);
                last = gauge.name;
            }
            let labels: Labels = gauge
                .labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            let _ = writeln!(out, "{}{} {}", gauge.name, label_text(&labels), gauge.value);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        m.observe_request("/api/sections/{id}", "GET", 200, 0.003);
        m.observe_request("/api/sections/{id}", "GET", 404, 0.2);
        m.inc(
            "kaibiao_chronograph_transitions_total",
            &[("kind", "section.deadline")],
        );
        let text = m.render(&[Gauge {
            name: "kaibiao_db_pool_connections",
            help: "Open connections.",
            labels: vec![("state", "idle".into())],
            value: 2.0,
        }]);
        assert!(text.contains(
            "kaibiao_http_requests_total{route=\"/api/sections/{id}\",method=\"GET\",status=\"404\"} 1"
        ));
        assert!(text.contains("kaibiao_http_request_duration_seconds_bucket{route=\"/api/sections/{id}\",le=\"0.005\"} 1"));
        assert!(text.contains(
            "kaibiao_http_request_duration_seconds_count{route=\"/api/sections/{id}\"} 2"
        ));
        assert!(text.contains("kaibiao_chronograph_transitions_total{kind=\"section.deadline\"} 1"));
        assert!(text.contains("kaibiao_db_pool_connections{state=\"idle\"} 2"));
        assert_eq!(
            m.counter(
                "kaibiao_chronograph_transitions_total",
                &[("kind", "section.deadline")]
            ),
            1
        );
    }
}
