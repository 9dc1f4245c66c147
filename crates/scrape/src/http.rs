//! The HTTP side of a scrape: the client of a scrape job (an [`httpclient::HttpClient`] built
//! from its `HttpClientConfig`: TLS, authentication, proxy), and one scrape request as
//! Prometheus sends it (`Accept` from `scrape_protocols`, `Accept-Encoding`, `User-Agent`,
//! `X-Prometheus-Scrape-Timeout-Seconds`, auth and extra headers), with the body read under
//! `body_size_limit` (after gzip decompression) and the format picked from `Content-Type`
//! with Prometheus 3's rules for missing or unknown types.

use std::io::Read;
use std::time::Duration;

use config::{ScrapeConfig, ScrapeProtocol};
use httpclient::{HttpClient, error_chain};
use model::exposition::Format;

/// The error of a scrape whose body reached `body_size_limit` (Prometheus' wording).
pub const BODY_SIZE_LIMIT_EXCEEDED: &str = "body size limit exceeded";

/// The client of one scrape job and what every request of the job carries.
pub struct HttpScraper {
    client: HttpClient,
    accept: String,
    compression: bool,
    user_agent: String,
    body_size_limit: u64,
    fallback: Option<ScrapeProtocol>,
}

/// Reusable buffers of one scrape loop.
#[derive(Default)]
pub struct Buffers {
    /// The body as received (compressed when gzip).
    raw: Vec<u8>,
    /// The decompressed body (only used for gzip).
    inflated: Vec<u8>,
    /// True when the last body is in `inflated`.
    gzip: bool,
}

impl Buffers {
    /// The last body read.
    pub fn body(&self) -> &[u8] {
        if self.gzip { &self.inflated } else { &self.raw }
    }
}

/// The content type a protocol asks for in `Accept`.
fn protocol_media_type(protocol: ScrapeProtocol) -> &'static str {
    match protocol {
        ScrapeProtocol::PrometheusProto => {
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
        }
        ScrapeProtocol::PrometheusText0_0_4 => "text/plain;version=0.0.4",
        ScrapeProtocol::PrometheusText1_0_0 => "text/plain;version=1.0.0",
        ScrapeProtocol::OpenMetricsText0_0_1 => "application/openmetrics-text;version=0.0.1",
        ScrapeProtocol::OpenMetricsText1_0_0 => "application/openmetrics-text;version=1.0.0",
    }
}

/// Prometheus' `acceptHeader`: protocols in order with falling `q` weights, then `*/*`. The
/// protobuf format is left out: Meridian cannot parse it yet, so it must not ask for it.
pub fn accept_header(protocols: &[ScrapeProtocol], escaping: config::NameEscapingScheme) -> String {
    // Prometheus starts from (number of known protocols + 1).
    let mut weight = 6;
    let mut parts = Vec::new();
    for &protocol in protocols {
        if protocol == ScrapeProtocol::PrometheusProto {
            continue;
        }
        let mut part = protocol_media_type(protocol).to_owned();
        if matches!(
            protocol,
            ScrapeProtocol::PrometheusText1_0_0 | ScrapeProtocol::OpenMetricsText1_0_0
        ) {
            part.push_str(";escaping=");
            part.push_str(escaping.as_str());
        }
        part.push_str(&format!(";q=0.{weight}"));
        parts.push(part);
        weight -= 1;
    }
    parts.push(format!("*/*;q=0.{weight}"));
    parts.join(",")
}

fn protocol_format(protocol: ScrapeProtocol) -> Option<Format> {
    match protocol {
        ScrapeProtocol::PrometheusProto => None,
        ScrapeProtocol::PrometheusText0_0_4 | ScrapeProtocol::PrometheusText1_0_0 => {
            Some(Format::Text)
        }
        ScrapeProtocol::OpenMetricsText0_0_1 | ScrapeProtocol::OpenMetricsText1_0_0 => {
            Some(Format::OpenMetrics)
        }
    }
}

/// Prometheus 3's choice of parser from `Content-Type` (`textparse.New`): a missing,
/// unparsable or unknown type is an error unless `fallback_scrape_protocol` is set.
pub fn format_for(content_type: &str, fallback: Option<ScrapeProtocol>) -> Result<Format, String> {
    let fallback_format = || {
        fallback.map(|p| {
            protocol_format(p).ok_or_else(|| {
                "fallback_scrape_protocol PrometheusProto is not supported by Meridian yet"
                    .to_owned()
            })
        })
    };
    let media = content_type.split(';').next().unwrap_or("").trim();
    if content_type.trim().is_empty() {
        return fallback_format().unwrap_or_else(|| {
            Err("non-compliant scrape target sending blank Content-Type and no fallback_scrape_protocol specified for target".to_owned())
        });
    }
    match media.to_ascii_lowercase().as_str() {
        "application/openmetrics-text" => Ok(Format::OpenMetrics),
        "text/plain" => Ok(Format::Text),
        "application/vnd.google.protobuf" => {
            Err("the protobuf exposition format is not supported by Meridian yet".to_owned())
        }
        _ => fallback_format().unwrap_or_else(|| {
            Err(format!(
                "received unsupported Content-Type {content_type:?} and no fallback_scrape_protocol specified for target"
            ))
        }),
    }
}

impl HttpScraper {
    /// Builds the client of a scrape job. Errors name what in the config cannot be used.
    pub fn new(config: &ScrapeConfig, user_agent: &str) -> Result<HttpScraper, String> {
        let client = HttpClient::new(&config.http_client, user_agent)?;
        Ok(HttpScraper {
            client,
            accept: accept_header(&config.scrape_protocols, config.metric_name_escaping_scheme),
            compression: config.enable_compression,
            user_agent: user_agent.to_owned(),
            body_size_limit: config.body_size_limit,
            fallback: config.fallback_scrape_protocol,
        })
    }

    /// Scrapes `url` into `buffers`; the body's format on success. The whole exchange,
    /// body included, is bounded by `timeout`.
    pub async fn scrape(
        &self,
        url: &str,
        timeout: Duration,
        buffers: &mut Buffers,
    ) -> Result<Format, String> {
        match tokio::time::timeout(timeout, self.fetch(url, timeout, buffers)).await {
            Ok(result) => result,
            Err(_) => Err(format!("Get {url:?}: context deadline exceeded")),
        }
    }

    async fn fetch(
        &self,
        url: &str,
        timeout: Duration,
        buffers: &mut Buffers,
    ) -> Result<Format, String> {
        let request = self
            .client
            .request(reqwest::Method::GET, url)?
            .header(reqwest::header::ACCEPT, &self.accept)
            .header(
                reqwest::header::ACCEPT_ENCODING,
                if self.compression { "gzip" } else { "identity" },
            )
            .header(reqwest::header::USER_AGENT, &self.user_agent)
            .header("X-Prometheus-Scrape-Timeout-Seconds", seconds_text(timeout));
        let mut response = request
            .send()
            .await
            .map_err(|e| format!("Get {url:?}: {}", error_chain(&e)))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(format!("server returned HTTP status {}", response.status()));
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let content_type = header(reqwest::header::CONTENT_TYPE);
        let gzip = header(reqwest::header::CONTENT_ENCODING).eq_ignore_ascii_case("gzip");
        let limit = if self.body_size_limit == 0 {
            u64::MAX
        } else {
            self.body_size_limit
        };
        buffers.raw.clear();
        buffers.gzip = gzip;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("Get {url:?}: {}", error_chain(&e)))?
        {
            buffers.raw.extend_from_slice(&chunk);
            if buffers.raw.len() as u64 >= limit {
                return Err(BODY_SIZE_LIMIT_EXCEEDED.to_owned());
            }
        }
        if gzip {
            buffers.inflated.clear();
            let decoder = flate2::read::MultiGzDecoder::new(buffers.raw.as_slice());
            let read = decoder
                .take(limit)
                .read_to_end(&mut buffers.inflated)
                .map_err(|e| format!("error decompressing the body: {e}"))?;
            if read as u64 >= limit {
                return Err(BODY_SIZE_LIMIT_EXCEEDED.to_owned());
            }
        }
        format_for(&content_type, self.fallback)
    }
}

/// Go's `strconv.FormatFloat(seconds, 'f', -1, 64)`.
fn seconds_text(timeout: Duration) -> String {
    let seconds = timeout.as_secs_f64();
    let mut text = format!("{seconds}");
    if text.ends_with(".0") {
        text.truncate(text.len() - 2);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_header_matches_prometheus() {
        assert_eq!(
            accept_header(
                &ScrapeProtocol::DEFAULT,
                config::NameEscapingScheme::AllowUtf8
            ),
            "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
        );
    }

    #[test]
    fn content_types() {
        assert_eq!(
            format_for("text/plain; version=0.0.4; charset=utf-8", None),
            Ok(Format::Text)
        );
        assert_eq!(
            format_for("application/openmetrics-text; version=1.0.0", None),
            Ok(Format::OpenMetrics)
        );
        assert!(format_for("", None).is_err());
        assert!(format_for("application/json", None).is_err());
        assert_eq!(
            format_for("", Some(ScrapeProtocol::PrometheusText0_0_4)),
            Ok(Format::Text)
        );
        assert_eq!(
            format_for(
                "application/json",
                Some(ScrapeProtocol::OpenMetricsText1_0_0)
            ),
            Ok(Format::OpenMetrics)
        );
    }

    #[test]
    fn timeout_header_is_go_formatted() {
        assert_eq!(seconds_text(Duration::from_secs(10)), "10");
        assert_eq!(seconds_text(Duration::from_millis(1500)), "1.5");
    }
}
