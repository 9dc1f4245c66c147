//! The `storage` section: the TSDB settings that can change at runtime
//! (out-of-order window, retention) and the exemplar buffer size.

use crate::duration::Duration;
use crate::error::DecodeResult;
use crate::global::decode_size;
use crate::yaml::{Fields, Node};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageConfig {
    /// `None` when the config has no `storage.tsdb` block.
    pub tsdb: Option<TsdbConfig>,
    /// `None` when the config has no `storage.exemplars` block.
    pub exemplars: Option<ExemplarsConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TsdbConfig {
    /// How far behind the newest sample a sample may still be ingested.
    pub out_of_order_time_window: Duration,
    pub retention: Option<RetentionConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionConfig {
    /// `None`: the command line (or its 15d default) decides.
    pub time: Option<Duration>,
    /// Bytes; 0 disables size-based retention.
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExemplarsConfig {
    /// Size of the exemplar ring buffer; 0 or less disables exemplar storage.
    pub max_exemplars: i64,
}

impl Default for ExemplarsConfig {
    fn default() -> Self {
        ExemplarsConfig {
            max_exemplars: 100_000,
        }
    }
}

impl StorageConfig {
    pub(crate) fn decode(node: Option<&Node>, path: &str) -> DecodeResult<StorageConfig> {
        let Some(node) = node else {
            return Ok(StorageConfig::default());
        };
        let mut fields = Fields::new(node, path)?;
        let tsdb = match fields.node("tsdb") {
            None => None,
            Some(node) => Some(decode_tsdb(node, &fields.path_of("tsdb"))?),
        };
        let exemplars = match fields.node("exemplars") {
            None => None,
            Some(node) => {
                let mut exemplar_fields = Fields::new(node, &fields.path_of("exemplars"))?;
                let exemplars = ExemplarsConfig {
                    max_exemplars: exemplar_fields
                        .get_or("max_exemplars", ExemplarsConfig::default().max_exemplars)?,
                };
                exemplar_fields.finish("exemplars config")?;
                Some(exemplars)
            }
        };
        fields.finish("storage config")?;
        Ok(StorageConfig { tsdb, exemplars })
    }
}

fn decode_tsdb(node: &Node, path: &str) -> DecodeResult<TsdbConfig> {
    let mut fields = Fields::new(node, path)?;
    let out_of_order_time_window = fields.get_or_default("out_of_order_time_window")?;
    let retention = match fields.node("retention") {
        None => None,
        Some(node) => {
            let mut retention_fields = Fields::new(node, &fields.path_of("retention"))?;
            let retention = RetentionConfig {
                time: retention_fields.get("time")?,
                size: decode_size(&mut retention_fields, "size")?,
            };
            retention_fields.finish("retention config")?;
            Some(retention)
        }
    };
    fields.finish("tsdb config")?;
    Ok(TsdbConfig {
        out_of_order_time_window,
        retention,
    })
}
