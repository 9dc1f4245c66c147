//! Turning one scrape body into appended samples (Prometheus' `scrapeLoop.append`), with the
//! scrape cache on the hot path.
//!
//! The body is walked line by line. A sample line is split into its series part (`name` or
//! `name{...}`, as written) and its tail (` value` or ` value timestamp`). When the series part
//! is in the cache and the tail has the canonical shape, only the value (and timestamp) are
//! parsed: no labels are built, relabeled or hashed. Everything else (new series, unusual
//! spacing, exemplars, OpenMetrics timestamps, comments) goes through `model`'s exposition
//! parser one line at a time, so the accepted syntax is exactly the parser's.
//!
//! Per sample, as Prometheus: target labels are attached (`honor_labels`, `exported_*`
//! renaming), `metric_relabel_configs` applied, the name and label limits checked, the sample
//! limit counted; out-of-order, duplicate and out-of-bounds samples are counted and skipped; a
//! parse error or an exceeded limit fails the whole scrape. A sample's exemplar (OpenMetrics)
//! is appended after it, with the scrape's timestamp when it has none; exemplar errors never
//! fail a scrape (out-of-order ones are counted).
//!
//! Comment lines update the target's metadata (`# TYPE`, `# HELP`, `# UNIT`), also when the
//! line is a cache hit.

use model::exposition::{Entry, Format, Parser, parse_openmetrics_number, parse_text_value};
use model::labels::{Labels, LabelsBuilder, METRIC_NAME};
use model::names::ValidationScheme;
use model::sample::stale_nan;
use storage::{AppendError, Appender, Exemplar};

use crate::cache::{MetaField, MetaLine, ScrapeCache, SeriesEntry};

/// Prefix of a cache key that is not raw line bytes but a rendered label set (for lines whose
/// spelling is not canonical); no sample line can start with these bytes.
const RENDERED_KEY_PREFIX: &[u8] = b"\x00\xff";

/// Prometheus' `exported_` prefix for scraped labels that collide with target labels.
const EXPORTED_PREFIX: &str = "exported_";

/// The per-target settings of the append step.
pub(crate) struct AppendSettings<'a> {
    /// The target's public labels, attached to every series.
    pub target_labels: &'a Labels,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub track_timestamps_staleness: bool,
    pub metric_rules: &'a [relabel::Rule],
    pub sample_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub validation: ValidationScheme,
}

/// What a scrape's append step counted (for the synthetic series and logs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendStats {
    /// Sample lines in the body (`scrape_samples_scraped`).
    pub total: u64,
    /// Samples left after metric relabeling (`scrape_samples_post_metric_relabeling`).
    pub added: u64,
    /// Series seen for the first time (`scrape_series_added`).
    pub series_added: u64,
    pub out_of_order: u64,
    pub duplicates: u64,
    pub out_of_bounds: u64,
    /// Exemplars refused as out of order (`prometheus_target_scrapes_exemplar_out_of_order_total`).
    pub exemplar_out_of_order: u64,
    /// The scrape failed on `sample_limit`.
    pub sample_limit_exceeded: bool,
    /// The scrape failed on a label limit (`label_limit`, `label_*_length_limit`).
    pub label_limit_exceeded: bool,
    /// The scrape failed and the cache, grown by failing scrapes, was flushed.
    pub cache_flush_forced: bool,
}

/// Appends the samples of `body` at default timestamp `t`. On error the caller rolls the
/// appender back and calls [`append_failed`]; the stats still hold what was counted.
pub(crate) fn append_body(
    cache: &mut ScrapeCache,
    app: &mut dyn Appender,
    body: &[u8],
    format: Format,
    t: i64,
    settings: &AppendSettings<'_>,
) -> (AppendStats, Result<(), String>) {
    cache.begin();
    let mut stats = AppendStats::default();
    let result = append_lines(cache, app, body, format, t, settings, &mut stats);
    let result = result.and_then(|()| {
        if settings.sample_limit > 0 && stats.added > settings.sample_limit {
            stats.sample_limit_exceeded = true;
            return Err("sample limit exceeded".to_owned());
        }
        Ok(())
    });
    let result = result.and_then(|()| append_stale_markers(cache, app, t));
    match result {
        Ok(()) => cache.flush_unseen(),
        Err(_) => stats.cache_flush_forced = cache.undo_scrape(),
    }
    (stats, result)
}

/// After a failed scrape (or a rolled-back append): staleness markers for every series of the
/// last successful scrape, on a fresh appender.
pub(crate) fn append_failed(
    cache: &mut ScrapeCache,
    app: &mut dyn Appender,
    t: i64,
    already_begun: bool,
) -> Result<(), String> {
    if !already_begun {
        cache.begin();
    }
    append_stale_markers(cache, app, t)
}

fn append_stale_markers(cache: &ScrapeCache, app: &mut dyn Appender, t: i64) -> Result<(), String> {
    for (series_ref, labels) in cache.vanished() {
        match app.append(series_ref, &labels, t, stale_nan()) {
            Ok(_) | Err(AppendError::OutOfOrder | AppendError::DuplicateTimestamp) => {}
            Err(AppendError::OutOfBounds | AppendError::TooOld) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// The samples of one line, as parsed.
struct ParsedValue {
    value: f64,
    timestamp: Option<i64>,
    /// Labels, value and timestamp (if it had one).
    exemplar: Option<(Labels, f64, Option<i64>)>,
}

fn append_lines(
    cache: &mut ScrapeCache,
    app: &mut dyn Appender,
    body: &[u8],
    format: Format,
    t: i64,
    settings: &AppendSettings<'_>,
    stats: &mut AppendStats,
) -> Result<(), String> {
    let iter = cache.iter;
    let om = format == Format::OpenMetrics;
    let mut pos = 0;
    let mut line_no: u32 = 0;
    let mut saw_eof = false;
    while pos < body.len() {
        let rest = &body[pos..];
        let (mut line, next) = match memchr::memchr(b'\n', rest) {
            Some(p) => (&rest[..p], pos + p + 1),
            None => (rest, body.len()),
        };
        pos = next;
        line_no += 1;
        if saw_eof {
            return Err(format!("{line_no}:1: unexpected text after # EOF"));
        }
        if !om && let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        match line.first() {
            None if !om => continue,
            None => return Err(format!("{line_no}:1: unexpected blank line")),
            Some(b'#') => {
                if om && line == b"# EOF" {
                    saw_eof = true;
                    continue;
                }
                if !cache.comment_seen(line) {
                    let meta = check_comment(line, format, line_no)?;
                    cache.add_comment(line, meta);
                }
                continue;
            }
            Some(_) => {}
        }
        stats.total += 1;
        let split = split_series(line);
        let fast = split.and_then(|(series, tail)| Some((series, fast_tail(tail, om)?)));

        // Cache hit: no label work at all.
        if let Some((series, _)) = split {
            if let Some(last) = cache.dropped.get_mut(series) {
                *last = iter;
                continue;
            }
            if let Some(entry) = cache.series.get_mut(series) {
                let parsed = match &fast {
                    Some((_, parsed)) => ParsedValue {
                        value: parsed.value,
                        timestamp: parsed.timestamp,
                        exemplar: None,
                    },
                    None => parse_line(line, format, line_no)?.1,
                };
                append_sample(app, entry, iter, parsed, t, settings, stats, false)?;
                continue;
            }
        }

        // Miss: parse the line and build its labels.
        let (scraped, parsed) = parse_line(line, format, line_no)?;
        let cacheable = fast.is_some();
        let Some(labels) = final_labels(scraped, settings, stats)? else {
            if let (true, Some((series, _))) = (cacheable, split) {
                cache.dropped.insert(series.into(), iter);
            }
            continue;
        };
        let key: Box<[u8]> = match (cacheable, split) {
            (true, Some((series, _))) => series.into(),
            _ => rendered_key(&labels),
        };
        let entry = cache.series.entry(key).or_insert_with(|| SeriesEntry {
            series_ref: None,
            hash: labels.hash64(),
            labels,
            last_iter: 0,
            prev_iter: 0,
            track_staleness: true,
        });
        let is_new = entry.series_ref.is_none();
        append_sample(app, entry, iter, parsed, t, settings, stats, is_new)?;
    }
    if om && !saw_eof {
        return Err(format!(
            "{}:1: expected \"# EOF\" at the end of the input",
            line_no + 1
        ));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn append_sample(
    app: &mut dyn Appender,
    entry: &mut SeriesEntry,
    iter: u64,
    parsed: ParsedValue,
    t: i64,
    settings: &AppendSettings<'_>,
    stats: &mut AppendStats,
    is_new: bool,
) -> Result<(), String> {
    stats.added += 1;
    if settings.sample_limit > 0 && stats.added > settings.sample_limit {
        // The scrape fails at the end; keep counting, stop appending.
        return Ok(());
    }
    let explicit = parsed.timestamp.filter(|_| settings.honor_timestamps);
    let track = explicit.is_none() || settings.track_timestamps_staleness;
    ScrapeCache::mark_seen(entry, iter, track);
    match app.append(
        entry.series_ref,
        &entry.labels,
        explicit.unwrap_or(t),
        parsed.value,
    ) {
        Ok(series_ref) => {
            entry.series_ref = Some(series_ref);
            if is_new {
                stats.series_added += 1;
            }
        }
        Err(AppendError::OutOfOrder) => stats.out_of_order += 1,
        Err(AppendError::DuplicateTimestamp) => stats.duplicates += 1,
        Err(AppendError::OutOfBounds | AppendError::TooOld) => stats.out_of_bounds += 1,
        Err(e) => return Err(e.to_string()),
    }
    // As Prometheus: the exemplar goes in even when its sample was refused.
    if let Some((labels, value, ts)) = parsed.exemplar {
        let exemplar = Exemplar {
            labels,
            value,
            ts: ts.unwrap_or(t),
        };
        match app.append_exemplar(entry.series_ref, &entry.labels, &exemplar) {
            Ok(_) => {}
            Err(AppendError::OutOfOrderExemplar) => stats.exemplar_out_of_order += 1,
            Err(e) => {
                tracing::debug!(series = %entry.labels, err = %e, "exemplar not stored");
            }
        }
    }
    Ok(())
}

/// A cache key for a label set whose line could not be keyed by its bytes.
pub(crate) fn rendered_key(labels: &Labels) -> Box<[u8]> {
    let mut key = RENDERED_KEY_PREFIX.to_vec();
    key.extend_from_slice(labels.to_string().as_bytes());
    key.into()
}

/// Validates a comment line with the parser (`# HELP`/`# TYPE`/`# UNIT` syntax; OpenMetrics
/// allows no other comments) and returns the metadata it carries.
fn check_comment(line: &[u8], format: Format, line_no: u32) -> Result<Option<MetaLine>, String> {
    let mut parser = Parser::new(line, format).map_err(|e| at_line(&e, line_no))?;
    let meta = |family: &str, field| {
        Some(MetaLine {
            family: family.into(),
            field,
        })
    };
    match parser.next_entry() {
        Some(Err(e)) => Err(at_line(&e, line_no)),
        Some(Ok(Entry::Type { name, kind })) => Ok(meta(&name, MetaField::Type(kind))),
        Some(Ok(Entry::Help { name, text })) => Ok(meta(&name, MetaField::Help(text.into()))),
        Some(Ok(Entry::Unit { name, unit })) => Ok(meta(&name, MetaField::Unit(unit.into()))),
        _ => Ok(None),
    }
}

fn at_line(e: &model::exposition::ParseError, line_no: u32) -> String {
    format!("{line_no}:{}: {}", e.column, e.message)
}

/// Parses one sample line: its labels (name included) and value.
fn parse_line(line: &[u8], format: Format, line_no: u32) -> Result<(Labels, ParsedValue), String> {
    let mut parser = Parser::new(line, format).map_err(|e| at_line(&e, line_no))?;
    match parser.next_entry() {
        Some(Ok(Entry::Sample(sample))) => {
            let mut labels = Vec::with_capacity(sample.labels.len() + 1);
            labels.push(model::labels::Label::new(METRIC_NAME, sample.name.as_ref()));
            for label in sample.labels {
                labels.push(model::labels::Label::new(
                    label.name.as_ref(),
                    label.value.as_ref(),
                ));
            }
            let labels = Labels::from_vec(labels).map_err(|e| format!("{line_no}:1: {e}"))?;
            let exemplar = match &sample.exemplar {
                None => None,
                Some(e) => {
                    let pairs = e
                        .labels
                        .iter()
                        .map(|l| model::labels::Label::new(l.name.as_ref(), l.value.as_ref()));
                    let labels = Labels::from_vec(pairs.collect())
                        .map_err(|e| format!("{line_no}:1: exemplar: {e}"))?;
                    Some((labels, e.value, e.timestamp))
                }
            };
            Ok((
                labels,
                ParsedValue {
                    value: sample.value,
                    timestamp: sample.timestamp,
                    exemplar,
                },
            ))
        }
        Some(Err(e)) => Err(at_line(&e, line_no)),
        _ => Err(format!("{line_no}:1: expected a sample")),
    }
}

/// The labels a scraped series is stored with, or `None` when metric relabeling drops it.
fn final_labels(
    scraped: Labels,
    settings: &AppendSettings<'_>,
    stats: &mut AppendStats,
) -> Result<Option<Labels>, String> {
    let mut builder = attach_target_labels(&scraped, settings.target_labels, settings.honor_labels);
    if !relabel::process_builder(&mut builder, settings.metric_rules) {
        return Ok(None);
    }
    let labels = builder.build();
    let Some(name) = labels.metric_name() else {
        return Err("missing metric name (__name__ label)".to_owned());
    };
    if settings.validation == ValidationScheme::Legacy
        && (!settings.validation.is_valid_metric_name(name)
            || labels
                .iter()
                .any(|l| !settings.validation.is_valid_label_name(&l.name)))
    {
        return Err(format!("invalid metric name or label names: {labels}"));
    }
    if let Err(e) = check_label_limits(&labels, settings) {
        stats.label_limit_exceeded = true;
        return Err(e);
    }
    Ok(Some(labels))
}

/// Prometheus' `mutateSampleLabels` before relabeling: with `honor_labels` the scraped labels
/// win; otherwise the target's do and a scraped label in the way is kept as `exported_<name>`
/// (more `exported_` prefixes until the name is free, shortest names first).
pub(crate) fn attach_target_labels(
    scraped: &Labels,
    target: &Labels,
    honor: bool,
) -> LabelsBuilder {
    let mut builder = scraped.builder();
    if honor {
        for label in target {
            if !scraped.has(&label.name) {
                builder.set(label.name.clone(), label.value.clone());
            }
        }
        return builder;
    }
    let mut conflicts = Vec::new();
    for label in target {
        if let Some(existing) = scraped.get(&label.name) {
            conflicts.push((label.name.clone(), existing.to_owned()));
        }
        builder.set(label.name.clone(), label.value.clone());
    }
    conflicts.sort_by_key(|(name, _)| name.len());
    for (name, value) in conflicts {
        let mut exported = name.to_string();
        loop {
            exported.insert_str(0, EXPORTED_PREFIX);
            if builder.get(&exported).is_none() {
                builder.set(exported, value);
                break;
            }
        }
    }
    builder
}

/// The label count and length limits; Prometheus' messages.
fn check_label_limits(labels: &Labels, settings: &AppendSettings<'_>) -> Result<(), String> {
    let name = labels.metric_name().unwrap_or("");
    let short = |s: &str| s.chars().take(50).collect::<String>();
    if settings.label_limit > 0 && labels.len() as u64 > settings.label_limit {
        return Err(format!(
            "label_limit exceeded (metric: {}, number of labels: {}, limit: {})",
            short(name),
            labels.len(),
            settings.label_limit
        ));
    }
    for label in labels {
        if settings.label_name_length_limit > 0
            && label.name.len() as u64 > settings.label_name_length_limit
        {
            return Err(format!(
                "label_name_length_limit exceeded (metric: {}, label name: {}, length: {}, limit: {})",
                short(name),
                short(&label.name),
                label.name.len(),
                settings.label_name_length_limit
            ));
        }
        let value_length = label.value.chars().count() as u64;
        if settings.label_value_length_limit > 0 && value_length > settings.label_value_length_limit
        {
            return Err(format!(
                "label_value_length_limit exceeded (metric: {}, label name: {}, value: {:?}, length: {}, limit: {})",
                short(name),
                short(&label.name),
                short(&label.value),
                value_length,
                settings.label_value_length_limit
            ));
        }
    }
    Ok(())
}

/// Splits a sample line into its series part (`name`, `name{...}` or `{...}`) and the rest.
/// `None` when the braces do not close.
fn split_series(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut i = 0;
    while i < line.len() && !matches!(line[i], b' ' | b'\t' | b'{') {
        i += 1;
    }
    if i < line.len() && line[i] == b'{' {
        i += 1;
        let mut in_quotes = false;
        loop {
            let &byte = line.get(i)?;
            i += 1;
            match byte {
                b'\\' if in_quotes => i += 1,
                b'"' => in_quotes = !in_quotes,
                b'}' if !in_quotes => break,
                _ => {}
            }
        }
    }
    (i <= line.len()).then(|| line.split_at(i))
}

/// Parses a tail in the canonical shape: ` value`, or (text format) ` value timestamp`, single
/// spaces, nothing else. Anything else returns `None` and takes the parser's path.
fn fast_tail(tail: &[u8], om: bool) -> Option<ParsedValue> {
    let tail = tail.strip_prefix(b" ")?;
    let (value, timestamp) = match memchr::memchr(b' ', tail) {
        None => (tail, None),
        Some(_) if om => return None,
        Some(p) => (&tail[..p], Some(&tail[p + 1..])),
    };
    if value.is_empty() || value.contains(&b'\t') {
        return None;
    }
    let value = std::str::from_utf8(value).ok()?;
    let value = if om {
        parse_openmetrics_number(value)?
    } else {
        parse_text_value(value)?
    };
    let timestamp = match timestamp {
        None => None,
        Some(ts) => Some(parse_text_timestamp(std::str::from_utf8(ts).ok()?)?),
    };
    Some(ParsedValue {
        value,
        timestamp,
        exemplar: None,
    })
}

/// A 0.0.4 timestamp: a signed integer number of milliseconds (as `model`'s parser reads it;
/// that function is not exported).
fn parse_text_timestamp(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_split() {
        assert_eq!(split_series(b"a 1"), Some((&b"a"[..], &b" 1"[..])));
        assert_eq!(
            split_series(br#"a{b="}\" ",c="d"} 1 2"#),
            Some((&br#"a{b="}\" ",c="d"}"#[..], &b" 1 2"[..]))
        );
        assert_eq!(
            split_series(br#"{"a.b",c="d"} 1"#),
            Some((&br#"{"a.b",c="d"}"#[..], &b" 1"[..]))
        );
        assert_eq!(split_series(br#"a{b="1" 1"#), None);
    }

    #[test]
    fn canonical_tails_only() {
        let ok = |tail: &[u8], om| fast_tail(tail, om).map(|p| (p.value, p.timestamp));
        assert_eq!(ok(b" 1.5", false), Some((1.5, None)));
        assert_eq!(ok(b" 1 123", false), Some((1.0, Some(123))));
        assert_eq!(ok(b" 1 123", true), None);
        assert_eq!(ok(b"  1", false), None);
        assert_eq!(ok(b" 1 ", false), None);
        assert_eq!(ok(b"\t1", false), None);
        assert_eq!(ok(b" 1\t", false), None);
        assert_eq!(ok(b" x", false), None);
        assert_eq!(ok(b" 1 # {a=\"b\"} 1", true), None);
    }

    #[test]
    fn exported_renaming() {
        let scraped = Labels::from_static(&[
            ("__name__", "m"),
            ("job", "scraped"),
            ("exported_job", "taken"),
            ("instance", "i"),
        ]);
        let target = Labels::from_static(&[("job", "node"), ("instance", "t:1")]);
        let renamed = attach_target_labels(&scraped, &target, false).build();
        assert_eq!(
            renamed,
            Labels::from_static(&[
                ("__name__", "m"),
                ("exported_exported_job", "scraped"),
                ("exported_instance", "i"),
                ("exported_job", "taken"),
                ("instance", "t:1"),
                ("job", "node"),
            ])
        );
        let honored = attach_target_labels(&scraped, &target, true).build();
        assert_eq!(honored, scraped);
    }

    #[test]
    fn a_cache_grown_by_failing_scrapes_is_flushed() {
        use storage::Appendable;
        let db = storage::memory::MemStorage::new();
        let target = Labels::from_static(&[("job", "j"), ("instance", "i:1")]);
        let settings = AppendSettings {
            target_labels: &target,
            honor_labels: false,
            honor_timestamps: true,
            track_timestamps_staleness: false,
            metric_rules: &[],
            sample_limit: 100,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            validation: ValidationScheme::Utf8,
        };
        let body = |prefix: &str, n: usize| {
            (0..n)
                .map(|i| format!("m{{id=\"{prefix}-{i}\"}} 1\n"))
                .collect::<String>()
        };
        let mut cache = ScrapeCache::new();
        let mut app = db.appender();
        let (st, r) = append_body(
            &mut cache,
            app.as_mut(),
            body("ok", 10).as_bytes(),
            Format::Text,
            1000,
            &settings,
        );
        assert!(r.is_ok() && !st.cache_flush_forced);
        app.commit().unwrap();
        assert_eq!(cache.len(), 10);
        // Scrapes over the sample limit fail but leave their new lines in the cache, until
        // it passes twice its last successful size plus 1000.
        let mut forced = 0;
        for k in 0..4 {
            let mut app = db.appender();
            let (st, r) = append_body(
                &mut cache,
                app.as_mut(),
                body(&format!("f{k}"), 600).as_bytes(),
                Format::Text,
                2000 + k,
                &settings,
            );
            assert!(r.is_err());
            app.rollback().unwrap();
            if st.cache_flush_forced {
                forced += 1;
                assert_eq!(
                    cache.len(),
                    10,
                    "only the last successful scrape's series stay"
                );
            }
            assert!(cache.len() <= 10 * 2 + 1000 + 600);
        }
        assert_eq!(forced, 2);
    }
}
