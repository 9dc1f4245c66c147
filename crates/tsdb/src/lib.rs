//! Meridian's time-series database.
//!
//! - [`chunkenc`]: the XOR chunk codec (Prometheus encoding 1).

pub mod chunkenc;
