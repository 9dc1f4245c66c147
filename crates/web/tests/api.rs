//! The HTTP API through the router, over an in-memory store: exact JSON bodies for each result
//! type, Prometheus' error shapes and codes, metadata endpoints, `/federate`, and the
//! remote-write receiver's accept and reject paths.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use model::labels::Labels;
use std::sync::Arc;
use storage::memory::MemStorage;
use storage::{Appendable, Queryable, Value};
use tokio::sync::mpsc;
use tower::ServiceExt;
use web::api::{ApiOptions, ApiState, ApiStorage, HeadSummary};
use web::{SelfMetrics, WebOptions, WebState};

struct Mem(MemStorage);

impl Queryable for Mem {
    fn querier(
        &self,
        mint: i64,
        maxt: i64,
    ) -> Result<Box<dyn storage::Querier>, storage::StorageError> {
        self.0.querier(mint, maxt)
    }
}
impl Appendable for Mem {
    fn appender(&self) -> Box<dyn storage::Appender> {
        self.0.appender()
    }
}
impl storage::ExemplarQueryable for Mem {
    fn select_exemplars(
        &self,
        start: i64,
        end: i64,
        matcher_sets: &[Vec<model::matcher::Matcher>],
    ) -> Result<Vec<storage::ExemplarQueryResult>, storage::StorageError> {
        self.0.select_exemplars(start, end, matcher_sets)
    }
}
impl ApiStorage for Mem {
    fn head_summary(&self) -> HeadSummary {
        HeadSummary::default()
    }
}

fn app(receiver: bool) -> (axum::Router, MemStorage) {
    let (r, mem, _) = app_with_api(receiver);
    (r, mem)
}

fn app_with_api(receiver: bool) -> (axum::Router, MemStorage, Arc<ApiState>) {
    let mem = MemStorage::new();
    for (job, v) in [("a", 1.0), ("b", 2.5)] {
        let l = Labels::from_static(&[("__name__", "up"), ("job", job)]);
        mem.insert_samples(
            &l,
            (0..10).map(|i| (i * 15_000, Value::Float(v + i as f64))),
        );
    }
    let api = ApiState::new(
        promql::engine::Engine::default(),
        ApiOptions {
            external_labels: Labels::from_static(&[("cluster", "c1")]),
            remote_write_receiver: receiver,
            flags: vec![("query.timeout".into(), "2m".into())],
        },
    );
    api.set_storage(Arc::new(Mem(mem.clone())));
    let (tx, _rx) = mpsc::channel(1);
    let state = WebState::new(
        WebOptions {
            enable_lifecycle: false,
        },
        tx,
        Arc::new(SelfMetrics::new()),
        api.clone(),
    );
    (web::router(state), mem, api)
}

async fn call(r: &axum::Router, req: Request<Body>) -> (StatusCode, String) {
    let resp = r.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).to_string())
}

async fn get(r: &axum::Router, uri: &str) -> (StatusCode, String) {
    call(r, Request::get(uri).body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn instant_and_range_queries_render_like_prometheus() {
    let (r, _) = app(false);
    let (code, body) = get(&r, "/api/v1/query?query=up&time=30.5").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a"},"value":[30.500,"3"]},{"metric":{"__name__":"up","job":"b"},"value":[30.500,"4.5"]}]}}"#
    );
    let (_, body) = get(&r, "/api/v1/query?query=1%2B1&time=7").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"scalar","result":[7,"2"]}}"#
    );
    let (_, body) = get(&r, "/api/v1/query?query=%22x%22&time=7").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"string","result":[7,"x"]}}"#
    );
    let (_, body) = get(
        &r,
        "/api/v1/query_range?query=sum(up)&start=0&end=30&step=15",
    )
    .await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[0,"3.5"],[15,"5.5"],[30,"7.5"]]}]}}"#
    );
    // POST form bodies work the same.
    let req = Request::post("/api/v1/query")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("query=count(up)&time=30"))
        .unwrap();
    let (code, body) = call(&r, req).await;
    assert_eq!(code, StatusCode::OK);
    assert!(body.contains(r#""value":[30,"2"]"#), "{body}");
    // Annotations come back with their positions.
    let (_, body) = get(&r, "/api/v1/query?query=rate(up[1m])&time=60").await;
    assert!(body.contains(r#""infos":["PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"up\" (1:6)"]"#), "{body}");
}

#[tokio::test]
async fn errors_have_prometheus_shape_and_codes() {
    let (r, _) = app(false);
    let (code, body) = get(&r, "/api/v1/query?query=sum(").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        body.starts_with(r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error"#),
        "{body}"
    );
    let (code, body) = get(&r, "/api/v1/query?query=up&time=yesterday").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"time\": cannot parse \"yesterday\" to a valid timestamp"}"#
    );
    let (code, body) = get(&r, "/api/v1/query_range?query=up&start=10&end=0&step=1").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(body.contains("end timestamp must not be before start time"));
    let (code, body) = get(&r, "/api/v1/query_range?query=up&start=0&end=100000&step=1").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(body.contains("exceeded maximum resolution of 11,000 points"));
    let (code, body) = get(
        &r,
        "/api/v1/query?query=up%20%2B%20on(__name__)%20up&time=30",
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains(r#""errorType":"execution""#));
    let (code, body) = get(&r, "/api/v1/series").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(body.contains("no match[] parameter provided"));
}

#[tokio::test]
async fn metadata_endpoints() {
    let (r, _) = app(false);
    let (_, body) = get(
        &r,
        "/api/v1/series?match[]=up&match[]=up%7Bjob%3D%22a%22%7D",
    )
    .await;
    assert_eq!(
        body,
        r#"{"status":"success","data":[{"__name__":"up","job":"a"},{"__name__":"up","job":"b"}]}"#
    );
    let (_, body) = get(&r, "/api/v1/labels").await;
    assert_eq!(body, r#"{"status":"success","data":["__name__","job"]}"#);
    let (_, body) = get(&r, "/api/v1/label/job/values").await;
    assert_eq!(body, r#"{"status":"success","data":["a","b"]}"#);
    let (_, body) = get(&r, "/api/v1/label/job/values?limit=1").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":["a"],"warnings":["results truncated due to limit"]}"#
    );
    let (_, body) = get(&r, "/api/v1/status/flags").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"query.timeout":"2m"}}"#
    );
    let (_, body) = get(&r, "/api/v1/format_query?query=sum(rate(x%5B5m%5D))by(job)").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":"sum by (job) (rate(x[5m]))"}"#
    );
}

#[tokio::test]
async fn federate_adds_external_labels_and_type_lines() {
    let (r, mem) = app(false);
    // Recent samples (federation looks back 5 minutes from now).
    let now = model::sample::now_ms();
    let l = Labels::from_static(&[("__name__", "node_load1"), ("instance", "x")]);
    mem.insert_samples(&l, [(now - 1000, Value::Float(0.5))]);
    let stale = Labels::from_static(&[("__name__", "node_load1"), ("instance", "gone")]);
    mem.insert_samples(
        &stale,
        [
            (now - 2000, Value::Float(1.0)),
            (now - 1000, Value::Float(model::sample::stale_nan())),
        ],
    );
    let (code, body) = get(&r, "/federate?match[]=node_load1").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        body,
        format!(
            "# TYPE node_load1 untyped\nnode_load1{{cluster=\"c1\",instance=\"x\"}} 0.5 {}\n",
            now - 1000
        )
    );
    let (code, _) = get(&r, "/federate").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn federate_streams_gzip_and_deduplicates_overlapping_selectors() {
    use std::io::Read;
    let (r, mem, r_state) = app_with_api(false);
    let now = model::sample::now_ms();
    // Enough series for several 64 KiB pieces.
    for i in 0..5000 {
        let inst = format!("host-{i:05}");
        let l =
            Labels::from_pairs([("__name__", "req_total"), ("instance", inst.as_str())]).unwrap();
        mem.insert_samples(&l, [(now - 1000, Value::Float(i as f64))]);
    }
    let plain = get(
        &r,
        "/federate?match[]=req_total&match[]=%7Binstance%3D%22host-00001%22%7D",
    )
    .await;
    assert_eq!(plain.0, StatusCode::OK);
    assert_eq!(plain.1.matches("# TYPE req_total untyped").count(), 1);
    assert_eq!(plain.1.lines().count(), 5001, "each series once");
    assert!(plain.1.contains(&format!(
        "req_total{{cluster=\"c1\",instance=\"host-04999\"}} 4999 {}\n",
        now - 1000
    )));

    let req = Request::get("/federate?match[]=req_total")
        .header("Accept-Encoding", "deflate, gzip;q=0.9")
        .body(Body::empty())
        .unwrap();
    let resp = r.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.headers().get("content-encoding").unwrap(), "gzip");
    let zipped = axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .unwrap();
    assert!(
        zipped.len() * 4 < plain.1.len(),
        "{} compressed bytes",
        zipped.len()
    );
    let mut text = String::new();
    flate2::read::GzDecoder::new(&zipped[..])
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, plain.1);

    // A cap below the number of matching series refuses the request with a clear error.
    r_state.set_federate_max_series(4999);
    let (code, body) = get(&r, "/federate?match[]=req_total").await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("more than 4999 series"), "{body}");
    r_state.set_federate_max_series(5000);
    assert_eq!(
        get(&r, "/federate?match[]=req_total").await.0,
        StatusCode::OK
    );

    // gzip;q=0 means "not gzip".
    let req = Request::get("/federate?match[]=req_total")
        .header("Accept-Encoding", "gzip;q=0")
        .body(Body::empty())
        .unwrap();
    let resp = r.clone().oneshot(req).await.unwrap();
    assert!(resp.headers().get("content-encoding").is_none());
}

#[tokio::test]
async fn remote_read_samples_and_streamed_chunks() {
    use remote::proto::{LabelMatcher, Query, ReadRequest, ReadResponse};
    let (r, mem) = app(false);
    // 300 samples: three XOR chunks in the streamed answer.
    let l = Labels::from_static(&[("__name__", "big"), ("job", "x")]);
    mem.insert_samples(
        &l,
        (0..300).map(|i| (i * 1000, Value::Float(i as f64 * 0.5))),
    );
    let post = |types: Vec<i32>, matchers: Vec<LabelMatcher>| {
        let body = remote::read::encode_read_request(&ReadRequest {
            queries: vec![Query {
                start_timestamp_ms: 0,
                end_timestamp_ms: 299_000,
                matchers,
                hints: None,
            }],
            accepted_response_types: types,
        });
        Request::post("/api/v1/read")
            .body(Body::from(body))
            .unwrap()
    };
    let eq = |name: &str, value: &str| LabelMatcher {
        r#type: 0,
        name: name.into(),
        value: value.into(),
    };
    // Samples (no type list): external labels added, the matcher on `cluster="c1"` dropped.
    let resp = r
        .clone()
        .oneshot(post(
            vec![],
            vec![eq("__name__", "big"), eq("cluster", "c1")],
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers().get("content-encoding").unwrap(), "snappy");
    let raw = axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .unwrap();
    let raw = snap::raw::Decoder::new().decompress_vec(&raw).unwrap();
    let answer = <ReadResponse as prost::Message>::decode(raw.as_slice()).unwrap();
    let series = &answer.results[0].timeseries;
    assert_eq!(series.len(), 1);
    let names: Vec<_> = series[0]
        .labels
        .iter()
        .map(|l| format!("{}={}", l.name, l.value))
        .collect();
    assert_eq!(names, ["__name__=big", "cluster=c1", "job=x"]);
    assert_eq!(series[0].samples.len(), 300);
    assert_eq!(series[0].samples[299].value, 149.5);

    // Streamed chunks.
    let resp = r
        .clone()
        .oneshot(post(vec![1, 0], vec![eq("__name__", "big")]))
        .await
        .unwrap();
    assert_eq!(
        resp.headers().get("content-type").unwrap(),
        remote::read::STREAMED_CONTENT_TYPE
    );
    let raw = axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .unwrap();
    let frames = remote::read::read_frames(&raw).unwrap();
    let chunks: Vec<_> = frames
        .iter()
        .flat_map(|f| f.chunked_series.iter().flat_map(|s| s.chunks.iter()))
        .collect();
    assert_eq!(chunks.len(), 3);
    let mut samples = Vec::new();
    for c in &chunks {
        let decoded = tsdb::chunkenc::decode_all(&c.data).unwrap();
        assert_eq!(
            (c.min_time_ms, c.max_time_ms),
            (decoded[0].0, decoded[decoded.len() - 1].0)
        );
        samples.extend(decoded);
    }
    assert_eq!(samples.len(), 300);
    assert_eq!(samples[150], (150_000, 75.0));

    // Bad input: garbage body, a query without matchers, an invalid regex.
    let resp = r
        .clone()
        .oneshot(
            Request::post("/api/v1/read")
                .body(Body::from("junk"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = r.clone().oneshot(post(vec![], vec![])).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let bad_re = LabelMatcher {
        r#type: 2,
        name: "job".into(),
        value: "(".into(),
    };
    let resp = r.clone().oneshot(post(vec![], vec![bad_re])).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn http_requests_are_counted_by_route_under_prometheus_names() {
    let (r, _) = app(false);
    for _ in 0..3 {
        assert_eq!(get(&r, "/api/v1/query?query=up").await.0, StatusCode::OK);
    }
    assert_eq!(get(&r, "/api/v1/label/job/values").await.0, StatusCode::OK);
    assert_eq!(
        get(&r, "/api/v1/query?query=(").await.0,
        StatusCode::BAD_REQUEST
    );
    let (_, text) = get(&r, "/metrics").await;
    for line in [
        r#"prometheus_http_requests_total{code="200",handler="/api/v1/query"} 3"#,
        r#"prometheus_http_requests_total{code="400",handler="/api/v1/query"} 1"#,
        r#"prometheus_http_requests_total{code="200",handler="/api/v1/label/{name}/values"} 1"#,
        r#"prometheus_http_request_duration_seconds_count{handler="/api/v1/query"} 4"#,
        r#"prometheus_http_request_duration_seconds_bucket{handler="/api/v1/query",le="+Inf"} 4"#,
        "# TYPE prometheus_http_request_duration_seconds histogram",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
}

#[tokio::test]
async fn remote_write_2_0_receiver() {
    use remote::proto_v2::{Opaque, Request as V2, Sample, TimeSeries};
    let (r, _) = app(true);
    let symbols: Vec<String> = ["", "__name__", "v2_metric", "job", "x"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let series = |refs: Vec<u32>, samples: &[(i64, f64)], histograms: usize| TimeSeries {
        labels_refs: refs,
        samples: samples
            .iter()
            .map(|(t, v)| Sample {
                value: *v,
                timestamp: *t,
            })
            .collect(),
        histograms: vec![Opaque {}; histograms],
        ..Default::default()
    };
    let send = |timeseries: Vec<TimeSeries>| {
        let raw = prost::Message::encode_to_vec(&V2 {
            symbols: symbols.clone(),
            timeseries,
        });
        let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
        let r = r.clone();
        async move {
            let req = Request::post("/api/v1/write")
                .header("content-type", remote::proto_v2::CONTENT_TYPE)
                .header("content-encoding", "snappy")
                .header("x-prometheus-remote-write-version", "2.0.0")
                .body(Body::from(body))
                .unwrap();
            r.oneshot(req).await.unwrap()
        }
    };
    let resp = send(vec![series(
        vec![1, 2, 3, 4],
        &[(1000, 1.5), (2000, 2.5)],
        0,
    )])
    .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let h = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    assert_eq!(
        h("x-prometheus-remote-write-samples-written").as_deref(),
        Some("2")
    );
    assert_eq!(
        h("x-prometheus-remote-write-histograms-written").as_deref(),
        Some("0")
    );
    let (_, body) = get(&r, "/api/v1/query?query=v2_metric&time=2").await;
    assert!(
        body.contains(r#""metric":{"__name__":"v2_metric","job":"x"},"value":[2,"2.5"]"#),
        "{body}"
    );
    // A reference outside the symbol table, an odd number of references, a histogram.
    for bad in [
        series(vec![1, 9], &[(3000, 1.0)], 0),
        series(vec![1, 2, 3], &[(3000, 1.0)], 0),
        series(vec![1, 2, 3, 4], &[(3000, 1.0)], 1),
    ] {
        let resp = send(vec![bad]).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    }
    let (_, body) = get(
        &r,
        "/api/v1/query?query=count_over_time(v2_metric[1h])&time=3600",
    )
    .await;
    assert!(
        body.contains(r#""2"]"#),
        "nothing of the refused requests was kept: {body}"
    );
    // An unknown protobuf message is refused as an unsupported media type.
    let req = Request::post("/api/v1/write")
        .header(
            "content-type",
            "application/x-protobuf;proto=io.prometheus.write.v3.Request",
        )
        .body(Body::from("x"))
        .unwrap();
    assert_eq!(
        r.clone().oneshot(req).await.unwrap().status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
}

#[tokio::test]
async fn federate_stream_types_each_family_once() {
    let (r, mem) = app(false);
    let now = model::sample::now_ms();
    // `A` sorts before `__name__`, so the storage's label order interleaves the families.
    for (labels, v) in [
        (vec![("A", "1"), ("__name__", "zz_metric")], 1.0),
        (vec![("__name__", "aa_metric"), ("x", "1")], 2.0),
        (vec![("__name__", "zz_metric"), ("x", "2")], 3.0),
    ] {
        let l = Labels::from_pairs(labels).unwrap();
        mem.insert_samples(&l, [(now - 1000, Value::Float(v))]);
    }
    let (code, body) = get(&r, "/federate?match[]=%7B__name__%3D~%22.%2B_metric%22%7D").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        body.matches("# TYPE zz_metric untyped").count(),
        1,
        "{body}"
    );
    assert_eq!(
        body.matches("# TYPE aa_metric untyped").count(),
        1,
        "{body}"
    );
    assert_eq!(
        body.lines().filter(|l| !l.starts_with('#')).count(),
        3,
        "{body}"
    );
}

/// One series for a write request: its label pairs and its (timestamp ms, value) samples.
type TestSeries<'a> = (&'a [(&'a str, &'a str)], &'a [(i64, f64)]);

fn write_body(series: &[TestSeries<'_>]) -> Vec<u8> {
    let req = remote::proto::WriteRequest {
        timeseries: series
            .iter()
            .map(|(labels, samples)| remote::proto::TimeSeries {
                labels: labels
                    .iter()
                    .map(|(n, v)| remote::proto::Label {
                        name: n.to_string(),
                        value: v.to_string(),
                    })
                    .collect(),
                samples: samples
                    .iter()
                    .map(|(t, v)| remote::proto::Sample {
                        value: *v,
                        timestamp: *t,
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        metadata: vec![],
    };
    remote::encode_write_request(&req)
}

async fn post_write(r: &axum::Router, body: Vec<u8>, content_type: &str) -> (StatusCode, String) {
    let req = Request::post("/api/v1/write")
        .header("content-type", content_type)
        .header("content-encoding", "snappy")
        .body(Body::from(body))
        .unwrap();
    call(r, req).await
}

#[tokio::test]
async fn remote_write_receiver() {
    let pb = "application/x-protobuf";
    let (disabled, _) = app(false);
    let (code, _) = post_write(&disabled, write_body(&[]), pb).await;
    assert_eq!(code, StatusCode::NOT_FOUND);

    let (r, _) = app(true);
    let good: &[(&str, &str)] = &[("__name__", "rw_metric"), ("job", "x")];
    let (code, body) = post_write(&r, write_body(&[(good, &[(1000, 1.0), (2000, 2.0)])]), pb).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    let (_, body) = get(&r, "/api/v1/query?query=rw_metric&time=2").await;
    assert!(body.contains(r#""value":[2,"2"]"#), "{body}");

    // Bad input is 400, never 500, and nothing of the request is stored.
    let dup: &[(&str, &str)] = &[("__name__", "m"), ("a", "1"), ("a", "2")];
    let (code, _) = post_write(
        &r,
        write_body(&[(good, &[(3000, 3.0)]), (dup, &[(1000, 1.0)])]),
        pb,
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    let (code, _) = post_write(&r, write_body(&[(&[], &[(1000, 1.0)])]), pb).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    let (code, body) = post_write(&r, write_body(&[(good, &[(1500, 9.0)])]), pb).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(body.contains("out of order sample"), "{body}");
    let future = model::sample::now_ms() + 3_600_000;
    let (code, body) = post_write(&r, write_body(&[(good, &[(future, 1.0)])]), pb).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(body.contains("too far in the future"), "{body}");
    let (_, body) = get(&r, "/api/v1/query?query=rw_metric&time=3").await;
    assert!(
        body.contains(r#""value":[3,"2"]"#),
        "the rejected request left nothing behind: {body}"
    );

    // Wrong content type, garbage, and a decompression bomb.
    let (code, _) = post_write(&r, write_body(&[]), "application/json").await;
    assert_eq!(code, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (code, _) = post_write(&r, b"garbage".to_vec(), pb).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    let mut bomb = Vec::new();
    let mut n: u64 = 1 << 30;
    while n >= 0x80 {
        bomb.push((n as u8) | 0x80);
        n >>= 7;
    }
    bomb.push(n as u8);
    bomb.extend_from_slice(&[0; 16]);
    let (code, body) = post_write(&r, bomb, pb).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(body.contains("exceeds the limit"), "{body}");
}

/// Exemplars and metadata through the 1.0 receiver, then `query_exemplars` and `metadata`.
#[tokio::test]
async fn exemplars_and_received_metadata() {
    use remote::proto::{Exemplar, Label, MetricMetadata, Sample, TimeSeries, WriteRequest};
    let (r, _) = app(true);
    let label = |n: &str, v: &str| Label {
        name: n.into(),
        value: v.into(),
    };
    let ex = |trace: &str, value: f64, timestamp: i64| Exemplar {
        labels: vec![label("trace_id", trace)],
        value,
        timestamp,
    };
    let req = WriteRequest {
        timeseries: vec![
            TimeSeries {
                labels: vec![label("__name__", "req_total"), label("job", "a")],
                samples: vec![Sample {
                    value: 1.0,
                    timestamp: 1_000,
                }],
                exemplars: vec![ex("t1", 0.5, 1_000), ex("t2", 1e-7, 1_500)],
                ..Default::default()
            },
            // An exemplar-only entry for an existing series, one for an unknown series (not
            // stored, the request still succeeds) and an out-of-order one (ignored too).
            TimeSeries {
                labels: vec![label("__name__", "req_total"), label("job", "a")],
                exemplars: vec![ex("t3", 2.0, 2_000), ex("old", 1.0, 10)],
                ..Default::default()
            },
            TimeSeries {
                labels: vec![label("__name__", "nothing"), label("job", "a")],
                exemplars: vec![ex("lost", 1.0, 2_000)],
                ..Default::default()
            },
        ],
        metadata: vec![
            MetricMetadata {
                r#type: 1,
                metric_family_name: "req".into(),
                help: "Requests \"served\".".into(),
                unit: "requests".into(),
            },
            MetricMetadata {
                r#type: 2,
                metric_family_name: "temp".into(),
                help: String::new(),
                unit: String::new(),
            },
            MetricMetadata {
                r#type: 99,
                metric_family_name: "bogus".into(),
                help: String::new(),
                unit: String::new(),
            },
        ],
    };
    let (code, body) = post_write(
        &r,
        remote::encode_write_request(&req),
        "application/x-protobuf",
    )
    .await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");

    let (code, body) = get(&r, "/api/v1/query_exemplars?query=req_total").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        body,
        r#"{"status":"success","data":[{"seriesLabels":{"__name__":"req_total","job":"a"},"exemplars":[{"labels":{"trace_id":"t1"},"value":"0.5","timestamp":1},{"labels":{"trace_id":"t2"},"value":"1e-07","timestamp":1.500},{"labels":{"trace_id":"t3"},"value":"2","timestamp":2}]}]}"#
    );
    // Selectors anywhere in the query; the time range cuts.
    let (_, body) = get(
        &r,
        "/api/v1/query_exemplars?query=sum(rate(req_total%5B5m%5D))%20%2B%20nothing&start=1.2&end=1.9",
    )
    .await;
    assert_eq!(
        body,
        r#"{"status":"success","data":[{"seriesLabels":{"__name__":"req_total","job":"a"},"exemplars":[{"labels":{"trace_id":"t2"},"value":"1e-07","timestamp":1.500}]}]}"#
    );
    let (_, body) = get(&r, "/api/v1/query_exemplars?query=nothing").await;
    assert_eq!(body, r#"{"status":"success","data":[]}"#);
    // No selector: 204 without a body, as Prometheus.
    let (code, body) = get(&r, "/api/v1/query_exemplars?query=1%2B1").await;
    assert_eq!((code, body.as_str()), (StatusCode::NO_CONTENT, ""));
    for (uri, err) in [
        (
            "/api/v1/query_exemplars",
            "1:1: parse error: no expression found in input",
        ),
        (
            "/api/v1/query_exemplars?query=up&start=10&end=5",
            "end timestamp must not be before start timestamp",
        ),
        (
            "/api/v1/query_exemplars?query=up&start=abc",
            "invalid parameter \\\"start\\\": Invalid time value for 'start': cannot parse \\\"abc\\\" to a valid timestamp",
        ),
    ] {
        let (code, body) = get(&r, uri).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(
            body,
            format!(r#"{{"status":"error","errorType":"bad_data","error":"{err}"}}"#),
            "{uri}"
        );
    }
    // POST form too.
    let req = Request::post("/api/v1/query_exemplars")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("query=req_total&start=1.9"))
        .unwrap();
    let (code, body) = call(&r, req).await;
    assert_eq!(code, StatusCode::OK);
    assert!(body.contains("t3") && !body.contains("t1"), "{body}");

    // Received metadata shows in /api/v1/metadata (no scrape targets here).
    let (_, body) = get(&r, "/api/v1/metadata").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"req":[{"type":"counter","help":"Requests \"served\".","unit":"requests"}],"temp":[{"type":"gauge","help":"","unit":""}]}}"#
    );
    let (_, body) = get(&r, "/api/v1/metadata?metric=temp").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"temp":[{"type":"gauge","help":"","unit":""}]}}"#
    );
    let (_, body) = get(&r, "/api/v1/metadata?limit=1").await;
    assert!(
        body.contains(r#""req""#) && !body.contains("temp"),
        "{body}"
    );
    let (_, body) = get(&r, "/api/v1/metadata?limit=0").await;
    assert_eq!(body, r#"{"status":"success","data":{}}"#);
    for (uri, err) in [
        ("/api/v1/metadata?limit=x", "limit must be a number"),
        (
            "/api/v1/metadata?limit_per_metric=1.5",
            "limit_per_metric must be a number",
        ),
        ("/api/v1/targets/metadata?limit=x", "limit must be a number"),
        (
            "/api/v1/targets/metadata?match_target=%7B",
            "invalid parameter \\\"match_target\\\": 1:2: parse error: unexpected end of input inside braces",
        ),
    ] {
        let (code, body) = get(&r, uri).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(
            body,
            format!(r#"{{"status":"error","errorType":"bad_data","error":"{err}"}}"#),
            "{uri}"
        );
    }
    // No scrape manager: no targets, no target metadata.
    let (_, body) = get(&r, "/api/v1/targets/metadata").await;
    assert_eq!(body, r#"{"status":"success","data":[]}"#);
}

/// Remote write 2.0 exemplars are stored and counted in the response header; series metadata
/// is kept under the family name.
#[tokio::test]
async fn remote_write_2_0_exemplars_and_metadata() {
    use remote::proto_v2::{Exemplar, Metadata, Request as V2, Sample, TimeSeries};
    let (r, _) = app(true);
    let symbols: Vec<String> = [
        "",
        "__name__",
        "lat_bucket",
        "le",
        "1",
        "trace_id",
        "abc",
        "Latency.",
        "seconds",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let raw = prost::Message::encode_to_vec(&V2 {
        symbols,
        timeseries: vec![TimeSeries {
            labels_refs: vec![1, 2, 3, 4],
            samples: vec![Sample {
                value: 3.0,
                timestamp: 5_000,
            }],
            exemplars: vec![
                Exemplar {
                    labels_refs: vec![5, 6],
                    value: 0.7,
                    timestamp: 4_000,
                },
                // Older than the one before: refused, not counted, request still fine.
                Exemplar {
                    labels_refs: vec![5, 6],
                    value: 0.7,
                    timestamp: 3_000,
                },
            ],
            metadata: Some(Metadata {
                r#type: 3,
                help_ref: 7,
                unit_ref: 8,
            }),
            ..Default::default()
        }],
    });
    let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
    let req = Request::post("/api/v1/write")
        .header("content-type", remote::proto_v2::CONTENT_TYPE)
        .header("content-encoding", "snappy")
        .body(Body::from(body))
        .unwrap();
    let resp = r.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        resp.headers()
            .get("x-prometheus-remote-write-exemplars-written")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let (_, body) = get(&r, "/api/v1/query_exemplars?query=lat_bucket").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":[{"seriesLabels":{"__name__":"lat_bucket","le":"1"},"exemplars":[{"labels":{"trace_id":"abc"},"value":"0.7","timestamp":4}]}]}"#
    );
    let (_, body) = get(&r, "/api/v1/metadata").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"lat":[{"type":"histogram","help":"Latency.","unit":"seconds"}]}}"#
    );
}
