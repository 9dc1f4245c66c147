//! Meridian's time-series database.
//!
//! - [`agent`]: the WAL-only storage of agent mode (`--agent`).
//! - [`chunkenc`]: the XOR chunk codec (Prometheus encoding 1).
//! - [`wal`]: the write-ahead log (Prometheus' segment and record formats) and its repair.
//! - [`chunks_head`]: full head chunks in memory-mapped files.
//! - [`head`]: in-memory series, the inverted index, appenders and queriers.
//! - [`block`]: persistent blocks (meta.json, [`index`], [`chunks`], [`tombstones`]) in
//!   Prometheus' on-disk format, with [`encoding`] helpers.
//! - [`compact`]: level and vertical compaction of blocks.
//! - [`db`]: the database directory: lock file, head, blocks, compaction, retention, and the
//!   storage traits.

pub mod agent;
pub mod block;
pub mod chunkenc;
pub mod chunks;
pub mod chunks_head;
pub mod compact;
pub mod db;
pub mod encoding;
pub mod head;
pub mod index;
pub mod tombstones;
pub mod wal;

pub use agent::{AgentDb, AgentOptions};
pub use db::{CompactReport, Db, DbOptions, DbStats};
