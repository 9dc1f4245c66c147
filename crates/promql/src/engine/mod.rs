//! The PromQL evaluation engine: instant and range queries over any `storage::Queryable`,
//! with Prometheus 3.x semantics.
//!
//! Evaluation is range-first: every node of the tree is evaluated once over all the query's
//! steps (an instant query is a range of one step). A vector selector reads each of its series
//! once for the whole range and picks the sample for each step with a moving cursor; range
//! functions slide a window over that buffer; binary operators and aggregations then work
//! step by step on the per-step vectors. See `eval.rs` for the walk and the modules beside it
//! for the operators and functions.

mod aggregate;
mod binary;
mod eval;
mod functions;
mod histogram_fns;
mod histogram_range;
mod info;
mod types;

pub use types::{Annotation, AnnotationKind, QueryError, QueryResult, Sample, Series, Value};

use crate::{Expr, ParserOptions, parse_with_options};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration as StdDuration;
use storage::Queryable;

/// Engine settings (Prometheus' `--query.*` flags).
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (`--query.lookback-delta`), ms.
    pub lookback_delta: i64,
    /// Step of subqueries written without one (`x[5m:]`), ms: Prometheus uses the global
    /// evaluation interval.
    pub default_subquery_step: i64,
    /// Most samples a query may hold in memory at once (`--query.max-samples`).
    pub max_samples: usize,
    /// Wall-clock limit of one query (`--query.timeout`).
    pub timeout: StdDuration,
    /// Drop `__name__` at the end of evaluation instead of at each function or operator
    /// (Prometheus' `promql-delayed-name-removal` feature flag).
    pub delayed_name_removal: bool,
    /// Queries evaluated at once (`--query.max-concurrency`); more wait for a slot until their
    /// timeout.
    pub max_concurrency: usize,
    /// Parser feature switches.
    pub parser: ParserOptions,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta: 5 * 60 * 1000,
            default_subquery_step: 60 * 1000,
            max_samples: 50_000_000,
            timeout: StdDuration::from_secs(120),
            delayed_name_removal: false,
            max_concurrency: 20,
            parser: ParserOptions::default(),
        }
    }
}

/// Cancels a running query when set (the HTTP layer sets it when the client goes away).
pub type CancelFlag = Arc<AtomicBool>;

/// Counts running queries against `max_concurrency`.
#[derive(Debug, Default)]
struct Gate {
    active: Mutex<usize>,
    freed: Condvar,
}

/// A running query's slot; released on drop.
struct Slot<'g> {
    gate: &'g Gate,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut n = self.gate.active.lock().unwrap_or_else(|e| e.into_inner());
        *n = n.saturating_sub(1);
        self.gate.freed.notify_one();
    }
}

/// The engine. Cheap to clone: clones share the concurrency limit.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    opts: EngineOptions,
    gate: Arc<Gate>,
}

impl Engine {
    pub fn new(opts: EngineOptions) -> Engine {
        Engine {
            opts,
            gate: Arc::new(Gate::default()),
        }
    }

    /// Waits for a free evaluation slot, at most the query timeout.
    fn slot(&self) -> Result<Slot<'_>, QueryError> {
        let deadline = std::time::Instant::now() + self.opts.timeout;
        let mut n = self.gate.active.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= self.opts.max_concurrency.max(1) {
            let now = std::time::Instant::now();
            if now >= deadline {
                return Err(QueryError::Timeout("query queue"));
            }
            n = self
                .gate
                .freed
                .wait_timeout(n, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *n += 1;
        Ok(Slot { gate: &self.gate })
    }

    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// The same engine (sharing its concurrency limit) with another query timeout.
    pub fn with_timeout(&self, timeout: StdDuration) -> Engine {
        let mut opts = self.opts.clone();
        opts.timeout = timeout;
        Engine {
            opts,
            gate: self.gate.clone(),
        }
    }

    /// Parses `query` with the engine's parser options.
    pub fn parse(&self, query: &str) -> Result<Expr, QueryError> {
        parse_with_options(query, &self.opts.parser).map_err(QueryError::Parse)
    }

    /// Evaluates `query` at time `t` (ms).
    pub fn instant_query(
        &self,
        storage: &dyn Queryable,
        query: &str,
        t: i64,
    ) -> Result<QueryResult, QueryError> {
        let expr = self.parse(query)?;
        self.instant_query_expr(storage, &expr, t, None)
    }

    /// Evaluates `query` at every step from `start` to `end` (ms, inclusive).
    pub fn range_query(
        &self,
        storage: &dyn Queryable,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryResult, QueryError> {
        let expr = self.parse(query)?;
        self.range_query_expr(storage, &expr, start, end, step, None)
    }

    /// Evaluates a parsed expression at time `t`.
    pub fn instant_query_expr(
        &self,
        storage: &dyn Queryable,
        expr: &Expr,
        t: i64,
        cancel: Option<CancelFlag>,
    ) -> Result<QueryResult, QueryError> {
        let _slot = self.slot()?;
        eval::run(&self.opts, storage, expr, t, t, 0, true, cancel)
    }

    /// Evaluates a parsed expression over a range; the result is always a matrix (a scalar
    /// becomes one series with no labels).
    pub fn range_query_expr(
        &self,
        storage: &dyn Queryable,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
        cancel: Option<CancelFlag>,
    ) -> Result<QueryResult, QueryError> {
        if end < start {
            return Err(QueryError::BadData(
                "end timestamp must not be before start time".into(),
            ));
        }
        if step <= 0 {
            return Err(QueryError::BadData(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        let _slot = self.slot()?;
        eval::run(&self.opts, storage, expr, start, end, step, false, cancel)
    }
}
