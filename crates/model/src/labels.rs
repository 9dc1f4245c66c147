//! Label sets: the identity of a series.
//!
//! A [`Labels`] is a set of name/value pairs sorted by name with unique names, shared behind one
//! `Arc` so that cloning is a reference-count bump. Names and values are [`Sym`]s (shared
//! `Arc<str>`); an [`Interner`] hands out one `Sym` per distinct string, so a million series of
//! `job="node"` hold one copy of `job` and one of `node`.
//!
//! The 64-bit hash ([`Labels::hash64`]) is stable across runs and machines (xxh3 over
//! `name 0xff value 0xff ...`, the separator byte Prometheus uses) so it can pick shards and
//! identify series in files.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::{Arc, LazyLock, Mutex};

/// The label that carries the metric name.
pub const METRIC_NAME: &str = "__name__";

/// Separator byte between names and values in hashes; it cannot occur in valid UTF-8.
const HASH_SEP: u8 = 0xff;

/// An immutable shared string. Equality, ordering and hashing are by content.
#[derive(Clone)]
pub struct Sym(Arc<str>);

impl Sym {
    pub fn new(s: &str) -> Self {
        Sym(Arc::from(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when both handles share one allocation (interned strings compare this way first).
    pub fn ptr_eq(&self, other: &Sym) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Deref for Sym {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Sym {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq for Sym {
    fn eq(&self, other: &Self) -> bool {
        self.ptr_eq(other) || *self.0 == *other.0
    }
}
impl Eq for Sym {}

impl PartialOrd for Sym {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Sym {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl Hash for Sym {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state)
    }
}

impl fmt::Debug for Sym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Sym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Sym {
    fn from(s: &str) -> Self {
        Sym::new(s)
    }
}

impl From<String> for Sym {
    fn from(s: String) -> Self {
        Sym(Arc::from(s))
    }
}

/// Deduplicates strings so that equal names and values share one allocation.
///
/// Sharded to keep writers on different cores apart. Strings no longer referenced from outside
/// are released by [`Interner::release_unused`], which the owner calls periodically (series churn
/// would otherwise grow the table forever).
pub struct Interner {
    shards: Box<[Mutex<HashSet<Sym>>]>,
}

const INTERNER_SHARDS: usize = 16;

impl Default for Interner {
    fn default() -> Self {
        Self::new()
    }
}

impl Interner {
    pub fn new() -> Self {
        Interner {
            shards: (0..INTERNER_SHARDS)
                .map(|_| Mutex::new(HashSet::new()))
                .collect(),
        }
    }

    fn shard(&self, s: &str) -> &Mutex<HashSet<Sym>> {
        let h = xxhash_rust::xxh3::xxh3_64(s.as_bytes());
        &self.shards[(h as usize) % self.shards.len()]
    }

    /// Returns the shared handle for `s`, creating it on first use.
    pub fn intern(&self, s: &str) -> Sym {
        // A poisoned shard only means another thread panicked mid-insert; the set is still valid.
        let mut set = self.shard(s).lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sym) = set.get(s) {
            return sym.clone();
        }
        let sym = Sym::new(s);
        set.insert(sym.clone());
        sym
    }

    /// Drops strings that only the interner still holds; returns how many were released.
    pub fn release_unused(&self) -> usize {
        let mut released = 0;
        for shard in self.shards.iter() {
            let mut set = shard.lock().unwrap_or_else(|e| e.into_inner());
            let before = set.len();
            set.retain(|s| Arc::strong_count(&s.0) > 1);
            released += before - set.len();
        }
        released
    }

    /// Number of distinct strings held.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One name/value pair.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Label {
    pub name: Sym,
    pub value: Sym,
}

impl Label {
    pub fn new(name: impl Into<Sym>, value: impl Into<Sym>) -> Self {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// Errors from building a label set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelsError {
    #[error("duplicate label name {0:?}")]
    DuplicateName(String),
}

/// Normalizes label pairs borrowed from input the way [`Labels::from_vec`] normalizes a set
/// (empty values dropped, sorted by name) and refuses a repeated name, so that hot ingestion
/// paths can find an existing series without building a [`Labels`].
pub fn normalize_pairs(pairs: &mut Vec<(&str, &str)>) -> Result<(), LabelsError> {
    pairs.retain(|(_, v)| !v.is_empty());
    if !pairs.is_sorted_by(|a, b| a.0 < b.0) {
        pairs.sort_unstable_by(|a, b| a.0.cmp(b.0));
    }
    if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(LabelsError::DuplicateName(w[0].0.to_string()));
    }
    Ok(())
}

/// [`Labels::hash64`] of the set that normalized `pairs` describe.
pub fn hash_pairs(pairs: &[(&str, &str)]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for (n, v) in pairs {
        h.update(n.as_bytes());
        h.update(&[HASH_SEP]);
        h.update(v.as_bytes());
        h.update(&[HASH_SEP]);
    }
    h.digest()
}

/// A sorted set of labels with unique names; cheap to clone, hash and compare.
///
/// Labels with empty values are not stored: in Prometheus an empty value is the same as the
/// label being absent.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Arc<[Label]>);

static EMPTY_LABELS: LazyLock<Labels> = LazyLock::new(|| Labels(Arc::from(Vec::new())));

impl Default for Labels {
    fn default() -> Self {
        Self::empty()
    }
}

impl Labels {
    pub fn empty() -> Self {
        EMPTY_LABELS.clone()
    }

    /// Builds a set from pairs in any order; empty values are dropped; a repeated name is an error.
    pub fn from_pairs<N: Into<Sym>, V: Into<Sym>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Result<Self, LabelsError> {
        let v: Vec<Label> = pairs.into_iter().map(|(n, v)| Label::new(n, v)).collect();
        Self::from_vec(v)
    }

    /// Builds a set from labels in any order; empty values are dropped; a repeated name is an error.
    pub fn from_vec(mut v: Vec<Label>) -> Result<Self, LabelsError> {
        v.retain(|l| !l.value.is_empty());
        if !v.is_sorted_by(|a, b| a.name < b.name) {
            v.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        }
        if let Some(w) = v.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(LabelsError::DuplicateName(w[0].name.to_string()));
        }
        Ok(Labels(Arc::from(v)))
    }

    /// Convenience for tests and literals: panics on duplicate names, so never use it on input.
    #[doc(hidden)]
    pub fn from_static(pairs: &[(&str, &str)]) -> Self {
        match Self::from_pairs(pairs.iter().copied()) {
            Ok(l) => l,
            Err(e) => panic!("invalid static label set: {e}"),
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    /// The value of `name`, or `None` when absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    /// The value of `name`, or `""` when absent (Prometheus' convention).
    pub fn get_or_empty(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// Stable 64-bit hash of the whole set.
    pub fn hash64(&self) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for l in self.0.iter() {
            h.update(l.name.as_bytes());
            h.update(&[HASH_SEP]);
            h.update(l.value.as_bytes());
            h.update(&[HASH_SEP]);
        }
        h.digest()
    }

    /// Prometheus' own `labels.Hash()`: xxHash64 (seed 0) over `name 0xff value 0xff ...`.
    /// Only where the exact value decides something Prometheus decides with it (the order of
    /// exemplars with equal timestamps and values).
    pub fn prometheus_hash(&self) -> u64 {
        let mut h = xxhash_rust::xxh64::Xxh64::new(0);
        for l in self.0.iter() {
            h.update(l.name.as_bytes());
            h.update(&[HASH_SEP]);
            h.update(l.value.as_bytes());
            h.update(&[HASH_SEP]);
        }
        h.digest()
    }

    /// Stable hash over only the named labels (`on(...)` / `by(...)` grouping).
    pub fn hash_for(&self, names: &[&str]) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for l in self.0.iter().filter(|l| names.contains(&l.name.as_str())) {
            h.update(l.name.as_bytes());
            h.update(&[HASH_SEP]);
            h.update(l.value.as_bytes());
            h.update(&[HASH_SEP]);
        }
        h.digest()
    }

    /// Stable hash over all labels except the named ones (`ignoring(...)` / `without(...)`).
    pub fn hash_without(&self, names: &[&str]) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for l in self.0.iter().filter(|l| !names.contains(&l.name.as_str())) {
            h.update(l.name.as_bytes());
            h.update(&[HASH_SEP]);
            h.update(l.value.as_bytes());
            h.update(&[HASH_SEP]);
        }
        h.digest()
    }

    /// A builder starting from this set.
    pub fn builder(&self) -> LabelsBuilder {
        LabelsBuilder {
            labels: self.0.to_vec(),
        }
    }

    /// This set without the metric name.
    pub fn without_metric_name(&self) -> Labels {
        if !self.has(METRIC_NAME) {
            return self.clone();
        }
        Labels(
            self.0
                .iter()
                .filter(|l| l.name.as_str() != METRIC_NAME)
                .cloned()
                .collect(),
        )
    }

    /// Only the named labels.
    pub fn keep_only(&self, names: &[&str]) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|l| names.contains(&l.name.as_str()))
                .cloned()
                .collect(),
        )
    }

    /// All labels but the named ones.
    pub fn drop_names(&self, names: &[&str]) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|l| !names.contains(&l.name.as_str()))
                .cloned()
                .collect(),
        )
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Prometheus' `String()` form: `{__name__="up", job="node"}`.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if crate::names::is_valid_legacy_label_name(&l.name) {
                f.write_str(&l.name)?;
            } else {
                crate::exposition::write_quoted(f, &l.name)?;
            }
            f.write_str("=")?;
            crate::exposition::write_quoted(f, &l.value)?;
        }
        f.write_str("}")
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Mutable staging area for deriving one label set from another (relabeling, PromQL).
#[derive(Clone, Default, Debug)]
pub struct LabelsBuilder {
    labels: Vec<Label>,
}

impl LabelsBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value`; an empty value deletes the label.
    pub fn set(&mut self, name: impl Into<Sym>, value: impl Into<Sym>) -> &mut Self {
        let name = name.into();
        let value = value.into();
        match self.labels.iter_mut().find(|l| l.name == name) {
            Some(l) if !value.is_empty() => l.value = value,
            Some(_) => self.labels.retain(|l| l.name != name),
            None if !value.is_empty() => self.labels.push(Label { name, value }),
            None => {}
        }
        self
    }

    pub fn del(&mut self, name: &str) -> &mut Self {
        self.labels.retain(|l| l.name.as_str() != name);
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|l| l.name.as_str() == name)
            .map(|l| l.value.as_str())
    }

    /// Keeps only the labels for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&Label) -> bool) -> &mut Self {
        self.labels.retain(|l| keep(l));
        self
    }

    pub fn labels(&self) -> &[Label] {
        &self.labels
    }

    /// Produces the sorted set. Names are unique by construction of `set`.
    pub fn build(&self) -> Labels {
        let mut v = self.labels.clone();
        v.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Labels(Arc::from(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_and_deduplicated_by_name() {
        let l = Labels::from_pairs([("b", "2"), ("a", "1"), ("c", "")]).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l.as_slice()[0].name.as_str(), "a");
        assert_eq!(l.get("b"), Some("2"));
        assert_eq!(l.get("c"), None);
        assert!(Labels::from_pairs([("a", "1"), ("a", "2")]).is_err());
    }

    #[test]
    fn hash_is_stable_and_order_independent() {
        let a = Labels::from_static(&[("job", "node"), ("instance", "x")]);
        let b = Labels::from_static(&[("instance", "x"), ("job", "node")]);
        assert_eq!(a.hash64(), b.hash64());
        // Pinned so that an accidental change of the hash scheme (which would reshuffle on-disk
        // shards) fails loudly.
        let h = Labels::from_static(&[("__name__", "up")]).hash64();
        assert_eq!(h, xxhash_rust::xxh3::xxh3_64(b"__name__\xffup\xff"));
        // The separator keeps ("ab","c") and ("a","bc") apart.
        assert_ne!(
            Labels::from_static(&[("ab", "c")]).hash64(),
            Labels::from_static(&[("a", "bc")]).hash64()
        );
    }

    #[test]
    fn prometheus_hash_is_xxhash64_of_the_separated_pairs() {
        // xxHash64 of the empty input with seed 0, as Go's cespare/xxhash computes it.
        assert_eq!(Labels::empty().prometheus_hash(), 0xEF46_DB37_51D8_E999);
        let l = Labels::from_static(&[("trace_id", "abc"), ("a", "b")]);
        assert_eq!(
            l.prometheus_hash(),
            xxhash_rust::xxh64::xxh64(b"a\xffb\xfftrace_id\xffabc\xff", 0)
        );
    }

    #[test]
    fn interner_shares_and_releases() {
        let i = Interner::new();
        let a = i.intern("node");
        let b = i.intern("node");
        assert!(a.ptr_eq(&b));
        assert_eq!(i.len(), 1);
        drop((a, b));
        assert_eq!(i.release_unused(), 1);
        assert!(i.is_empty());
    }

    #[test]
    fn builder_sets_and_deletes() {
        let l = Labels::from_static(&[("a", "1"), ("b", "2")]);
        let mut b = l.builder();
        b.set("c", "3").set("a", "").del("b").set("d", "4");
        let out = b.build();
        assert_eq!(out, Labels::from_static(&[("c", "3"), ("d", "4")]));
    }

    #[test]
    fn display_quotes_utf8_names() {
        let l = Labels::from_static(&[("__name__", "up"), ("service.name", "a\"b")]);
        assert_eq!(l.to_string(), r#"{__name__="up", "service.name"="a\"b"}"#);
    }

    #[test]
    fn borrowed_pairs_hash_and_normalize_like_labels() {
        let mut pairs = vec![
            ("job", "api"),
            ("__name__", "up"),
            ("empty", ""),
            ("a", "1"),
        ];
        normalize_pairs(&mut pairs).unwrap();
        assert_eq!(pairs, vec![("__name__", "up"), ("a", "1"), ("job", "api")]);
        let l = Labels::from_pairs([("job", "api"), ("__name__", "up"), ("a", "1")]).unwrap();
        assert_eq!(hash_pairs(&pairs), l.hash64());
        let mut dup = vec![("a", "1"), ("a", "2")];
        assert!(normalize_pairs(&mut dup).is_err());
    }
}
