//! Native histogram values and their arithmetic.
//!
//! A sample is a float or a histogram; this is the histogram half, laid out as Prometheus'
//! float histogram: an exponential schema (or -53 for custom bucket bounds), a zero bucket, and
//! positive and negative buckets stored sparsely as spans of consecutive bucket indexes with
//! one count per bucket.
//!
//! The operations follow Prometheus' `FloatHistogram`: bucket iteration with bounds, scaling,
//! addition and subtraction (reconciling schemas, zero thresholds and custom bounds, and
//! reporting counter-reset hint collisions), compaction, exact equality, counter-reset
//! detection and the test-script notation. Internally they work on `(index, count)` pairs in
//! index order, which keeps the span bookkeeping in two functions (`expand`, `collapse`).

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

/// Why two histograms cannot be combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HistogramError {
    /// One uses exponential buckets and the other custom bounds.
    #[error(
        "cannot apply this operation on histograms with a mix of exponential and custom bucket schemas"
    )]
    IncompatibleSchema,
}

/// What an addition or subtraction had to reconcile, for the caller's annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddOutcome {
    /// One operand said "counter reset" and the other "not a counter reset"; the result's
    /// hint became unknown.
    pub counter_reset_collision: bool,
    /// The operands had different custom bounds; both were mapped onto the bounds they share.
    pub custom_bounds_reconciled: bool,
}

/// One bucket with its bounds, as iterated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub lower: f64,
    pub upper: f64,
    pub lower_inclusive: bool,
    pub upper_inclusive: bool,
    pub count: f64,
    /// The bucket's index in its schema (0 for the zero bucket).
    pub index: i32,
}

/// The upper bound of exponential bucket `idx` (absolute value) in `schema`.
///
/// The last finite bucket ends at `f64::MAX` rather than at the next power, which would
/// overflow to +Inf: +Inf belongs to the bucket after it.
pub fn exponential_bound(idx: i32, schema: i32) -> f64 {
    if schema < 0 {
        let exp = i64::from(idx) << (-schema).min(62);
        if exp == 1024 {
            return f64::MAX;
        }
        return ldexp(1.0, exp);
    }
    let schema = schema.min(30);
    let frac_idx = idx & ((1 << schema) - 1);
    let frac = 0.5 * (f64::from(frac_idx) / f64::from(1u32 << schema)).exp2();
    let exp = i64::from(idx >> schema) + 1;
    if frac == 0.5 && exp == 1025 {
        return f64::MAX;
    }
    ldexp(frac, exp)
}

/// `frac * 2^exp` without intermediate overflow for large exponents.
fn ldexp(frac: f64, exp: i64) -> f64 {
    let mut v = frac;
    let mut e = exp.clamp(-2200, 2200);
    while e > 1000 {
        v *= 2f64.powi(1000);
        e -= 1000;
    }
    while e < -1000 {
        v *= 2f64.powi(-1000);
        e += 1000;
    }
    v * 2f64.powi(e as i32)
}

/// The upper bound of bucket `idx` in `schema` (custom `bounds` for schema -53).
fn bucket_bound(idx: i32, schema: i32, bounds: &[f64]) -> f64 {
    if schema == CUSTOM_BUCKETS_SCHEMA {
        if idx < 0 {
            return f64::NEG_INFINITY;
        }
        return bounds.get(idx as usize).copied().unwrap_or(f64::INFINITY);
    }
    exponential_bound(idx, schema)
}

/// The index a bucket of `origin` schema falls into at the coarser `target` schema.
fn target_index(idx: i32, origin: i32, target: i32) -> i32 {
    ((idx - 1) >> (origin - target).clamp(0, 31)) + 1
}

/// Buckets as `(index, count)` pairs in index order.
fn expand(spans: &[Span], buckets: &[f64]) -> Vec<(i32, f64)> {
    let mut out = Vec::with_capacity(buckets.len());
    let mut idx = 0i32;
    let mut it = buckets.iter();
    for (n, s) in spans.iter().enumerate() {
        idx = if n == 0 {
            s.offset
        } else {
            idx.saturating_add(s.offset)
        };
        for _ in 0..s.length {
            let Some(&c) = it.next() else { return out };
            out.push((idx, c));
            idx = idx.saturating_add(1);
        }
    }
    out
}

/// Spans and counts of `(index, count)` pairs in index order; consecutive indexes share a span.
fn collapse(pairs: &[(i32, f64)]) -> (Vec<Span>, Vec<f64>) {
    let mut spans: Vec<Span> = Vec::new();
    let mut buckets = Vec::with_capacity(pairs.len());
    let mut next = 0i32;
    for &(idx, c) in pairs {
        match spans.last_mut() {
            Some(last) if idx == next => last.length += 1,
            Some(_) => spans.push(Span {
                offset: idx - next,
                length: 1,
            }),
            None => spans.push(Span {
                offset: idx,
                length: 1,
            }),
        }
        buckets.push(c);
        next = idx + 1;
    }
    (spans, buckets)
}

/// Merges the buckets of `pairs` into the coarser `target` schema.
fn reduce_pairs(pairs: &[(i32, f64)], origin: i32, target: i32) -> Vec<(i32, f64)> {
    let mut out: Vec<(i32, f64)> = Vec::with_capacity(pairs.len());
    for &(idx, c) in pairs {
        let t = target_index(idx, origin, target);
        match out.last_mut() {
            Some(last) if last.0 == t => last.1 += c,
            _ => out.push((t, c)),
        }
    }
    out
}

/// Adds (or subtracts) `b` into `a`, both in index order; buckets of `b` whose upper bound
/// lies within the zero bucket (`skip_below`, exponential schemas) are left out.
fn add_pairs(
    a: &[(i32, f64)],
    b: &[(i32, f64)],
    negate: bool,
    schema: i32,
    skip_below: f64,
) -> Vec<(i32, f64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    let b: Vec<(i32, f64)> = b
        .iter()
        .filter(|(idx, _)| {
            schema == CUSTOM_BUCKETS_SCHEMA || exponential_bound(*idx, schema) > skip_below
        })
        .map(|&(idx, c)| (idx, if negate { -c } else { c }))
        .collect();
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.0 == y.0 => {
                out.push((x.0, x.1 + y.1));
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x.0 < y.0 => {
                out.push(*x);
                i += 1;
            }
            (Some(_), Some(y)) | (None, Some(y)) => {
                out.push(*y);
                j += 1;
            }
            (Some(x), None) => {
                out.push(*x);
                i += 1;
            }
            (None, None) => break,
        }
    }
    out
}

/// The bounds two custom-bucket layouts have in common.
fn intersect_bounds(a: &[f64], b: &[f64]) -> Vec<f64> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            out.push(a[i]);
            i += 1;
            j += 1;
        } else if a[i] < b[j] {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// Maps custom buckets onto the coarser `target` bounds: each bucket goes to the first
/// target bucket whose bound is at or above its own (the +Inf bucket past the last).
fn map_custom_pairs(pairs: &[(i32, f64)], bounds: &[f64], target: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; target.len() + 1];
    for &(idx, c) in pairs {
        let t = match bounds.get(idx.max(0) as usize) {
            Some(&b) => target.partition_point(|&x| x < b),
            None => target.len(),
        };
        out[t] += c;
    }
    out
}

impl Span {
    pub fn new(offset: i32, length: u32) -> Span {
        Span { offset, length }
    }
}

impl FloatHistogram {
    /// The positive buckets with their bounds, in index order (empty ones included).
    pub fn positive_bucket_list(&self) -> Vec<Bucket> {
        self.bucket_list(true)
    }

    /// The negative buckets with their bounds, in index order (ascending absolute value).
    pub fn negative_bucket_list(&self) -> Vec<Bucket> {
        self.bucket_list(false)
    }

    fn bucket_list(&self, positive: bool) -> Vec<Bucket> {
        let pairs = if positive {
            expand(&self.positive_spans, &self.positive_buckets)
        } else {
            expand(&self.negative_spans, &self.negative_buckets)
        };
        let custom = self.uses_custom_buckets();
        pairs
            .into_iter()
            .map(|(idx, count)| {
                let upper = bucket_bound(idx, self.schema, &self.custom_values);
                let lower = bucket_bound(idx - 1, self.schema, &self.custom_values);
                let (lower, upper) = if positive {
                    (lower, upper)
                } else {
                    (-upper, -lower)
                };
                Bucket {
                    lower,
                    upper,
                    lower_inclusive: if custom { idx == 0 } else { lower < 0.0 },
                    upper_inclusive: if custom { true } else { upper > 0.0 },
                    count,
                    index: idx,
                }
            })
            .collect()
    }

    /// The zero bucket `[-threshold, threshold]`.
    pub fn zero_bucket(&self) -> Bucket {
        Bucket {
            lower: -self.zero_threshold,
            upper: self.zero_threshold,
            lower_inclusive: true,
            upper_inclusive: true,
            count: self.zero_count,
            index: 0,
        }
    }

    /// Every bucket from the lowest value to the highest: negative buckets, the zero bucket
    /// (when populated), positive buckets; bounds are clipped to the zero bucket.
    pub fn all_buckets(&self) -> Vec<Bucket> {
        let mut out: Vec<Bucket> = self.negative_bucket_list().into_iter().rev().collect();
        if !self.uses_custom_buckets() && self.zero_count > 0.0 {
            out.push(self.zero_bucket());
        }
        out.extend(self.positive_bucket_list());
        let zt = self.zero_threshold;
        for b in &mut out {
            if b.upper < 0.0 && b.upper > -zt {
                b.upper = -zt;
            } else if b.lower > 0.0 && b.lower < zt {
                b.lower = zt;
            }
        }
        out
    }

    /// The total of all bucket counts (the zero bucket included).
    pub fn bucket_total(&self) -> f64 {
        self.zero_count
            + self.positive_buckets.iter().sum::<f64>()
            + self.negative_buckets.iter().sum::<f64>()
    }

    /// Multiplies every count and the sum by `factor`; a negative factor makes it a gauge.
    pub fn mul(&mut self, factor: f64) {
        self.zero_count *= factor;
        self.count *= factor;
        self.sum *= factor;
        self.positive_buckets.iter_mut().for_each(|b| *b *= factor);
        self.negative_buckets.iter_mut().for_each(|b| *b *= factor);
        if factor < 0.0 {
            self.counter_reset_hint = CounterResetHint::Gauge;
        }
    }

    /// Divides every count and the sum by `divisor`; dividing by zero removes all buckets.
    pub fn div(&mut self, divisor: f64) {
        self.zero_count /= divisor;
        self.count /= divisor;
        self.sum /= divisor;
        if divisor == 0.0 {
            self.positive_buckets.clear();
            self.negative_buckets.clear();
            self.positive_spans.clear();
            self.negative_spans.clear();
            return;
        }
        self.positive_buckets.iter_mut().for_each(|b| *b /= divisor);
        self.negative_buckets.iter_mut().for_each(|b| *b /= divisor);
        if divisor < 0.0 {
            self.counter_reset_hint = CounterResetHint::Gauge;
        }
    }

    /// Removes empty buckets and merges adjacent spans (Prometheus' `Compact(0)`).
    pub fn compact(&mut self) {
        for (spans, buckets) in [
            (&mut self.positive_spans, &mut self.positive_buckets),
            (&mut self.negative_spans, &mut self.negative_buckets),
        ] {
            let pairs: Vec<(i32, f64)> = expand(spans, buckets)
                .into_iter()
                .filter(|(_, c)| *c != 0.0)
                .collect();
            (*spans, *buckets) = collapse(&pairs);
        }
    }

    /// A copy at the coarser `target` schema (exponential schemas only; the same histogram
    /// when `target` is not coarser).
    pub fn copy_to_schema(&self, target: i32) -> FloatHistogram {
        let mut c = self.clone();
        if self.uses_custom_buckets() || target == CUSTOM_BUCKETS_SCHEMA || target >= self.schema {
            return c;
        }
        c.reduce_resolution(target);
        c
    }

    /// Merges buckets down to the coarser `target` schema, in place.
    pub fn reduce_resolution(&mut self, target: i32) {
        if self.uses_custom_buckets() || target == CUSTOM_BUCKETS_SCHEMA || target >= self.schema {
            return;
        }
        let pos = reduce_pairs(
            &expand(&self.positive_spans, &self.positive_buckets),
            self.schema,
            target,
        );
        let neg = reduce_pairs(
            &expand(&self.negative_spans, &self.negative_buckets),
            self.schema,
            target,
        );
        (self.positive_spans, self.positive_buckets) = collapse(&pos);
        (self.negative_spans, self.negative_buckets) = collapse(&neg);
        self.schema = target;
    }

    /// The zero count this histogram would have with the (larger) threshold `larger`, and
    /// the threshold actually needed: a threshold inside a populated bucket grows to that
    /// bucket's bound.
    fn zero_count_for_larger_threshold(&self, larger: f64) -> (f64, f64) {
        let mut larger = larger;
        if larger == self.zero_threshold || larger.is_nan() {
            return (self.zero_count, larger);
        }
        let pos = self.positive_bucket_list();
        let neg = self.negative_bucket_list();
        // Each restart only raises the threshold to a bucket bound, so this ends.
        for _ in 0..=neg.len() + 1 {
            let mut zero_count = self.zero_count;
            for b in &pos {
                if b.lower >= larger {
                    break;
                }
                zero_count += b.count;
                if b.upper > larger {
                    if b.count != 0.0 {
                        larger = b.upper;
                    }
                    break;
                }
            }
            let mut restart = false;
            for b in &neg {
                if b.upper <= -larger {
                    break;
                }
                zero_count += b.count;
                if b.lower < -larger {
                    if b.count != 0.0 {
                        larger = -b.lower;
                        restart = true;
                    }
                    break;
                }
            }
            if !restart {
                return (zero_count, larger);
            }
        }
        (self.zero_count, larger)
    }

    /// Drops the buckets that lie within the zero bucket (their counts are already in it).
    fn trim_buckets_in_zero_bucket(&mut self) {
        let zt = self.zero_threshold;
        let mut pos = expand(&self.positive_spans, &self.positive_buckets);
        pos.retain(|(idx, _)| bucket_bound(idx - 1, self.schema, &self.custom_values) >= zt);
        let mut neg = expand(&self.negative_spans, &self.negative_buckets);
        neg.retain(|(idx, _)| bucket_bound(idx - 1, self.schema, &self.custom_values) >= zt);
        (self.positive_spans, self.positive_buckets) = collapse(&pos);
        (self.negative_spans, self.negative_buckets) = collapse(&neg);
        self.compact();
    }

    /// Widens this histogram's zero bucket and/or computes `other`'s zero count so that both
    /// have the same threshold; returns `other`'s zero count at that threshold.
    fn reconcile_zero_buckets(&mut self, other: &FloatHistogram) -> f64 {
        let mut other_count = other.zero_count;
        let mut other_threshold = other.zero_threshold;
        let mut rounds = 0;
        while other_threshold != self.zero_threshold && rounds < 64 {
            if self.zero_threshold.is_nan() || other_threshold.is_nan() {
                break;
            }
            rounds += 1;
            if self.zero_threshold > other_threshold {
                (other_count, other_threshold) =
                    other.zero_count_for_larger_threshold(self.zero_threshold);
            }
            if other_threshold > self.zero_threshold {
                let (count, threshold) = self.zero_count_for_larger_threshold(other_threshold);
                self.zero_count = count;
                self.zero_threshold = threshold;
                self.trim_buckets_in_zero_bucket();
            }
        }
        other_count
    }

    /// Prometheus' counter-reset hint of a sum or difference; true on a collision of
    /// "reset" and "not reset".
    fn adjust_counter_reset(&mut self, other: &FloatHistogram) -> bool {
        use CounterResetHint::*;
        match (self.counter_reset_hint, other.counter_reset_hint) {
            (a, b) if a == b => false,
            (Gauge, _) => false,
            (_, Gauge) => {
                self.counter_reset_hint = Gauge;
                false
            }
            (Unknown, _) => false,
            (_, Unknown) => {
                self.counter_reset_hint = Unknown;
                false
            }
            _ => {
                self.counter_reset_hint = Unknown;
                true
            }
        }
    }

    /// Adds `other` into this histogram, reconciling schemas (to the coarser one), zero
    /// thresholds (to the wider one) and custom bounds (to the shared ones).
    pub fn add(&mut self, other: &FloatHistogram) -> Result<AddOutcome, HistogramError> {
        self.add_or_sub(other, false)
    }

    /// Subtracts `other` from this histogram, reconciling layouts as [`Self::add`] does.
    pub fn sub(&mut self, other: &FloatHistogram) -> Result<AddOutcome, HistogramError> {
        self.add_or_sub(other, true)
    }

    fn add_or_sub(
        &mut self,
        other: &FloatHistogram,
        negate: bool,
    ) -> Result<AddOutcome, HistogramError> {
        if self.uses_custom_buckets() != other.uses_custom_buckets() {
            return Err(HistogramError::IncompatibleSchema);
        }
        let sign = if negate { -1.0 } else { 1.0 };
        let mut outcome = AddOutcome {
            counter_reset_collision: self.adjust_counter_reset(other),
            custom_bounds_reconciled: false,
        };
        self.count += sign * other.count;
        self.sum += sign * other.sum;
        if self.uses_custom_buckets() {
            let mine = expand(&self.positive_spans, &self.positive_buckets);
            let theirs = expand(&other.positive_spans, &other.positive_buckets);
            if self.custom_values == other.custom_values {
                let sum = add_pairs(&mine, &theirs, negate, self.schema, 0.0);
                (self.positive_spans, self.positive_buckets) = collapse(&sum);
            } else {
                outcome.custom_bounds_reconciled = true;
                let shared = intersect_bounds(&self.custom_values, &other.custom_values);
                let a = map_custom_pairs(&mine, &self.custom_values, &shared);
                let b = map_custom_pairs(&theirs, &other.custom_values, &shared);
                let pairs: Vec<(i32, f64)> = a
                    .iter()
                    .zip(&b)
                    .enumerate()
                    .map(|(i, (x, y))| (i as i32, x + sign * y))
                    .filter(|(_, c)| *c != 0.0)
                    .collect();
                (self.positive_spans, self.positive_buckets) = collapse(&pairs);
                self.custom_values = shared;
            }
            return Ok(outcome);
        }
        let other_zero = self.reconcile_zero_buckets(other);
        self.zero_count += sign * other_zero;
        let mut other_pos = expand(&other.positive_spans, &other.positive_buckets);
        let mut other_neg = expand(&other.negative_spans, &other.negative_buckets);
        if other.schema < self.schema {
            self.reduce_resolution(other.schema);
        } else if other.schema > self.schema {
            other_pos = reduce_pairs(&other_pos, other.schema, self.schema);
            other_neg = reduce_pairs(&other_neg, other.schema, self.schema);
        }
        let zt = self.zero_threshold;
        let pos = add_pairs(
            &expand(&self.positive_spans, &self.positive_buckets),
            &other_pos,
            negate,
            self.schema,
            zt,
        );
        let neg = add_pairs(
            &expand(&self.negative_spans, &self.negative_buckets),
            &other_neg,
            negate,
            self.schema,
            zt,
        );
        (self.positive_spans, self.positive_buckets) = collapse(&pos);
        (self.negative_spans, self.negative_buckets) = collapse(&neg);
        Ok(outcome)
    }

    /// Exact equality as Prometheus' `Equals`: same schema, threshold, bounds and bucket
    /// layout (empty buckets count), values compared by bits.
    pub fn equals(&self, other: &FloatHistogram) -> bool {
        let bits_eq = |a: f64, b: f64| a.to_bits() == b.to_bits();
        if self.schema != other.schema
            || !bits_eq(self.count, other.count)
            || !bits_eq(self.sum, other.sum)
        {
            return false;
        }
        if self.uses_custom_buckets() && self.custom_values != other.custom_values {
            return false;
        }
        if self.zero_threshold != other.zero_threshold
            || !bits_eq(self.zero_count, other.zero_count)
        {
            return false;
        }
        let same = |a: Vec<(i32, f64)>, b: Vec<(i32, f64)>| {
            a.len() == b.len()
                && a.iter()
                    .zip(&b)
                    .all(|(x, y)| x.0 == y.0 && bits_eq(x.1, y.1))
        };
        same(
            expand(&self.positive_spans, &self.positive_buckets),
            expand(&other.positive_spans, &other.positive_buckets),
        ) && same(
            expand(&self.negative_spans, &self.negative_buckets),
            expand(&other.negative_spans, &other.negative_buckets),
        )
    }

    /// Whether going from `previous` to this histogram needs a counter reset: a count or
    /// bucket decreased, a populated bucket vanished, or the layout changed in a way only a
    /// reset allows. The counter-reset hint decides first when it is definite.
    pub fn detect_reset(&self, previous: &FloatHistogram) -> bool {
        match self.counter_reset_hint {
            CounterResetHint::CounterReset => return true,
            CounterResetHint::NotCounterReset => return false,
            _ => {}
        }
        if self.count < previous.count {
            return true;
        }
        if self.uses_custom_buckets() {
            if !previous.uses_custom_buckets() {
                return true;
            }
            if self.custom_values != previous.custom_values {
                return self.reset_with_mismatched_bounds(previous);
            }
        } else if previous.uses_custom_buckets() {
            return true;
        }
        if self.schema > previous.schema {
            return true;
        }
        if self.zero_threshold < previous.zero_threshold {
            return true;
        }
        let (prev_zero, threshold) = previous.zero_count_for_larger_threshold(self.zero_threshold);
        if threshold != self.zero_threshold {
            return true;
        }
        if self.zero_count < prev_zero {
            return true;
        }
        let zt = self.zero_threshold;
        let custom = self.uses_custom_buckets();
        let above_zero = |pairs: Vec<(i32, f64)>, schema: i32| -> Vec<(i32, f64)> {
            pairs
                .into_iter()
                .filter(|(idx, _)| custom || zt == 0.0 || exponential_bound(*idx, schema) > zt)
                .collect()
        };
        let side = |spans: &[Span], buckets: &[f64], h: &FloatHistogram| {
            let pairs = expand(spans, buckets);
            let pairs = if h.schema > self.schema && !custom {
                reduce_pairs(&pairs, h.schema, self.schema)
            } else {
                pairs
            };
            above_zero(pairs, self.schema)
        };
        let changed = |curr: Vec<(i32, f64)>, prev: Vec<(i32, f64)>| -> bool {
            let mut ci = 0;
            for &(pidx, pc) in &prev {
                while ci < curr.len() && curr[ci].0 < pidx {
                    ci += 1;
                }
                match curr.get(ci) {
                    Some(&(cidx, cc)) if cidx == pidx => {
                        if cc < pc {
                            return true;
                        }
                    }
                    // Prometheus only looks at the first missing bucket once the current
                    // histogram has run out of buckets.
                    None => return pc != 0.0,
                    _ => {
                        if pc != 0.0 {
                            return true;
                        }
                    }
                }
            }
            false
        };
        changed(
            side(&self.positive_spans, &self.positive_buckets, self),
            side(
                &previous.positive_spans,
                &previous.positive_buckets,
                previous,
            ),
        ) || changed(
            side(&self.negative_spans, &self.negative_buckets, self),
            side(
                &previous.negative_spans,
                &previous.negative_buckets,
                previous,
            ),
        )
    }

    /// Counter-reset detection between custom-bucket histograms with different bounds: the
    /// cumulative counts at every shared bound must not decrease.
    fn reset_with_mismatched_bounds(&self, previous: &FloatHistogram) -> bool {
        let shared = intersect_bounds(&self.custom_values, &previous.custom_values);
        let curr = map_custom_pairs(
            &expand(&self.positive_spans, &self.positive_buckets),
            &self.custom_values,
            &shared,
        );
        let prev = map_custom_pairs(
            &expand(&previous.positive_spans, &previous.positive_buckets),
            &previous.custom_values,
            &shared,
        );
        curr.iter().zip(&prev).any(|(c, p)| c < p)
    }

    /// The histogram in the PromQL test-script notation (`{{schema:1 count:3 buckets:[1 2]}}`),
    /// which `count_values` uses as the label value.
    pub fn test_expression(&self) -> String {
        use crate::exposition::float_to_string as g;
        let mut parts: Vec<String> = Vec::new();
        if self.schema != 0 {
            parts.push(format!("schema:{}", self.schema));
        }
        if self.count != 0.0 {
            parts.push(format!("count:{}", g(self.count)));
        }
        if self.sum != 0.0 {
            parts.push(format!("sum:{}", g(self.sum)));
        }
        if self.zero_count != 0.0 {
            parts.push(format!("z_bucket:{}", g(self.zero_count)));
        }
        if self.zero_threshold != 0.0 {
            parts.push(format!("z_bucket_w:{}", g(self.zero_threshold)));
        }
        if self.uses_custom_buckets() {
            let v: Vec<String> = self.custom_values.iter().map(|v| g(*v)).collect();
            parts.push(format!("custom_values:[{}]", v.join(" ")));
        }
        match self.counter_reset_hint {
            CounterResetHint::Unknown => {}
            CounterResetHint::CounterReset => parts.push("counter_reset_hint:reset".into()),
            CounterResetHint::NotCounterReset => parts.push("counter_reset_hint:not_reset".into()),
            CounterResetHint::Gauge => parts.push("counter_reset_hint:gauge".into()),
        }
        for (spans, buckets, offset_key, buckets_key) in [
            (
                &self.positive_spans,
                &self.positive_buckets,
                "offset",
                "buckets",
            ),
            (
                &self.negative_spans,
                &self.negative_buckets,
                "n_offset",
                "n_buckets",
            ),
        ] {
            // One span from the first to the last populated bucket, gaps as zeros.
            let pairs = expand(spans, buckets);
            let populated: Vec<&(i32, f64)> = pairs.iter().filter(|(_, c)| *c != 0.0).collect();
            let (Some(first), Some(last)) = (populated.first(), populated.last()) else {
                continue;
            };
            let mut dense = vec![0.0; (last.0 - first.0 + 1) as usize];
            for (idx, c) in &pairs {
                if let Some(slot) = dense.get_mut((idx - first.0) as usize) {
                    *slot += c;
                }
            }
            if first.0 != 0 {
                parts.push(format!("{offset_key}:{}", first.0));
            }
            let v: Vec<String> = dense.iter().map(|c| g(*c)).collect();
            parts.push(format!("{buckets_key}:[{}]", v.join(" ")));
        }
        format!("{{{{{}}}}}", parts.join(" "))
    }
}

/// The share of bucket `b`'s count at or below `v`: linear within custom buckets,
/// logarithmic within exponential ones.
fn split_count(b: &Bucket, v: f64, positive: bool, linear: bool) -> f64 {
    if v <= b.lower {
        return 0.0;
    }
    if v >= b.upper {
        return b.count;
    }
    let fraction = if linear {
        (v - b.lower) / (b.upper - b.lower)
    } else {
        let (ll, lu, lv) = (b.lower.abs().log2(), b.upper.abs().log2(), v.abs().log2());
        if positive {
            (lv - ll) / (lu - ll)
        } else {
            1.0 - ((lv - lu) / (ll - lu))
        }
    };
    b.count * fraction
}

/// The value standing for the observations in `[lower, upper]`: the arithmetic mean for
/// custom buckets, the geometric mean for exponential ones; infinite ends fall back to the
/// finite one.
fn interval_midpoint(lower: f64, upper: f64, positive: bool, linear: bool) -> f64 {
    if lower.is_infinite() {
        if upper.is_infinite() {
            return 0.0;
        }
        return if upper > 0.0 { upper / 2.0 } else { upper };
    }
    if upper.is_infinite() {
        return lower;
    }
    if linear {
        return (lower + upper) / 2.0;
    }
    let geo = (lower * upper).abs().sqrt();
    if positive { geo } else { -geo }
}

/// Kept count and midpoint of a bucket with an infinite bound, whose distribution is
/// unknown: it is kept or dropped whole except where a finite positive bound allows linear
/// interpolation from zero.
fn trim_infinite_bucket(upper_trim: bool, b: &Bucket, v: f64) -> (f64, f64) {
    let finite_or_zero = |x: f64| if x.is_infinite() { 0.0 } else { x };
    if b.lower == f64::NEG_INFINITY {
        if upper_trim {
            if v >= b.upper {
                return (b.count, 0.0);
            }
            if v > 0.0 && b.upper > 0.0 && b.upper != f64::INFINITY {
                return (b.count * v / b.upper, v / 2.0);
            }
            if b.upper <= 0.0 {
                return (b.count, v);
            }
            return (0.0, finite_or_zero(b.upper));
        }
        if v <= b.lower {
            return (b.count, 0.0);
        }
        if v >= 0.0 && b.upper > v && b.upper != f64::INFINITY {
            return (b.count * (1.0 - v / b.upper), (v + b.upper) / 2.0);
        }
        return (0.0, finite_or_zero(b.upper));
    }
    if upper_trim {
        return (0.0, finite_or_zero(b.lower));
    }
    if v >= b.lower {
        return (b.count, v);
    }
    (0.0, finite_or_zero(b.lower))
}

impl FloatHistogram {
    /// The observations below `v` (`upper_trim`, PromQL's `</`) or above it (`>/`): buckets
    /// on the kept side stay, the bucket containing `v` is interpolated, and count and sum
    /// are re-estimated from bucket midpoints when anything was cut.
    pub fn trim_buckets(&self, v: f64, upper_trim: bool) -> FloatHistogram {
        let mut out = self.clone();
        let linear = self.uses_custom_buckets();
        let (mut count, mut sum) = (0.0, 0.0);
        let mut trimmed = false;
        let mut seen = [false, false];
        for (side, positive) in [(0usize, true), (1usize, false)] {
            let list = if positive {
                self.positive_bucket_list()
            } else {
                self.negative_bucket_list()
            };
            for (i, b) in list.iter().enumerate() {
                if b.count == 0.0 {
                    continue;
                }
                seen[side] = true;
                let wholly_kept = if upper_trim {
                    b.upper <= v
                } else {
                    b.lower >= v
                };
                let partly_kept = if upper_trim { b.lower < v } else { b.upper > v };
                let keep = if wholly_kept {
                    count += b.count;
                    sum += interval_midpoint(b.lower, b.upper, positive, linear) * b.count;
                    continue;
                } else if partly_kept {
                    let (kept, mid) = if b.lower.is_infinite() || b.upper.is_infinite() {
                        trim_infinite_bucket(upper_trim, b, v)
                    } else {
                        let under = split_count(b, v, positive, linear);
                        if upper_trim {
                            (under, interval_midpoint(b.lower, v, positive, linear))
                        } else {
                            (
                                b.count - under,
                                interval_midpoint(v, b.upper, positive, linear),
                            )
                        }
                    };
                    count += kept;
                    sum += mid * kept;
                    kept
                } else {
                    0.0
                };
                let slot = if positive {
                    out.positive_buckets.get_mut(i)
                } else {
                    out.negative_buckets.get_mut(i)
                };
                if let Some(slot) = slot
                    && *slot != keep
                {
                    *slot = keep;
                    trimmed = true;
                }
            }
        }
        if out.zero_count > 0.0 {
            let zb = out.zero_bucket();
            let (mut lower, mut upper) = (zb.lower, zb.upper);
            let (has_pos, has_neg) = (seen[0], seen[1]);
            if has_neg && !has_pos {
                upper = 0.0;
            }
            if has_pos && !has_neg {
                lower = 0.0;
            }
            let (kept, mid) = if upper_trim {
                if v <= lower {
                    (0.0, 0.0)
                } else if v >= upper {
                    (zb.count, (lower + upper) / 2.0)
                } else {
                    (zb.count * (v - lower) / (upper - lower), (lower + v) / 2.0)
                }
            } else if v <= lower {
                (zb.count, (lower + upper) / 2.0)
            } else if v >= upper {
                (0.0, 0.0)
            } else {
                (zb.count * (upper - v) / (upper - lower), (v + upper) / 2.0)
            };
            if out.zero_count != kept {
                out.zero_count = kept;
                trimmed = true;
            }
            sum += mid * kept;
            count += kept;
        }
        if trimmed {
            out.count = count;
            out.sum = sum;
            out.compact();
        }
        out
    }
}

impl std::fmt::Display for Bucket {
    /// `[lower,upper]:count` with brackets telling which bounds are inclusive.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::exposition::float_to_string as g;
        write!(
            f,
            "{}{},{}{}:{}",
            if self.lower_inclusive { '[' } else { '(' },
            g(self.lower),
            g(self.upper),
            if self.upper_inclusive { ']' } else { ')' },
            g(self.count)
        )
    }
}

impl std::fmt::Display for FloatHistogram {
    /// Prometheus' `String()`: count, sum and the populated buckets from the lowest to the
    /// highest (`count_values` uses it as the label value of a histogram).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::exposition::float_to_string as g;
        write!(f, "{{count:{}, sum:{}", g(self.count), g(self.sum))?;
        for b in self.negative_bucket_list().iter().rev() {
            if b.count != 0.0 {
                write!(f, ", {b}")?;
            }
        }
        if self.zero_count != 0.0 {
            write!(f, ", {}", self.zero_bucket())?;
        }
        for b in self.positive_bucket_list() {
            if b.count != 0.0 {
                write!(f, ", {b}")?;
            }
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A histogram with one positive span starting at `offset`.
    fn hist(schema: i32, offset: i32, buckets: &[f64]) -> FloatHistogram {
        FloatHistogram {
            schema,
            count: buckets.iter().sum(),
            positive_spans: vec![Span::new(offset, buckets.len() as u32)],
            positive_buckets: buckets.to_vec(),
            ..FloatHistogram::default()
        }
    }

    #[test]
    fn exponential_bounds_per_schema() {
        assert_eq!(exponential_bound(0, 0), 1.0);
        assert_eq!(exponential_bound(1, 0), 2.0);
        assert_eq!(exponential_bound(-1, 0), 0.5);
        assert_eq!(exponential_bound(1, -1), 4.0);
        assert!((exponential_bound(1, 1) - 2f64.sqrt()).abs() < 1e-15);
        assert_eq!(exponential_bound(2, 1), 2.0);
        // The last finite bucket ends at f64::MAX, not at +Inf.
        assert_eq!(exponential_bound(1024, 0), f64::MAX);
    }

    #[test]
    fn bucket_lists_carry_bounds() {
        let mut h = hist(0, 0, &[1.0, 2.0]);
        h.negative_spans = vec![Span::new(0, 1)];
        h.negative_buckets = vec![3.0];
        h.zero_count = 4.0;
        h.zero_threshold = 0.001;
        let all = h.all_buckets();
        let bounds: Vec<(f64, f64, f64)> =
            all.iter().map(|b| (b.lower, b.upper, b.count)).collect();
        assert_eq!(
            bounds,
            vec![
                (-1.0, -0.5, 3.0),
                (-0.001, 0.001, 4.0),
                (0.5, 1.0, 1.0),
                (1.0, 2.0, 2.0)
            ]
        );
        let custom = FloatHistogram {
            schema: CUSTOM_BUCKETS_SCHEMA,
            custom_values: vec![5.0, 10.0],
            positive_spans: vec![Span::new(0, 3)],
            positive_buckets: vec![1.0, 2.0, 3.0],
            ..FloatHistogram::default()
        };
        let b = custom.positive_bucket_list();
        assert_eq!((b[0].lower, b[0].upper), (f64::NEG_INFINITY, 5.0));
        assert_eq!((b[2].lower, b[2].upper), (10.0, f64::INFINITY));
    }

    #[test]
    fn add_reduces_to_the_coarser_schema() {
        let mut a = hist(1, 0, &[1.0, 1.0, 1.0, 1.0]);
        let b = hist(0, 0, &[1.0, 1.0]);
        let out = a.add(&b);
        assert_eq!(out, Ok(AddOutcome::default()));
        assert_eq!(a.schema, 0);
        // At schema 0, schema 1's index 0 stays 0, indexes 1 and 2 merge into 1, 3 becomes 2.
        assert_eq!(
            expand(&a.positive_spans, &a.positive_buckets),
            vec![(0, 2.0), (1, 3.0), (2, 1.0)]
        );
        assert_eq!(a.count, 6.0);
    }

    #[test]
    fn sub_and_compact_remove_empty_buckets() {
        let mut a = hist(0, 0, &[1.0, 2.0, 3.0]);
        let b = hist(0, 1, &[2.0]);
        a.sub(&b).ok();
        a.compact();
        assert_eq!(a.positive_spans, vec![Span::new(0, 1), Span::new(1, 1)]);
        assert_eq!(a.positive_buckets, vec![1.0, 3.0]);
    }

    #[test]
    fn counter_reset_hint_collision() {
        let mut a = hist(0, 0, &[1.0]);
        a.counter_reset_hint = CounterResetHint::CounterReset;
        let mut b = hist(0, 0, &[1.0]);
        b.counter_reset_hint = CounterResetHint::NotCounterReset;
        let out = a.add(&b);
        assert!(out.is_ok_and(|o| o.counter_reset_collision));
        assert_eq!(a.counter_reset_hint, CounterResetHint::Unknown);
    }

    #[test]
    fn custom_bounds_are_intersected() {
        let mut a = FloatHistogram {
            schema: CUSTOM_BUCKETS_SCHEMA,
            custom_values: vec![5.0, 10.0],
            count: 2.0,
            positive_spans: vec![Span::new(0, 2)],
            positive_buckets: vec![1.0, 1.0],
            ..FloatHistogram::default()
        };
        let b = FloatHistogram {
            schema: CUSTOM_BUCKETS_SCHEMA,
            custom_values: vec![10.0],
            count: 1.0,
            positive_spans: vec![Span::new(0, 1)],
            positive_buckets: vec![1.0],
            ..FloatHistogram::default()
        };
        let out = a.add(&b);
        assert!(out.is_ok_and(|o| o.custom_bounds_reconciled));
        assert_eq!(a.custom_values, vec![10.0]);
        assert_eq!(a.positive_buckets, vec![3.0]);
        let exp = hist(0, 0, &[1.0]);
        assert_eq!(a.add(&exp), Err(HistogramError::IncompatibleSchema));
    }

    #[test]
    fn zero_thresholds_are_reconciled() {
        let mut a = hist(0, -2, &[1.0, 1.0, 1.0]);
        a.zero_threshold = 0.5;
        a.zero_count = 1.0;
        let mut b = hist(0, 0, &[1.0]);
        b.zero_threshold = 0.1;
        b.zero_count = 1.0;
        b.positive_spans = vec![Span::new(-1, 2)];
        b.positive_buckets = vec![2.0, 1.0];
        a.add(&b).ok();
        // b's bucket (0.25, 0.5] falls into a's zero bucket.
        assert_eq!(a.zero_count, 4.0);
        assert_eq!(a.zero_threshold, 0.5);
    }

    #[test]
    fn scaling_and_division_by_zero() {
        let mut a = hist(0, 0, &[1.0, 2.0]);
        a.mul(-2.0);
        assert_eq!(a.positive_buckets, vec![-2.0, -4.0]);
        assert_eq!(a.counter_reset_hint, CounterResetHint::Gauge);
        a.div(0.0);
        assert!(a.positive_buckets.is_empty());
        assert_eq!(a.count, f64::NEG_INFINITY);
    }

    #[test]
    fn equality_is_exact_on_layout() {
        let a = hist(0, 0, &[1.0, 2.0]);
        let mut b = a.clone();
        assert!(a.equals(&b));
        b.positive_spans = vec![Span::new(0, 1), Span::new(0, 1)];
        assert!(a.equals(&b), "split spans describe the same layout");
        b.positive_buckets[1] = 2.5;
        assert!(!a.equals(&b));
    }

    #[test]
    fn reset_detection() {
        let prev = hist(0, 0, &[2.0, 2.0]);
        assert!(!hist(0, 0, &[2.0, 3.0]).detect_reset(&prev));
        assert!(hist(0, 0, &[1.0, 3.0]).detect_reset(&prev));
        assert!(
            hist(0, 1, &[5.0]).detect_reset(&prev),
            "a populated bucket vanished"
        );
        assert!(hist(1, 0, &[2.0, 3.0]).detect_reset(&prev), "finer schema");
        let mut hinted = hist(0, 0, &[1.0]);
        hinted.counter_reset_hint = CounterResetHint::NotCounterReset;
        assert!(!hinted.detect_reset(&prev));
    }

    #[test]
    fn trimming_keeps_one_side() {
        // Buckets (0.5,1] and (1,2] with 2 observations each.
        let mut h = hist(0, 0, &[2.0, 2.0]);
        h.sum = 5.0;
        let below = h.trim_buckets(1.0, true);
        assert_eq!(below.count, 2.0);
        assert_eq!(below.positive_buckets, vec![2.0]);
        let above = h.trim_buckets(1.0, false);
        assert_eq!(above.count, 2.0);
        // The kept bucket (1,2] stands for its geometric mean.
        assert!((above.sum - 2.0 * 2f64.sqrt()).abs() < 1e-12);
        let untouched = h.trim_buckets(10.0, true);
        assert_eq!(untouched.sum, 5.0, "nothing cut, sum kept");
    }

    #[test]
    fn string_forms() {
        let mut h = hist(0, 0, &[1.0, 2.0]);
        h.sum = 10.0;
        h.negative_spans = vec![Span::new(0, 1)];
        h.negative_buckets = vec![1.0];
        h.zero_threshold = 0.001;
        h.zero_count = 2.0;
        h.count = 6.0;
        assert_eq!(
            h.to_string(),
            "{count:6, sum:10, [-1,-0.5):1, [-0.001,0.001]:2, (0.5,1]:1, (1,2]:2}"
        );
        assert_eq!(
            h.test_expression(),
            "{{count:6 sum:10 z_bucket:2 z_bucket_w:0.001 buckets:[1 2] n_buckets:[1]}}"
        );
    }
}
