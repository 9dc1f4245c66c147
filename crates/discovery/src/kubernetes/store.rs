//! The objects a discoverer knows, per kind, kept up to date from its watchers' [`Change`]s,
//! and which of them each change touched (so only their groups are rendered again).

use std::collections::BTreeMap;

use super::objects::{self, KubeObject};
use super::watch::Change;

/// (namespace, name); the namespace is empty for cluster-scoped objects.
pub type Key = (String, String);

/// Objects of one kind by namespace and name.
#[derive(Debug)]
pub struct Store<T> {
    objects: BTreeMap<Key, T>,
}

impl<T> Default for Store<T> {
    fn default() -> Self {
        Store {
            objects: BTreeMap::new(),
        }
    }
}

/// The key of an object.
pub fn key_of<T: KubeObject>(object: &T) -> Key {
    let meta = object.meta();
    (
        objects::namespace(meta).to_owned(),
        objects::name(meta).to_owned(),
    )
}

/// What a change did to a store, in the terms of `prometheus_sd_kubernetes_events_total`: a
/// list counts as an add or update per listed object and a delete per object it no longer
/// has, as an informer reports a relist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Events {
    pub added: u64,
    pub updated: u64,
    pub deleted: u64,
}

impl<T: KubeObject> Store<T> {
    /// The events `change` amounts to against what the store holds now.
    pub fn events(&self, change: &Change<T>) -> Events {
        let mut events = Events::default();
        match change {
            Change::Applied(object) => {
                if self.objects.contains_key(&key_of(object.as_ref())) {
                    events.updated = 1;
                } else {
                    events.added = 1;
                }
            }
            Change::Deleted { .. } => events.deleted = 1,
            Change::Listed { namespace, objects } => {
                let listed: std::collections::BTreeSet<Key> = objects.iter().map(key_of).collect();
                for key in &listed {
                    if self.objects.contains_key(key) {
                        events.updated += 1;
                    } else {
                        events.added += 1;
                    }
                }
                events.deleted = self
                    .objects
                    .keys()
                    .filter(|k| namespace.as_ref().is_none_or(|ns| k.0 == *ns))
                    .filter(|k| !listed.contains(*k))
                    .count() as u64;
            }
        }
        events
    }

    /// Applies a change; returns the keys of the objects added, changed or removed.
    pub fn apply(&mut self, change: Change<T>) -> Vec<Key> {
        match change {
            Change::Applied(object) => {
                let key = key_of(object.as_ref());
                self.objects.insert(key.clone(), *object);
                vec![key]
            }
            Change::Deleted { namespace, name } => {
                let key = (namespace, name);
                self.objects.remove(&key);
                vec![key]
            }
            Change::Listed { namespace, objects } => {
                let in_scope = |key: &Key| namespace.as_ref().is_none_or(|ns| key.0 == *ns);
                let mut touched: Vec<Key> = self
                    .objects
                    .keys()
                    .filter(|k| in_scope(k))
                    .cloned()
                    .collect();
                self.objects.retain(|key, _| !in_scope(key));
                for object in objects {
                    let key = key_of(&object);
                    touched.push(key.clone());
                    self.objects.insert(key, object);
                }
                touched.sort();
                touched.dedup();
                touched
            }
        }
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<&T> {
        self.objects.get(&(namespace.to_owned(), name.to_owned()))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Key, &T)> {
        self.objects.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubernetes::objects::{ObjectMeta, Pod};

    fn pod(namespace: &str, name: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                namespace: Some(namespace.to_owned()),
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        }
    }

    #[test]
    fn events_of_changes_and_relists() {
        let mut store: Store<Pod> = Store::default();
        let added = Change::Applied(Box::new(pod("a", "p1")));
        assert_eq!(
            store.events(&added),
            Events {
                added: 1,
                ..Events::default()
            }
        );
        store.apply(added);
        let updated = Change::Applied(Box::new(pod("a", "p1")));
        assert_eq!(store.events(&updated).updated, 1);
        store.apply(Change::Applied(Box::new(pod("a", "p2"))));
        store.apply(Change::Applied(Box::new(pod("b", "p3"))));
        // A relist of namespace `a`: p1 again, p4 new, p2 gone; `b` is out of its scope.
        let relist = Change::Listed {
            namespace: Some("a".to_owned()),
            objects: vec![pod("a", "p1"), pod("a", "p4")],
        };
        assert_eq!(
            store.events(&relist),
            Events {
                added: 1,
                updated: 1,
                deleted: 1
            }
        );
        let deleted = Change::Deleted {
            namespace: "b".to_owned(),
            name: "p3".to_owned(),
        };
        assert_eq!(store.events(&deleted).deleted, 1);
    }
}
