//! Meridian's time-series database.
//!
//! - [`chunkenc`]: the XOR chunk codec (Prometheus encoding 1).
//! - [`wal`]: the write-ahead log (Prometheus' segment and record formats) and its repair.
//! - [`chunks_head`]: full head chunks in memory-mapped files.
//! - [`head`]: in-memory series, the inverted index, appenders and queriers.
//! - [`db`]: the database directory: lock file, head, and the storage traits.

pub mod chunkenc;
pub mod chunks_head;
pub mod db;
pub mod head;
pub mod wal;

pub use db::{Db, DbOptions};
