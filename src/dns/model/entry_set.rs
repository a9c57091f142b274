//! The set of a zone's packed RRset entries (see `packed_set`), in key order.
//!
//! A zone built from a transfer arrives sorted. Kept as that sorted vector, it needs no
//! B-tree built once the last record is in (18 ms, and a second index beside the vector
//! while it is built, at 1M RRsets), and a lookup is a bisection. A zone edited more than a
//! few times becomes a B-tree, where an insert does not move every entry after it.
//!
//! Entries compare as bytes, and no key is a prefix of another (a key ends with the `00 00`
//! that closes its name, which no label byte can make, then the type): entries sort by their
//! keys, and replacing an entry with another of the same key keeps its place.

use std::collections::BTreeSet;
use std::collections::btree_set;
use std::ops::Bound;

/// Inserts and removals a sorted vector takes in place before it becomes a B-tree. Each
/// moves the entries after it (8 MB on average at 1M RRsets, about 0.4 ms), so the few of
/// an IXFR cost less than building the tree (18 ms at 1M), and many do not add up to more
/// than a few builds.
const EDITS_IN_PLACE: u32 = 32;

#[derive(Clone, Debug)]
pub(super) enum EntrySet {
    /// Strictly ascending; `edits` inserts and removals made in place so far.
    Sorted {
        entries: Vec<Box<[u8]>>,
        edits: u32,
    },
    Tree(BTreeSet<Box<[u8]>>),
}

impl Default for EntrySet {
    /// Empty, as a B-tree: a zone that starts empty is filled by inserts.
    fn default() -> Self {
        EntrySet::Tree(BTreeSet::new())
    }
}

impl PartialEq for EntrySet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for EntrySet {}

impl EntrySet {
    /// Entries already in strictly ascending order (a zone builder's output).
    pub(super) fn sorted(mut entries: Vec<Box<[u8]>>) -> Self {
        debug_assert!(entries.windows(2).all(|w| w[0] < w[1]));
        // Grown by doubling, as a transfer came in: up to half of it spare.
        entries.shrink_to_fit();
        EntrySet::Sorted { entries, edits: 0 }
    }

    pub(super) fn len(&self) -> usize {
        match self {
            EntrySet::Sorted { entries, .. } => entries.len(),
            EntrySet::Tree(set) => set.len(),
        }
    }

    /// Every entry, in order.
    pub(super) fn iter(&self) -> Iter<'_> {
        match self {
            EntrySet::Sorted { entries, .. } => Iter::Sorted(entries.iter()),
            EntrySet::Tree(set) => Iter::Tree(set.range::<[u8], _>(..)),
        }
    }

    /// The entries from the first one not below `bound` on, in order.
    pub(super) fn from(&self, bound: &[u8]) -> Iter<'_> {
        match self {
            EntrySet::Sorted { entries, .. } => {
                let at = entries.partition_point(|e| &e[..] < bound);
                Iter::Sorted(entries[at..].iter())
            }
            EntrySet::Tree(set) => {
                Iter::Tree(set.range::<[u8], _>((Bound::Included(bound), Bound::Unbounded)))
            }
        }
    }

    /// Adds an entry whose key the set does not hold.
    pub(super) fn insert(&mut self, entry: Box<[u8]>) {
        match self.editable() {
            EntrySet::Sorted { entries, edits } => {
                if let Err(at) = entries.binary_search(&entry) {
                    entries.insert(at, entry);
                    *edits += 1;
                }
            }
            EntrySet::Tree(set) => {
                set.insert(entry);
            }
        }
    }

    /// Removes the entry `entry`.
    pub(super) fn remove(&mut self, entry: &[u8]) {
        match self.editable() {
            EntrySet::Sorted { entries, edits } => {
                if let Ok(at) = entries.binary_search_by(|e| (**e).cmp(entry)) {
                    entries.remove(at);
                    *edits += 1;
                }
            }
            EntrySet::Tree(set) => {
                set.remove(entry);
            }
        }
    }

    /// Puts `new` in place of `old`, an entry of the same key.
    pub(super) fn replace(&mut self, old: &[u8], new: Box<[u8]>) {
        match self {
            EntrySet::Sorted { entries, .. } => {
                match entries.binary_search_by(|e| (**e).cmp(old)) {
                    // Same key, same place: nothing moves.
                    Ok(at) => entries[at] = new,
                    Err(_) => self.insert(new),
                }
            }
            EntrySet::Tree(set) => {
                set.remove(old);
                set.insert(new);
            }
        }
    }

    /// The set, turned into a B-tree once the vector has taken its share of edits.
    fn editable(&mut self) -> &mut Self {
        if let EntrySet::Sorted { entries, edits } = self
            && *edits >= EDITS_IN_PLACE
        {
            // Sorted and unique: the tree is built bottom-up with full nodes.
            *self = EntrySet::Tree(std::mem::take(entries).into_iter().collect());
        }
        self
    }
}

/// An [`EntrySet`]'s entries in order.
pub(super) enum Iter<'a> {
    Sorted(std::slice::Iter<'a, Box<[u8]>>),
    Tree(btree_set::Range<'a, Box<[u8]>>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        match self {
            Iter::Sorted(it) => it.next().map(|e| &e[..]),
            Iter::Tree(it) => it.next().map(|e| &e[..]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(s: &str) -> Box<[u8]> {
        s.as_bytes().into()
    }

    fn contents(set: &EntrySet) -> Vec<String> {
        set.iter()
            .map(|e| String::from_utf8(e.to_vec()).unwrap())
            .collect()
    }

    /// The same edits on a sorted vector (past the point where it becomes a tree) and on a
    /// tree leave the same entries, found from the same bounds.
    #[test]
    fn a_sorted_vector_edits_as_a_tree_does() {
        let start: Vec<Box<[u8]>> = (0..100).map(|i| entry(&format!("k{i:03}"))).collect();
        let mut sorted = EntrySet::sorted(start.clone());
        let mut tree = EntrySet::Tree(start.into_iter().collect());
        for i in 0..(2 * EDITS_IN_PLACE) {
            let add = entry(&format!("k{:03}x", i * 3));
            let gone = format!("k{:03}", i * 3 + 1);
            for set in [&mut sorted, &mut tree] {
                set.insert(add.clone());
                set.remove(gone.as_bytes());
                // Another entry of the same key in a zone; here one that sorts in its place.
                let old = format!("k{:03}", i * 3 + 2);
                set.replace(old.as_bytes(), entry(&format!("{old}!")));
            }
            assert_eq!(contents(&sorted), contents(&tree), "after edit {i}");
            assert!(sorted == tree);
        }
        assert!(
            matches!(sorted, EntrySet::Tree(_)),
            "many edits make a tree"
        );
        for bound in ["", "k05", "k050", "k050y", "z"] {
            let a: Vec<&[u8]> = sorted.from(bound.as_bytes()).collect();
            let b: Vec<&[u8]> = tree.from(bound.as_bytes()).collect();
            assert_eq!(a, b, "from {bound:?}");
        }
    }

    /// A few edits stay in the vector, where lookups still find what they should.
    #[test]
    fn a_few_edits_stay_in_place() {
        let mut set = EntrySet::sorted(vec![entry("a"), entry("c"), entry("e")]);
        set.insert(entry("d"));
        set.remove(b"a");
        set.replace(b"e", entry("e!"));
        assert!(matches!(set, EntrySet::Sorted { edits: 2, .. }));
        assert_eq!(contents(&set), ["c", "d", "e!"]);
        assert_eq!(set.from(b"cc").next(), Some(&b"d"[..]));
        assert_eq!(set.from(b"f").next(), None);
        assert_eq!(set.len(), 3);
    }
}
