//! The database directory: an exclusive lock file, the head, and the storage interfaces.
//!
//! Layout (as Prometheus'): `lock`, `wal/`, `chunks_head/`. Persistent blocks join in the
//! next storage issue.

use crate::head::{Head, HeadOptions};
use model::sample::Timestamp;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use storage::{Appendable, Appender, Querier, Queryable, StorageError};

/// Settings of the database.
#[derive(Debug, Clone, Default)]
pub struct DbOptions {
    pub head: HeadOptions,
}

/// An open database. Dropping it releases the lock (after closing the WAL).
pub struct Db {
    dir: PathBuf,
    head: Head,
    _lock: File,
}

/// Why a database cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the data directory {0} is in use by another process (lock file held)")]
    Locked(PathBuf),
    #[error("opening the data directory {dir}: {err}")]
    Io { dir: PathBuf, err: std::io::Error },
}

impl Db {
    /// Opens (creating when needed) the database in `dir` and replays its WAL.
    pub fn open(dir: &Path, opts: DbOptions) -> Result<Db, OpenError> {
        let io = |err| OpenError::Io {
            dir: dir.to_path_buf(),
            err,
        };
        fs::create_dir_all(dir).map_err(io)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .map_err(io)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(OpenError::Locked(dir.to_path_buf()));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let head = Head::open(dir, opts.head).map_err(io)?;
        Ok(Db {
            dir: dir.to_path_buf(),
            head,
            _lock: lock,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn head(&self) -> &Head {
        &self.head
    }

    /// Syncs the WAL to the device (call periodically and at shutdown).
    pub fn sync(&self) -> std::io::Result<()> {
        self.head.sync_wal()
    }

    /// Closes the WAL; the lock is released when the `Db` is dropped.
    pub fn close(&self) -> std::io::Result<()> {
        self.head.close()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Err(e) = self.head.close() {
            tracing::error!(err = %e, "closing the WAL");
        }
    }
}

impl Appendable for Db {
    fn appender(&self) -> Box<dyn Appender> {
        Box::new(self.head.appender())
    }
}

impl Queryable for Db {
    fn querier(&self, mint: Timestamp, maxt: Timestamp) -> Result<Box<dyn Querier>, StorageError> {
        Ok(Box::new(self.head.querier(mint, maxt)))
    }
}
