//! The remote-write 2.0 message `io.prometheus.write.v2.Request` (symbols, series label
//! references, float samples, exemplars and metadata; histograms only counted), as prost
//! definitions for decoding (the receiver, tests). Field numbers follow Prometheus' `prompb/io/prometheus/write/v2`;
//! 1–3 of the request are reserved so that a 1.0 decoder fails on it instead of misreading.
//! The sender encodes by hand (`encode::V2Builder`).

/// `io.prometheus.write.v2.Request`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Request {
    /// String table; index 0 is always the empty string.
    #[prost(string, repeated, tag = "4")]
    pub symbols: Vec<String>,
    #[prost(message, repeated, tag = "5")]
    pub timeseries: Vec<TimeSeries>,
}

/// `io.prometheus.write.v2.TimeSeries` (histograms only counted).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Name/value pairs of indexes into `Request::symbols`.
    #[prost(uint32, repeated, tag = "1")]
    pub labels_refs: Vec<u32>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Native histograms: only counted here (a receiver must not drop them unnoticed).
    #[prost(message, repeated, tag = "3")]
    pub histograms: Vec<Opaque>,
    #[prost(message, repeated, tag = "4")]
    pub exemplars: Vec<Exemplar>,
    #[prost(message, optional, tag = "5")]
    pub metadata: Option<Metadata>,
    #[prost(int64, tag = "6")]
    pub created_timestamp: i64,
}

/// `io.prometheus.write.v2.Exemplar`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    /// Name/value pairs of indexes into `Request::symbols`.
    #[prost(uint32, repeated, tag = "1")]
    pub labels_refs: Vec<u32>,
    #[prost(double, tag = "2")]
    pub value: f64,
    /// Milliseconds; 0 means "not set".
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// `io.prometheus.write.v2.Metadata`; the type uses the numbers of
/// `prometheus.MetricMetadata.MetricType` (0 is unspecified), help and unit are symbols.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Metadata {
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(uint32, tag = "3")]
    pub help_ref: u32,
    #[prost(uint32, tag = "4")]
    pub unit_ref: u32,
}

/// A message whose content is skipped (decoding keeps only that it was there).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Opaque {}

/// `io.prometheus.write.v2.Sample`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// The content type of a 2.0 request.
pub const CONTENT_TYPE: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request";
/// `X-Prometheus-Remote-Write-Version` of a 2.0 request.
pub const VERSION: &str = "2.0.0";
