//! The gateway's `/metrics`, in Prometheus' text format: requests by function, mode and
//! status, and latency histograms by function, mode and phase (`setup`: the boot or the
//! restore, `guest`: the guest's work on the request, `total`: end to end in the gateway).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    function: String,
    mode: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    function: String,
    mode: String,
    phase: &'static str,
}

/// 50 us to about 13 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 19))
}

/// What one request cost, by phase.
#[derive(Debug, Clone, Copy, Default)]
pub struct Phases {
    pub setup: Option<Duration>,
    pub guest: Option<Duration>,
    pub total: Duration,
}

/// The gateway's counters and histograms.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<PhaseLabels, Histogram, fn() -> Histogram>,
    scaled_to_zero: Family<Vec<(String, String)>, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("uk_gateway");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("requests", "Requests answered", requests.clone());
        let latency = Family::<PhaseLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "latency_seconds",
            "Latency by phase: setup (boot or restore), guest, total",
            latency.clone(),
        );
        let scaled_to_zero = Family::<Vec<(String, String)>, Counter>::default();
        registry.register(
            "scaled_to_zero",
            "Times a function's VMs and snapshot were dropped after an idle period",
            scaled_to_zero.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            scaled_to_zero,
        }
    }
}

impl Metrics {
    /// Counts a request and its phases.
    pub fn record(&self, function: &str, mode: &str, status: u16, phases: Phases) {
        self.requests
            .get_or_create(&RequestLabels {
                function: function.into(),
                mode: mode.into(),
                status,
            })
            .inc();
        let observe = |phase: &'static str, time: Duration| {
            self.latency
                .get_or_create(&PhaseLabels {
                    function: function.into(),
                    mode: mode.into(),
                    phase,
                })
                .observe(time.as_secs_f64());
        };
        if let Some(setup) = phases.setup {
            observe("setup", setup);
        }
        if let Some(guest) = phases.guest {
            observe("guest", guest);
        }
        observe("total", phases.total);
    }

    /// Counts a scale to zero.
    pub fn scaled_to_zero(&self, function: &str) {
        self.scaled_to_zero
            .get_or_create(&vec![("function".into(), function.into())])
            .inc();
    }

    /// The text `/metrics` answers.
    pub fn text(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_phases_show_in_the_text_format() {
        let metrics = Metrics::default();
        let phases = Phases {
            setup: Some(Duration::from_micros(300)),
            guest: Some(Duration::from_millis(2)),
            total: Duration::from_millis(3),
        };
        metrics.record("hello", "snapshot", 200, phases);
        metrics.record("hello", "snapshot", 200, phases);
        metrics.scaled_to_zero("hello");
        let text = metrics.text();
        assert!(
            text.contains(
                r#"uk_gateway_requests_total{function="hello",mode="snapshot",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"uk_gateway_latency_seconds_count{function="hello",mode="snapshot",phase="guest"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"uk_gateway_scaled_to_zero_total{function="hello"} 1"#),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
