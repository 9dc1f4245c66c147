//! The head's inverted index: label name → label value → sorted series ids.
//!
//! Ids only grow, so adding a series appends to each of its lists and keeps them sorted. A
//! value held by one series (instance and pod names) is stored inline without a vector.
//! [`Postings::for_matchers`] implements Prometheus' selection: intersect the lists of matchers
//! that need the label, subtract those of matchers that also accept a missing label.

use super::symbols::Symbols;
use model::matcher::{MatchOp, Matcher};
use std::collections::HashMap;

/// Series ids of one label value.
#[derive(Debug, Clone)]
enum List {
    One(u32),
    Many(Vec<u32>),
}

impl List {
    fn push(&mut self, id: u32) {
        match self {
            List::One(first) => *self = List::Many(vec![*first, id]),
            List::Many(v) => v.push(id),
        }
    }

    /// Removes `id`; true when the list became empty.
    fn remove(&mut self, id: u32) -> bool {
        match self {
            List::One(x) => *x == id,
            List::Many(v) => {
                if let Ok(pos) = v.binary_search(&id) {
                    v.remove(pos);
                }
                let single = match v.as_slice() {
                    [] => return true,
                    [one] => Some(*one),
                    _ => None,
                };
                if let Some(one) = single {
                    *self = List::One(one);
                }
                false
            }
        }
    }

    fn as_slice(&self) -> &[u32] {
        match self {
            List::One(id) => std::slice::from_ref(id),
            List::Many(v) => v,
        }
    }
}

/// The index.
#[derive(Default)]
pub struct Postings {
    by_name: HashMap<u32, HashMap<u32, List>>,
    all: Vec<u32>,
}

impl Postings {
    /// Adds series `id` with its label id pairs; ids must arrive in increasing order.
    pub fn add(&mut self, id: u32, labels: &[u32]) {
        for pair in labels.chunks_exact(2) {
            let values = self.by_name.entry(pair[0]).or_default();
            match values.get_mut(&pair[1]) {
                Some(list) => list.push(id),
                None => {
                    values.insert(pair[1], List::One(id));
                }
            }
        }
        self.all.push(id);
    }

    /// Adds a series whose id may be lower than ids already present (WAL replay).
    pub fn add_unordered(&mut self, id: u32, labels: &[u32]) {
        fn insert_sorted(v: &mut Vec<u32>, id: u32) {
            if let Err(pos) = v.binary_search(&id) {
                v.insert(pos, id);
            }
        }
        for pair in labels.chunks_exact(2) {
            let values = self.by_name.entry(pair[0]).or_default();
            match values.get_mut(&pair[1]) {
                Some(List::Many(v)) => insert_sorted(v, id),
                Some(List::One(first)) => {
                    let mut v = vec![*first];
                    insert_sorted(&mut v, id);
                    values.insert(pair[1], List::Many(v));
                }
                None => {
                    values.insert(pair[1], List::One(id));
                }
            }
        }
        insert_sorted(&mut self.all, id);
    }

    /// Removes series `id` (garbage collection after head truncation).
    pub fn remove(&mut self, id: u32, labels: &[u32]) {
        for pair in labels.chunks_exact(2) {
            let Some(values) = self.by_name.get_mut(&pair[0]) else {
                continue;
            };
            if values.get_mut(&pair[1]).is_some_and(|l| l.remove(id)) {
                values.remove(&pair[1]);
            }
            if values.is_empty() {
                self.by_name.remove(&pair[0]);
            }
        }
        if let Ok(pos) = self.all.binary_search(&id) {
            self.all.remove(pos);
        }
    }

    pub fn all(&self) -> &[u32] {
        &self.all
    }

    /// Ids of series with label `name`=`value`.
    pub fn get(&self, name: u32, value: u32) -> &[u32] {
        self.by_name
            .get(&name)
            .and_then(|v| v.get(&value))
            .map_or(&[], List::as_slice)
    }

    /// Value ids of label `name`.
    pub fn values(&self, name: u32) -> impl Iterator<Item = u32> + '_ {
        self.by_name
            .get(&name)
            .into_iter()
            .flat_map(|v| v.keys().copied())
    }

    /// Label name ids.
    pub fn names(&self) -> impl Iterator<Item = u32> + '_ {
        self.by_name.keys().copied()
    }

    /// Union of the lists of every value of `name` accepted by `accept`.
    fn union_values(
        &self,
        name: &str,
        symbols: &Symbols,
        accept: impl Fn(&str) -> bool,
    ) -> Vec<u32> {
        let Some(name_id) = symbols.lookup(name) else {
            return Vec::new();
        };
        let Some(values) = self.by_name.get(&name_id) else {
            return Vec::new();
        };
        let lists: Vec<&[u32]> = symbols.with(|resolve| {
            values
                .iter()
                .filter(|(v, _)| accept(&resolve(**v)))
                .map(|(_, l)| l.as_slice())
                .collect()
        });
        union(&lists)
    }

    /// Ids of series with a value for `m.name` that `m` accepts (never the missing label).
    fn for_matcher(&self, m: &Matcher, symbols: &Symbols) -> Vec<u32> {
        if m.op == MatchOp::Equal {
            return match (symbols.lookup(&m.name), symbols.lookup(&m.value)) {
                (Some(n), Some(v)) => self.get(n, v).to_vec(),
                _ => Vec::new(),
            };
        }
        if m.op == MatchOp::RegexMatch
            && let Some(set) = m.regex().and_then(|r| r.set_matches())
        {
            let Some(n) = symbols.lookup(&m.name) else {
                return Vec::new();
            };
            let lists: Vec<&[u32]> = set
                .iter()
                .filter_map(|v| symbols.lookup(v))
                .map(|v| self.get(n, v))
                .collect();
            return union(&lists);
        }
        self.union_values(&m.name, symbols, |v| m.matches(v))
    }

    /// Sorted ids of the series that pass every matcher (all series when there are none).
    pub fn for_matchers(&self, matchers: &[Matcher], symbols: &Symbols) -> Vec<u32> {
        let mut include: Vec<Vec<u32>> = Vec::new();
        let mut exclude: Vec<Vec<u32>> = Vec::new();
        for m in matchers {
            if m.matches_empty() {
                // Accepts series without the label: drop those whose value it rejects.
                let rejected = self.union_values(&m.name, symbols, |v| !m.matches(v));
                exclude.push(rejected);
            } else {
                include.push(self.for_matcher(m, symbols));
            }
        }
        // Smallest list first keeps the intersection cheap.
        include.sort_by_key(Vec::len);
        let mut result = match include.split_first() {
            None => self.all.clone(),
            Some((first, rest)) => {
                let mut acc = first.clone();
                for l in rest {
                    if acc.is_empty() {
                        break;
                    }
                    acc = intersect(&acc, l);
                }
                acc
            }
        };
        for e in &exclude {
            if result.is_empty() {
                break;
            }
            result = subtract(&result, e);
        }
        result
    }
}

/// Intersection of two sorted lists.
pub fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(small.len());
    // Galloping through the large list pays off when the sizes differ a lot.
    if large.len() > 16 * small.len() {
        let mut lo = 0;
        for x in small {
            lo += large[lo..].partition_point(|y| y < x);
            if lo < large.len() && large[lo] == *x {
                out.push(*x);
            }
        }
        return out;
    }
    let (mut i, mut j) = (0, 0);
    while i < small.len() && j < large.len() {
        match small[i].cmp(&large[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(small[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// `a` minus `b`, both sorted.
pub fn subtract(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for x in a {
        while j < b.len() && b[j] < *x {
            j += 1;
        }
        if j >= b.len() || b[j] != *x {
            out.push(*x);
        }
    }
    out
}

/// Union of sorted lists, sorted and without duplicates.
pub fn union(lists: &[&[u32]]) -> Vec<u32> {
    match lists {
        [] => Vec::new(),
        [one] => one.to_vec(),
        _ => {
            let mut out: Vec<u32> = lists.iter().flat_map(|l| l.iter().copied()).collect();
            out.sort_unstable();
            out.dedup();
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations() {
        assert_eq!(intersect(&[1, 3, 5, 7], &[3, 4, 5]), vec![3, 5]);
        let big: Vec<u32> = (0..1000).collect();
        assert_eq!(intersect(&[5, 999, 2000], &big), vec![5, 999]);
        assert_eq!(subtract(&[1, 2, 3, 4], &[2, 4, 9]), vec![1, 3]);
        assert_eq!(union(&[&[1, 4], &[2, 4, 5], &[]]), vec![1, 2, 4, 5]);
    }

    #[test]
    fn matcher_selection_follows_prometheus() {
        let symbols = Symbols::new();
        let mut p = Postings::default();
        let series: &[&[(&str, &str)]] = &[
            &[("__name__", "up"), ("job", "a")],
            &[("__name__", "up"), ("job", "b"), ("env", "prod")],
            &[("__name__", "up"), ("env", "dev")],
            &[("__name__", "down"), ("job", "a")],
        ];
        for (i, s) in series.iter().enumerate() {
            let ids: Vec<u32> = s
                .iter()
                .flat_map(|(n, v)| [symbols.intern(n), symbols.intern(v)])
                .collect();
            p.add(i as u32 + 1, &ids);
        }
        let sel = |ms: &[(MatchOp, &str, &str)]| {
            let ms: Vec<Matcher> = ms
                .iter()
                .map(|(o, n, v)| Matcher::new(*o, *n, *v).unwrap())
                .collect();
            p.for_matchers(&ms, &symbols)
        };
        use MatchOp::*;
        assert_eq!(sel(&[(Equal, "__name__", "up")]), vec![1, 2, 3]);
        assert_eq!(
            sel(&[(Equal, "__name__", "up"), (NotEqual, "job", "a")]),
            vec![2, 3]
        );
        assert_eq!(
            sel(&[(Equal, "__name__", "up"), (Equal, "env", "")]),
            vec![1]
        );
        assert_eq!(sel(&[(RegexMatch, "job", "a|b")]), vec![1, 2, 4]);
        assert_eq!(sel(&[(RegexMatch, "job", ".+")]), vec![1, 2, 4]);
        assert_eq!(
            sel(&[(Equal, "__name__", "up"), (RegexNoMatch, "env", "p.*")]),
            vec![1, 3]
        );
        assert_eq!(sel(&[(RegexMatch, "job", "a|")]), vec![1, 3, 4]);
        assert_eq!(sel(&[(Equal, "__name__", "nope")]), Vec::<u32>::new());
        assert_eq!(sel(&[]), vec![1, 2, 3, 4]);
    }
}
