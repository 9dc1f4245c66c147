//! `static_configs`: the targets written in the configuration, as one provider per job whose
//! groups are named by their index (`"0"`, `"1"`, ...), as in Prometheus.

use std::any::Any;

use config::StaticConfig;
use model::labels::Labels;
use tokio::sync::mpsc;

use crate::{Discoverer, DiscovererFuture, DiscovererOptions, SdConfig, TargetGroup, same_config};

/// All `static_configs` of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticSd {
    configs: Vec<StaticConfig>,
}

impl StaticSd {
    pub fn new(configs: Vec<StaticConfig>) -> StaticSd {
        StaticSd { configs }
    }

    /// The groups, one per static config.
    pub fn groups(&self) -> Vec<TargetGroup> {
        self.configs
            .iter()
            .enumerate()
            .map(|(index, config)| TargetGroup {
                source: index.to_string(),
                targets: config
                    .targets
                    .iter()
                    .map(|address| crate::address_labels(address))
                    .collect(),
                // `config` validated the names and rejects duplicates, and a map has
                // unique keys, so this cannot fail; an empty set is the safe fallback.
                labels: Labels::from_pairs(
                    config
                        .labels
                        .iter()
                        .map(|(name, value)| (name.as_str(), value.as_str())),
                )
                .unwrap_or_default(),
            })
            .collect()
    }
}

impl SdConfig for StaticSd {
    fn name(&self) -> &'static str {
        "static"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn same_as(&self, other: &dyn SdConfig) -> bool {
        same_config(self, other)
    }

    fn discoverer(&self, _options: &DiscovererOptions) -> Box<dyn Discoverer> {
        Box::new(StaticDiscoverer {
            groups: self.groups(),
        })
    }
}

/// Sends its groups once, then waits until the manager drops it.
struct StaticDiscoverer {
    groups: Vec<TargetGroup>,
}

impl Discoverer for StaticDiscoverer {
    fn run(self: Box<Self>, updates: mpsc::Sender<Vec<TargetGroup>>) -> DiscovererFuture {
        Box::pin(async move {
            if updates.send(self.groups).await.is_ok() {
                updates.closed().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ADDRESS_LABEL;
    use std::collections::BTreeMap;

    #[test]
    fn one_group_per_static_config() {
        let sd = StaticSd::new(vec![
            StaticConfig {
                targets: vec!["a:1".into(), "b:2".into()],
                labels: BTreeMap::from([("env".to_owned(), "prod".to_owned())]),
            },
            StaticConfig {
                targets: vec!["c:3".into()],
                labels: BTreeMap::new(),
            },
        ]);
        let groups = sd.groups();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].source, "0");
        assert_eq!(groups[0].targets[1].get(ADDRESS_LABEL), Some("b:2"));
        assert_eq!(groups[0].labels.get("env"), Some("prod"));
        assert_eq!(groups[1].source, "1");
        assert!(groups[1].labels.is_empty());
    }
}
