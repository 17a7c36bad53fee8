//! Counters exported as CloudWatch embedded metric format (EMF): one JSON line on stdout per
//! invocation, which CloudWatch turns into metrics without an API call.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

pub const NAMESPACE: &str = "WhatsAppDesk";

/// Counters of one invocation, emitted with a `Function` dimension.
pub struct Metrics {
    function: &'static str,
    counts: Vec<(&'static str, u64)>,
}

impl Metrics {
    pub fn new(function: &'static str) -> Self {
        Self {
            function,
            counts: Vec::new(),
        }
    }

    /// Adds to a counter; zero counts are not emitted.
    pub fn count(&mut self, name: &'static str, value: usize) -> &mut Self {
        if value > 0 {
            match self.counts.iter_mut().find(|(n, _)| *n == name) {
                Some((_, total)) => *total += value as u64,
                None => self.counts.push((name, value as u64)),
            }
        }
        self
    }

    /// The EMF document, or `None` when every counter is zero.
    pub fn document(&self) -> Option<Value> {
        if self.counts.is_empty() {
            return None;
        }
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let definitions: Vec<Value> = self
            .counts
            .iter()
            .map(|(name, _)| json!({"Name": name, "Unit": "Count"}))
            .collect();
        let mut document = Map::new();
        document.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Function"]],
                    "Metrics": definitions,
                }],
            }),
        );
        document.insert("Function".into(), self.function.into());
        for (name, value) in &self.counts {
            document.insert((*name).into(), (*value).into());
        }
        Some(Value::Object(document))
    }

    pub fn emit(&self) {
        if let Some(document) = self.document() {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{document}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_an_emf_document_with_only_non_zero_counters() {
        let mut metrics = Metrics::new("webhook");
        metrics
            .count("Messages", 2)
            .count("Statuses", 0)
            .count("Messages", 1);
        let document = metrics.document().unwrap();
        assert_eq!(document["Messages"], 3);
        assert!(document.get("Statuses").is_none());
        assert_eq!(document["Function"], "webhook");
        assert_eq!(
            document["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            json!([{"Name": "Messages", "Unit": "Count"}])
        );
        assert!(Metrics::new("webhook").document().is_none());
    }
}
