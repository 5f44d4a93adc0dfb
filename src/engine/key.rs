//! Step keys: one serde struct per step kind, hashed in one form and
//! explained in another without a second function that could drift.
//!
//! A key is everything that decides a step's output. The executor hashes its
//! JSON ([`Key::hashed`]); a known hash is not run. Parts that are bulky and
//! shared by thousands of keys (the site context, a node's context, the
//! inputs) are [`Folded`]: hashed as their digest, so a no-op build of a large
//! site does not serialise them once per step, and walked in full when a step
//! runs and `--explain` says which field changed ([`Key::explained`]). Both
//! forms come from the one struct, so they name the same fields.
use std::cell::Cell;

use anyhow::{Context, Result};
use serde::{Serialize, Serializer};
use serde_json::Value;

thread_local! {
    /// Set while [`Key::explained`] serialises: [`Folded`] parts unfold.
    static UNFOLDING: Cell<bool> = const { Cell::new(false) };
}

/// The key of one step, as the struct of its kind.
pub struct Key<'a>(Box<dyn Body + 'a>);

/// A key struct, type-erased (steps are trait objects of many kinds).
trait Body {
    fn to_value(&self) -> serde_json::Result<Value>;
}

impl<T: Serialize> Body for T {
    fn to_value(&self) -> serde_json::Result<Value> {
        serde_json::to_value(self)
    }
}

impl<'a> Key<'a> {
    pub fn new(key: impl Serialize + 'a) -> Key<'a> {
        Key(Box::new(key))
    }

    /// The form that is hashed: folded parts as their digests. As a JSON
    /// value, whose objects serialise with sorted keys (the hash does not
    /// depend on the order of a struct's fields).
    pub fn hashed(&self) -> Result<Value> {
        self.0.to_value().context("serialising a step key")
    }

    /// The form `--explain` compares between builds: folded parts in full.
    pub fn explained(&self) -> Result<Value> {
        struct Unfolding;
        impl Drop for Unfolding {
            fn drop(&mut self) {
                UNFOLDING.set(false);
            }
        }
        UNFOLDING.set(true);
        let _unfolding = Unfolding;
        self.0.to_value().context("serialising a step key")
    }
}

/// A part of a key hashed as its digest and explained in full.
pub struct Folded<T> {
    digest: String,
    full: T,
}

impl<T: Serialize> Folded<T> {
    /// `digest` must change whenever `full` does (typically blake3 of its JSON).
    pub fn new(digest: String, full: T) -> Folded<T> {
        Folded { digest, full }
    }
}

impl<T: Serialize> Serialize for Folded<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if UNFOLDING.get() {
            self.full.serialize(serializer)
        } else {
            self.digest.serialize(serializer)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Serialize)]
    struct Example<'a> {
        template: &'a str,
        node: Folded<&'a Value>,
    }

    #[test]
    fn one_struct_hashes_folded_and_explains_unfolded() {
        let node = json!({"mac": "aa", "ip": "10.0.0.11"});
        let key = Key::new(Example {
            template: "x",
            node: Folded::new("d1".into(), &node),
        });
        assert_eq!(
            key.hashed().unwrap(),
            json!({"node": "d1", "template": "x"})
        );
        assert_eq!(
            key.explained().unwrap(),
            json!({"node": {"mac": "aa", "ip": "10.0.0.11"}, "template": "x"})
        );
        // Explaining leaves nothing behind: the next hash is folded again.
        assert_eq!(
            key.hashed().unwrap(),
            json!({"node": "d1", "template": "x"})
        );
    }

    #[test]
    fn the_hashed_form_does_not_depend_on_field_order() {
        #[derive(Serialize)]
        struct Reversed {
            z: u8,
            a: u8,
        }
        let text = serde_json::to_string(&Key::new(Reversed { z: 1, a: 2 }).hashed().unwrap());
        assert_eq!(text.unwrap(), r#"{"a":2,"z":1}"#);
    }
}
