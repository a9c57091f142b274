//! Ownership: the RRsets an object manages, with the fingerprint of what it applied, held as
//! the zone map's byte keys.

use std::borrow::Cow;
use std::fmt;

use hickory_proto::rr::RecordType;

use super::name::push_label_text;
use super::rrset::RRsetKey;
use super::zone::{KEY_STACK, key_label_spans, key_name, key_slice, key_type};

/// The RRsets an object manages, each with the fingerprint of what it applied.
///
/// Held as the zone map's keys (see `write_key`), sorted, back to back in one buffer: a
/// million-RRset list is about 40 MB, where a map of hickory names took 100-190 MB. Batches
/// go through [`Owned::update`] and [`Owned::retain`], one merge each; [`Owned::insert`] and
/// [`Owned::remove`] move the tail of the buffer, so they are for a handful of entries.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Owned {
    /// Every key, in byte (canonical) order.
    bytes: Vec<u8>,
    /// Where each key ends in `bytes`.
    ends: Vec<usize>,
    /// Each key's fingerprint.
    fps: Vec<u64>,
}

impl Owned {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many RRsets are owned.
    pub fn len(&self) -> usize {
        self.fps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fps.is_empty()
    }

    fn key_at(&self, i: usize) -> &[u8] {
        let start = if i == 0 {
            0
        } else {
            self.ends.get(i - 1).copied().unwrap_or(0)
        };
        let end = self.ends.get(i).copied().unwrap_or(start);
        self.bytes.get(start..end).unwrap_or_default()
    }

    fn find(&self, key: &[u8]) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.key_at(mid).cmp(key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// The fingerprint owned for the zone-map key `key`.
    pub fn get_bytes(&self, key: &[u8]) -> Option<u64> {
        self.find(key).ok().and_then(|i| self.fps.get(i).copied())
    }

    /// The fingerprint owned for `key`.
    pub fn get(&self, key: &RRsetKey) -> Option<&u64> {
        let mut stack = [0u8; KEY_STACK];
        let mut heap = Vec::new();
        let bytes = key_slice(&key.name, key.rtype, &mut stack, &mut heap);
        self.find(bytes).ok().and_then(|i| self.fps.get(i))
    }

    pub fn contains_key(&self, key: &RRsetKey) -> bool {
        self.get(key).is_some()
    }

    /// Every entry as zone-map key bytes and fingerprint, in key order.
    pub fn entries(&self) -> impl Iterator<Item = (&[u8], u64)> + '_ {
        (0..self.len()).map(|i| (self.key_at(i), self.fps.get(i).copied().unwrap_or(0)))
    }

    /// Every entry as its owner name in presentation form (as [`name_to_text`] writes the
    /// decoded key's name), its type and fingerprint, in key order: the stored list of a
    /// million RRsets is written from this without building a `Name` per entry.
    ///
    /// [`name_to_text`]: super::name_to_text
    pub fn texts(&self) -> impl Iterator<Item = (String, RecordType, u64)> + '_ {
        self.entries()
            .map(|(k, fp)| (key_owner_text(k), key_type(k), fp))
    }

    /// Every entry, its key decoded, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (RRsetKey, u64)> + '_ {
        self.entries().map(|(k, fp)| (decode_key(k), fp))
    }

    /// Every owned RRset's key, decoded, in key order.
    pub fn keys(&self) -> impl Iterator<Item = RRsetKey> + '_ {
        self.entries().map(|(k, _)| decode_key(k))
    }

    /// Owns `key` with fingerprint `fp`; the fingerprint it had, if any.
    pub fn insert(&mut self, key: RRsetKey, fp: u64) -> Option<u64> {
        let bytes = super::owned_key(&key.name, key.rtype);
        match self.find(&bytes) {
            Ok(i) => self.fps.get_mut(i).map(|old| std::mem::replace(old, fp)),
            Err(i) => {
                let at = if i == 0 { 0 } else { self.ends[i - 1] };
                self.bytes.splice(at..at, bytes.iter().copied());
                for end in &mut self.ends[i..] {
                    *end += bytes.len();
                }
                self.ends.insert(i, at + bytes.len());
                self.fps.insert(i, fp);
                None
            }
        }
    }

    /// Stops owning `key`; the fingerprint it had, if any.
    pub fn remove(&mut self, key: &RRsetKey) -> Option<u64> {
        let bytes = super::owned_key(&key.name, key.rtype);
        let i = self.find(&bytes).ok()?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.bytes.drain(start..self.ends[i]);
        self.ends.remove(i);
        for end in &mut self.ends[i..] {
            *end -= bytes.len();
        }
        Some(self.fps.remove(i))
    }

    /// Appends an entry known to sort after every other.
    fn push(&mut self, key: &[u8], fp: u64) {
        self.bytes.extend_from_slice(key);
        self.ends.push(self.bytes.len());
        self.fps.push(fp);
    }

    fn last_key(&self) -> Option<&[u8]> {
        self.len().checked_sub(1).map(|i| self.key_at(i))
    }

    /// Owns every `set` entry (its fingerprint replacing an older one) and stops owning
    /// every `unset` key, in one merge. An entry in both is owned.
    pub fn update(&mut self, mut set: Vec<(Cow<'_, [u8]>, u64)>, mut unset: Vec<Cow<'_, [u8]>>) {
        if set.is_empty() && unset.is_empty() {
            return;
        }
        // Stable: of equal keys the later stays later, and the merge keeps the last.
        set.sort_by(|a, b| a.0.cmp(&b.0));
        unset.sort_unstable();
        self.merge(set.iter().map(|(k, fp)| (k.as_ref(), *fp)), &unset);
    }

    /// [`Owned::update`] for `set` entries already in key order (of equal keys the last
    /// wins) and `unset` sorted: no copy of the batch is made.
    pub fn merge<S: AsRef<[u8]>, K: AsRef<[u8]>>(
        &mut self,
        set: impl Iterator<Item = (S, u64)>,
        unset: &[K],
    ) {
        let old = std::mem::take(self);
        self.bytes.reserve(old.bytes.len());
        self.ends.reserve(old.len());
        self.fps.reserve(old.len());
        let mut new = set.peekable();
        for (key, fp) in old.entries() {
            while let Some((k, f)) = new.next_if(|(k, _)| k.as_ref() < key) {
                self.push_or_replace(k.as_ref(), f);
            }
            if new.peek().is_some_and(|(k, _)| k.as_ref() == key) {
                while let Some((k, f)) = new.next_if(|(k, _)| k.as_ref() == key) {
                    self.push_or_replace(k.as_ref(), f);
                }
            } else if unset.binary_search_by(|u| u.as_ref().cmp(key)).is_err() {
                self.push(key, fp);
            }
        }
        for (k, f) in new {
            self.push_or_replace(k.as_ref(), f);
        }
        self.shrink();
    }

    /// Appends, or replaces the fingerprint of the last entry when `key` is its key.
    fn push_or_replace(&mut self, key: &[u8], fp: u64) {
        if self.last_key() == Some(key) {
            if let Some(last) = self.fps.last_mut() {
                *last = fp;
            }
        } else {
            self.push(key, fp);
        }
    }

    /// Keeps only the entries `keep` accepts (given key bytes and fingerprint, in key order).
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8], u64) -> bool) {
        let old = std::mem::take(self);
        for (key, fp) in old.entries() {
            if keep(key, fp) {
                self.push(key, fp);
            }
        }
        self.shrink();
    }

    fn shrink(&mut self) {
        self.bytes.shrink_to_fit();
        self.ends.shrink_to_fit();
        self.fps.shrink_to_fit();
    }

    /// A list from entries given as key bytes: appended as they come while they arrive in
    /// key order (as a stored list does), merged once at the end otherwise.
    pub fn from_key_bytes<K: AsRef<[u8]>>(entries: impl IntoIterator<Item = (K, u64)>) -> Self {
        let mut owned = Owned::new();
        let mut late: Vec<(Cow<'static, [u8]>, u64)> = Vec::new();
        for (key, fp) in entries {
            let key = key.as_ref();
            if owned.last_key().is_none_or(|last| last < key) {
                owned.push(key, fp);
            } else {
                late.push((Cow::Owned(key.to_vec()), fp));
            }
        }
        owned.update(late, Vec::new());
        owned.shrink();
        owned
    }
}

/// The RRset key that zone-map key bytes stand for.
pub fn decode_key(key: &[u8]) -> RRsetKey {
    RRsetKey {
        name: key_name(key),
        rtype: key_type(key),
    }
}

impl FromIterator<(RRsetKey, u64)> for Owned {
    fn from_iter<T: IntoIterator<Item = (RRsetKey, u64)>>(iter: T) -> Self {
        Owned::from_key_bytes(
            iter.into_iter()
                .map(|(k, fp)| (super::owned_key(&k.name, k.rtype), fp)),
        )
    }
}

/// One merge for the whole batch.
impl Extend<(RRsetKey, u64)> for Owned {
    fn extend<T: IntoIterator<Item = (RRsetKey, u64)>>(&mut self, iter: T) {
        let set = iter
            .into_iter()
            .map(|(k, fp)| (Cow::Owned(super::owned_key(&k.name, k.rtype)), fp))
            .collect();
        self.update(set, Vec::new());
    }
}

impl<const N: usize> From<[(RRsetKey, u64); N]> for Owned {
    fn from(entries: [(RRsetKey, u64); N]) -> Self {
        entries.into_iter().collect()
    }
}

impl fmt::Debug for Owned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.iter()
                    .map(|(k, fp)| (format!("{} {}", k.name, k.rtype), fp)),
            )
            .finish()
    }
}

/// The owner name of a zone map key in presentation form: its labels sit in the key from
/// the root down (`00 01` after each, `00 ff` for a zero byte, `00 00` at the end).
fn key_owner_text(key: &[u8]) -> String {
    let spans = key_label_spans(key);
    if spans.is_empty() {
        return ".".to_string();
    }
    let mut out = String::with_capacity(key.len() + 8);
    for &(from, to) in spans.iter().rev() {
        let label = key.get(from..to).unwrap_or_default();
        let mut bytes = label.iter().copied();
        // `00 ff` stands for a zero byte: the `ff` is skipped.
        let unescaped = std::iter::from_fn(|| {
            let b = bytes.next()?;
            if b == 0 {
                bytes.next();
            }
            Some(b)
        });
        push_label_text(unescaped, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::Name;
    use hickory_proto::rr::domain::Label;

    use super::*;
    use crate::dns::model::name_to_text;

    #[test]
    fn texts_write_each_owner_as_its_decoded_name_prints() {
        let odd = Name::from_labels(vec![
            Label::from_raw_bytes(b"a.b").unwrap(),
            Label::from_raw_bytes(b"s p\\\"@$;()").unwrap(),
            Label::from_raw_bytes(&[0, 7, 0x7f, 0xff, b'Q']).unwrap(),
            Label::from_raw_bytes(b"Example").unwrap(),
            Label::from_raw_bytes(b"com").unwrap(),
        ])
        .unwrap();
        let mut owned = Owned::new();
        owned.insert(RRsetKey::new(&odd, RecordType::TXT), 1);
        owned.insert(RRsetKey::new(&Name::root(), RecordType::NS), 2);
        owned.insert(key("www.Example.com.", RecordType::AAAA), 3);
        owned.insert(key("example.com.", RecordType::MX), 4);
        let texts: Vec<(String, RecordType, u64)> = owned.texts().collect();
        let decoded: Vec<(String, RecordType, u64)> = owned
            .iter()
            .map(|(k, fp)| (name_to_text(&k.name), k.rtype, fp))
            .collect();
        assert_eq!(texts, decoded);
        assert_eq!(texts.len(), 4);
        assert!(
            texts.iter().any(|(t, _, _)| t
                == "a\\.b.s\\032p\\\\\\\"\\@\\$\\;\\(\\).\\000\\007\\127\\255q.example.com."),
            "{texts:?}"
        );
        assert!(texts.iter().any(|(t, _, _)| t == "."), "{texts:?}");
    }

    fn key(name: &str, rtype: RecordType) -> RRsetKey {
        RRsetKey::new(&Name::from_ascii(name).unwrap(), rtype)
    }

    #[test]
    fn single_and_batch_changes_agree_with_a_map() {
        let www = key("WWW.example.com.", RecordType::A);
        let mail = key("mail.example.com.", RecordType::MX);
        let apex = key("example.com.", RecordType::NS);
        let mut one = Owned::new();
        assert_eq!(one.insert(www.clone(), 1), None);
        assert_eq!(one.insert(mail.clone(), 2), None);
        assert_eq!(one.insert(apex.clone(), 3), None);
        assert_eq!(one.insert(www.clone(), 4), Some(1));
        assert_eq!(one.get(&key("www.example.com.", RecordType::A)), Some(&4));
        assert!(!one.contains_key(&key("www.example.com.", RecordType::AAAA)));
        // Canonical order: the apex first, then its children.
        let names: Vec<String> = one
            .keys()
            .map(|k| format!("{} {}", k.name, k.rtype))
            .collect();
        assert_eq!(
            names,
            [
                "example.com. NS",
                "mail.example.com. MX",
                "www.example.com. A"
            ]
        );
        assert_eq!(one.remove(&mail), Some(2));
        assert_eq!(one.remove(&mail), None);
        assert_eq!(one.len(), 2);

        let mut batch: Owned = [(apex.clone(), 3), (mail.clone(), 2)].into();
        let kb = |k: &RRsetKey| Cow::Owned(super::super::owned_key(&k.name, k.rtype));
        batch.update(vec![(kb(&www), 1), (kb(&www), 4)], vec![kb(&mail)]);
        assert_eq!(batch, one);
        batch.retain(|_, fp| fp != 3);
        assert_eq!(batch, Owned::from([(www.clone(), 4)]));
        // Out of order input is sorted; the later of two equal keys wins.
        let unsorted = Owned::from([(www.clone(), 9), (apex.clone(), 3), (www.clone(), 4)]);
        assert_eq!(unsorted, one);
    }
}
