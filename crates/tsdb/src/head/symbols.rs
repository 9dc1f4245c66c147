//! The head's string table: every label name and value stored once, referred to by a `u32`.
//!
//! Series keep their labels as id pairs (8 bytes a label instead of two 16-byte handles plus
//! the strings), and the inverted index is keyed by ids. Strings are `Sym`s, so turning ids
//! back into a `Labels` for a query shares the strings instead of copying them.

use model::labels::Sym;
use std::collections::HashMap;
use std::sync::RwLock;

#[derive(Default)]
struct Table {
    strings: Vec<Sym>,
    ids: HashMap<Sym, u32>,
}

/// Interned strings with dense ids.
#[derive(Default)]
pub struct Symbols {
    table: RwLock<Table>,
}

impl Symbols {
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of `s`, adding it when new.
    pub fn intern(&self, s: &str) -> u32 {
        if let Some(id) = self.lookup(s) {
            return id;
        }
        let mut t = self.table.write().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = t.ids.get(s) {
            return *id;
        }
        let id = t.strings.len() as u32;
        let sym = Sym::new(s);
        t.strings.push(sym.clone());
        t.ids.insert(sym, id);
        id
    }

    /// The id of `s` if it is known.
    pub fn lookup(&self, s: &str) -> Option<u32> {
        self.table
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .ids
            .get(s)
            .copied()
    }

    /// The string of `id` (empty for an unknown id, which only a bug could produce).
    pub fn get(&self, id: u32) -> Sym {
        let t = self.table.read().unwrap_or_else(|e| e.into_inner());
        t.strings
            .get(id as usize)
            .cloned()
            .unwrap_or_else(|| Sym::new(""))
    }

    /// Runs `f` with a resolver to borrowed strings under one read lock: no reference counts
    /// are touched, which matters when a sort compares label sets millions of times. Keep `f`
    /// short, since interning a new string waits for it.
    pub fn with_str<R>(&self, f: impl for<'a> FnOnce(&'a dyn Fn(u32) -> &'a str) -> R) -> R {
        let t = self.table.read().unwrap_or_else(|e| e.into_inner());
        let strings: &[Sym] = &t.strings;
        let resolve = |id: u32| -> &str { strings.get(id as usize).map_or("", |s| &**s) };
        f(&resolve)
    }

    /// Runs `f` with a resolver that reads many ids under one lock.
    pub fn with<R>(&self, f: impl FnOnce(&dyn Fn(u32) -> Sym) -> R) -> R {
        let t = self.table.read().unwrap_or_else(|e| e.into_inner());
        let resolve = |id: u32| {
            t.strings
                .get(id as usize)
                .cloned()
                .unwrap_or_else(|| Sym::new(""))
        };
        f(&resolve)
    }

    pub fn len(&self) -> usize {
        self.table
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .strings
            .len()
    }
}
