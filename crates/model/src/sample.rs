//! Samples: a millisecond timestamp and a value, and the staleness marker.
//!
//! The staleness marker is one particular NaN (bits `0x7ff0000000000002`) that Prometheus writes
//! when a series disappears. An ordinary NaN is a legitimate value; the two must be told apart by
//! their bits, never by `is_nan()` alone.

/// Bit pattern of the staleness marker.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Bit pattern of the NaN Prometheus uses for ordinary NaN values (Go's `math.NaN()`).
pub const NORMAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

/// The staleness marker as a float.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// True only for the staleness marker, not for other NaNs.
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// Milliseconds since the Unix epoch.
pub type Timestamp = i64;

/// One float sample.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub t: Timestamp,
    pub v: f64,
}

impl Sample {
    pub fn new(t: Timestamp, v: f64) -> Self {
        Sample { t, v }
    }

    pub fn is_stale(&self) -> bool {
        is_stale_nan(self.v)
    }
}

/// Equality is bitwise on the value so that NaN == NaN and the stale marker differs from NaN.
impl PartialEq for Sample {
    fn eq(&self, other: &Self) -> bool {
        self.t == other.t && self.v.to_bits() == other.v.to_bits()
    }
}

/// Milliseconds since the epoch for a `SystemTime` (saturating outside i64's range).
pub fn timestamp_from_system_time(t: std::time::SystemTime) -> Timestamp {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// The current time in milliseconds.
pub fn now_ms() -> Timestamp {
    timestamp_from_system_time(std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_marker_is_not_an_ordinary_nan() {
        assert!(is_stale_nan(stale_nan()));
        assert!(stale_nan().is_nan());
        assert!(!is_stale_nan(f64::NAN));
        assert!(!is_stale_nan(f64::from_bits(NORMAL_NAN_BITS)));
        assert_ne!(Sample::new(1, stale_nan()), Sample::new(1, f64::NAN));
        assert_eq!(Sample::new(1, f64::NAN), Sample::new(1, f64::NAN));
        // Arithmetic on the marker must not be mistaken for the marker: the bits change.
        let sum = stale_nan() + 1.0;
        assert!(sum.is_nan());
    }

    #[test]
    fn epoch_conversion() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1500);
        assert_eq!(timestamp_from_system_time(t), 1500);
        let before = std::time::UNIX_EPOCH - std::time::Duration::from_millis(20);
        assert_eq!(timestamp_from_system_time(before), -20);
    }
}
