//! Native histogram values (the data, not yet the arithmetic).
//!
//! A sample is a float or a histogram; this is the histogram half, laid out as Prometheus'
//! float histogram: an exponential schema (or -53 for custom bucket bounds), a zero bucket, and
//! positive and negative buckets stored sparsely as spans of consecutive bucket indexes with
//! one count per bucket. Storage and the query engine carry these values; the operations on
//! them arrive with native-histogram support in the engine.

/// A run of `length` consecutive buckets starting `offset` indexes after the previous span's end
/// (the first span's offset is the absolute index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub offset: i32,
    pub length: u32,
}

/// Whether this histogram follows a counter reset, as recorded by the producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CounterResetHint {
    #[default]
    Unknown,
    CounterReset,
    NotCounterReset,
    /// A gauge histogram: counter resets do not apply.
    Gauge,
}

/// A histogram with float counts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FloatHistogram {
    pub counter_reset_hint: CounterResetHint,
    /// Resolution: bucket boundaries are powers of `2^(2^-schema)`; -53 means `custom_values`.
    pub schema: i32,
    pub zero_threshold: f64,
    pub zero_count: f64,
    pub count: f64,
    pub sum: f64,
    pub positive_spans: Vec<Span>,
    pub negative_spans: Vec<Span>,
    pub positive_buckets: Vec<f64>,
    pub negative_buckets: Vec<f64>,
    /// Upper bounds of the buckets when `schema` is -53 (custom buckets).
    pub custom_values: Vec<f64>,
}

/// The schema number of histograms with custom bucket bounds.
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;

impl FloatHistogram {
    pub fn uses_custom_buckets(&self) -> bool {
        self.schema == CUSTOM_BUCKETS_SCHEMA
    }
}
