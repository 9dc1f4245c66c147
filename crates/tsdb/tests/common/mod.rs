//! Helpers shared by integration tests and examples: a realistic workload and on-disk size
//! measurement.

pub mod size;
pub mod workload;
