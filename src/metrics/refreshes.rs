//! OAuth2 token refreshes, read from [`crate::oauth::refreshes`] at each
//! scrape rather than mirrored into a counter of our own, so the two can
//! never disagree.

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;

#[derive(Debug)]
pub(super) struct Collector;

impl prometheus_client::collector::Collector for Collector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counts = crate::oauth::refreshes();
        let mut family = encoder.encode_descriptor(
            "oauth_token_refreshes",
            "OAuth2 access token refreshes by outcome (ok, failed).",
            None,
            MetricType::Counter,
        )?;
        for (outcome, count) in [("ok", counts.ok), ("failed", counts.failed)] {
            let labels = [("outcome", outcome)];
            ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
