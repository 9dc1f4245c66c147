//! The one list of every path the router serves, with a method each answers, for the test
//! that checks each of them refuses unauthenticated requests (`tests/auth_routes.rs`). That
//! test also reads this crate's sources and fails when a `.route(...)` path is missing here,
//! so a new route cannot be added without being checked.

/// (method, path as registered, a concrete path to request).
pub const ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/-/healthy", "/-/healthy"),
    ("GET", "/api/v1/parse_query", "/api/v1/parse_query?query=up"),
    ("GET", "/api/v1/status/config", "/api/v1/status/config"),
    ("POST", "/api/v1/read", "/api/v1/read"),
    (
        "POST",
        "/api/v1/admin/tsdb/delete_series",
        "/api/v1/admin/tsdb/delete_series?match[]=up",
    ),
    (
        "POST",
        "/api/v1/admin/tsdb/clean_tombstones",
        "/api/v1/admin/tsdb/clean_tombstones",
    ),
    (
        "POST",
        "/api/v1/admin/tsdb/snapshot",
        "/api/v1/admin/tsdb/snapshot",
    ),
    ("GET", "/-/ready", "/-/ready"),
    ("POST", "/-/reload", "/-/reload"),
    ("POST", "/-/quit", "/-/quit"),
    ("GET", "/metrics", "/metrics"),
    ("GET", "/api/v1/query", "/api/v1/query?query=1"),
    (
        "GET",
        "/api/v1/query_range",
        "/api/v1/query_range?query=1&start=0&end=1&step=1",
    ),
    (
        "GET",
        "/api/v1/query_exemplars",
        "/api/v1/query_exemplars?query=up",
    ),
    ("GET", "/api/v1/series", "/api/v1/series?match[]=up"),
    ("GET", "/api/v1/labels", "/api/v1/labels"),
    (
        "GET",
        "/api/v1/label/{name}/values",
        "/api/v1/label/job/values",
    ),
    (
        "POST",
        "/api/v1/format_query",
        "/api/v1/format_query?query=1",
    ),
    ("GET", "/api/v1/metadata", "/api/v1/metadata"),
    ("GET", "/api/v1/targets", "/api/v1/targets"),
    (
        "GET",
        "/api/v1/targets/metadata",
        "/api/v1/targets/metadata",
    ),
    ("GET", "/api/v1/rules", "/api/v1/rules"),
    ("GET", "/api/v1/alerts", "/api/v1/alerts"),
    ("GET", "/api/v1/alertmanagers", "/api/v1/alertmanagers"),
    (
        "GET",
        "/api/v1/status/buildinfo",
        "/api/v1/status/buildinfo",
    ),
    (
        "GET",
        "/api/v1/status/runtimeinfo",
        "/api/v1/status/runtimeinfo",
    ),
    ("GET", "/api/v1/status/flags", "/api/v1/status/flags"),
    ("GET", "/api/v1/status/tsdb", "/api/v1/status/tsdb"),
    (
        "GET",
        "/api/v1/status/walreplay",
        "/api/v1/status/walreplay",
    ),
    ("POST", "/api/v1/write", "/api/v1/write"),
    ("GET", "/federate", "/federate?match[]=up"),
];
