//! Meridian's time-series database.
//!
//! - [`chunkenc`]: the XOR chunk codec (Prometheus encoding 1).
//! - [`wal`]: the write-ahead log (Prometheus' segment and record formats) and its repair.

pub mod chunkenc;
pub mod wal;
