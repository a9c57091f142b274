//! One RRset of a [`Zone`](super::Zone) in one allocation: `key | ttl | records`.
//!
//! The key is the zone map's key (`zone::write_key`), the TTL a big-endian u32, and each
//! record its canonical RDATA behind a length: a big-endian u16, or `ff ff` then a
//! big-endian u32 for the (non-wire) markers of data hickory cannot encode, which may be
//! longer. Records are sorted by their bytes, without duplicates.
//!
//! Keys are prefix-free (the name is closed by `00 00`, then two type bytes), so the byte
//! order of whole entries is the order of their keys, and the entry of a key is the first
//! one at or after the bare key that starts with it. A map of entries then needs no
//! separate value: one heap block per RRset instead of a key, a `Vec` and a block per record.

/// Length of the key at the start of `entry`.
pub(super) fn key_len(entry: &[u8]) -> usize {
    let mut i = 0;
    while let Some(&b) = entry.get(i) {
        if b != 0 {
            i += 1;
            continue;
        }
        match entry.get(i + 1) {
            // `00 00` closes the name; the type's two bytes follow.
            Some(0) => return (i + 4).min(entry.len()),
            // `00 01` ends a label, `00 ff` is a zero byte inside one.
            _ => i += 2,
        }
    }
    entry.len()
}

/// The parts of an entry.
#[derive(Clone, Copy)]
pub(super) struct View<'a> {
    pub(super) key: &'a [u8],
    pub(super) ttl: u32,
    /// TTL and records: what two entries of one key compare by.
    pub(super) value: &'a [u8],
}

impl<'a> View<'a> {
    pub(super) fn of(entry: &'a [u8]) -> Self {
        let (key, value) = entry.split_at(key_len(entry));
        let ttl = value
            .first_chunk::<4>()
            .map_or(0, |t| u32::from_be_bytes(*t));
        View { key, ttl, value }
    }

    /// Each record's canonical RDATA, in order.
    pub(super) fn rdatas(self) -> Rdatas<'a> {
        Rdatas(self.value.get(4..).unwrap_or_default())
    }
}

/// The records of an entry.
#[derive(Clone)]
pub(super) struct Rdatas<'a>(&'a [u8]);

impl<'a> Iterator for Rdatas<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (short, rest) = self.0.split_first_chunk::<2>()?;
        let (len, rest) = match u16::from_be_bytes(*short) {
            u16::MAX => {
                let (long, rest) = rest.split_first_chunk::<4>()?;
                (usize::try_from(u32::from_be_bytes(*long)).ok()?, rest)
            }
            n => (usize::from(n), rest),
        };
        let Some((rdata, rest)) = rest.split_at_checked(len) else {
            self.0 = &[];
            return None;
        };
        self.0 = rest;
        Some(rdata)
    }
}

fn len_prefix(len: usize) -> usize {
    if len < usize::from(u16::MAX) { 2 } else { 6 }
}

/// The entry of `key` holding `rdatas` (sorted, no duplicates), allocated at its exact size.
pub(super) fn pack(key: &[u8], ttl: u32, rdatas: &[&[u8]]) -> Box<[u8]> {
    let size = key.len()
        + 4
        + rdatas
            .iter()
            .map(|r| len_prefix(r.len()) + r.len())
            .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(key);
    out.extend_from_slice(&ttl.to_be_bytes());
    for rdata in rdatas {
        match u16::try_from(rdata.len()) {
            Ok(n) if n != u16::MAX => out.extend_from_slice(&n.to_be_bytes()),
            _ => {
                out.extend_from_slice(&u16::MAX.to_be_bytes());
                let n = u32::try_from(rdata.len()).unwrap_or(u32::MAX);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
        out.extend_from_slice(rdata);
    }
    // Capacity is the exact size: no reallocation here.
    out.into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_give_back_key_ttl_and_records() {
        // `a.` type A, a label with a zero byte before it: `00 ff` must not end the key.
        let key = [0x00, 0xff, b'a', 0x00, 0x01, 0x00, 0x00, 0x00, 0x01];
        let long = vec![7u8; 70_000];
        let entry = pack(&key, 300, &[&[1, 2, 3, 4], &[], &long]);
        assert_eq!(key_len(&entry), key.len());
        let view = View::of(&entry);
        assert_eq!(view.key, key);
        assert_eq!(view.ttl, 300);
        let got: Vec<&[u8]> = view.rdatas().collect();
        assert_eq!(got, [&[1u8, 2, 3, 4][..], &[][..], &long[..]]);
        assert_eq!(entry.len(), key.len() + 4 + 2 + 4 + 2 + 6 + 70_000);
        let empty = pack(&key, 5, &[]);
        assert_eq!(View::of(&empty).rdatas().count(), 0);
    }
}
