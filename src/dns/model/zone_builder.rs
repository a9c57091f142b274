//! A [`Zone`] built from a stream of records (a transfer), in one go.
//!
//! Inserting a million records one by one searches the map twice per record and leaves its
//! nodes half full. The builder packs each run of records of one RRset as it arrives, sorts
//! the entries once, merging RRsets whose records came apart, and hands the zone the sorted
//! vector (`entry_set`). A record whose case or data canonical form would lose (see
//! `zone::Verbatim`) switches the builder to record-by-record inserts from there on, so the
//! result is always what [`Zone::insert`] of every record in order gives.
//!
//! Servers send a zone in canonical order (BIND, Knot), which is the map's order: while the
//! packed RRsets keep arriving in strictly ascending key order, there is nothing to sort or
//! merge at the end, and they can be diffed as they come (`diff::StreamDiff`).

use hickory_proto::rr::{Name, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use super::packed_set::{View, pack};
use super::zone::{Entry, Zone, embedded_names_have_upper, has_upper, key_type, write_key};

/// Collects records into a [`Zone`]; see the module documentation.
pub struct ZoneBuilder {
    origin: Name,
    /// Set once a record needed [`Zone::insert`]: every later record goes there too.
    fallback: Option<Zone>,
    entries: Vec<Box<[u8]>>,
    /// Records over `entries`, as packed (duplicates within a run dropped).
    records: usize,
    /// Whether `entries` are in strictly ascending key order: no RRset came apart yet.
    ordered: bool,
    /// The first SOA RRset, kept out of `entries` until an RRset that sorts after it comes:
    /// a transfer opens with it, ahead of the apex RRsets that sort before it (NS), which
    /// would otherwise break the order.
    soa: Option<Box<[u8]>>,
    /// The RRset being received: its key, lowest TTL, and records (`spans` into `data`).
    run_key: Vec<u8>,
    run_ttl: u32,
    run_data: Vec<u8>,
    run_spans: Vec<(usize, usize)>,
    key: Vec<u8>,
    rdata: Vec<u8>,
}

impl ZoneBuilder {
    pub fn new(origin: Name) -> Self {
        Self {
            origin,
            fallback: None,
            entries: Vec::new(),
            records: 0,
            ordered: true,
            soa: None,
            run_key: Vec::with_capacity(256),
            run_ttl: 0,
            run_data: Vec::with_capacity(512),
            run_spans: Vec::new(),
            key: Vec::with_capacity(256),
            rdata: Vec::with_capacity(512),
        }
    }

    /// Adds one record, as [`Zone::insert`] would.
    pub fn push(&mut self, record: Record) {
        if let Some(zone) = self.fallback.as_mut() {
            zone.insert(record);
            return;
        }
        if has_upper(record.name()) || embedded_names_have_upper(record.data()) {
            return self.fall_back(record);
        }
        self.rdata.clear();
        let encoded = {
            let mut encoder = BinEncoder::new(&mut self.rdata);
            // Canonical (RFC 4034 6.2): no compression; embedded names are lower case
            // already (checked above), so this is `canonical_rdata`'s output.
            encoder.set_canonical_names(true);
            record.data().emit(&mut encoder).is_ok()
        };
        if !encoded {
            return self.fall_back(record);
        }
        self.key.clear();
        write_key(record.name(), record.record_type(), |b| self.key.push(b));
        if self.key != self.run_key || self.run_spans.is_empty() {
            self.flush();
            std::mem::swap(&mut self.key, &mut self.run_key);
            self.run_ttl = record.ttl();
        } else {
            self.run_ttl = self.run_ttl.min(record.ttl());
        }
        let start = self.run_data.len();
        self.run_data.extend_from_slice(&self.rdata);
        self.run_spans.push((start, self.run_data.len()));
    }

    /// Packs the RRset being received (also called when no record of it is to come).
    pub(crate) fn flush(&mut self) {
        if self.run_spans.is_empty() {
            return;
        }
        let data = &self.run_data;
        let mut rdatas: Vec<&[u8]> = self.run_spans.iter().map(|&(a, b)| &data[a..b]).collect();
        rdatas.sort_unstable();
        rdatas.dedup();
        self.records += rdatas.len();
        let entry = pack(&self.run_key, self.run_ttl, &rdatas);
        let first = self.entries.is_empty() && self.soa.is_none();
        if first && key_type(&self.run_key) == RecordType::SOA {
            self.soa = Some(entry);
            return self.clear_run();
        }
        // The held SOA goes in its place once an RRset after it comes. A second SOA of its
        // key is out of order, whether the first is placed yet or not.
        let soa_key = self.soa.as_ref().map(|soa| View::of(soa).key);
        let soa_again = soa_key == Some(&self.run_key[..]);
        if soa_key.is_some_and(|k| k < &self.run_key[..])
            && let Some(soa) = self.soa.take()
        {
            self.place(soa);
        }
        self.ordered &= !soa_again;
        self.place(entry);
        self.clear_run();
    }

    /// Appends `entry`, noting whether the order still holds.
    fn place(&mut self, entry: Box<[u8]>) {
        let key = View::of(&entry).key;
        self.ordered &= self
            .entries
            .last()
            .is_none_or(|last| View::of(last).key < key);
        self.entries.push(entry);
    }

    fn clear_run(&mut self) {
        self.run_data.clear();
        self.run_spans.clear();
    }

    /// How many RRsets are packed so far.
    pub(crate) fn packed(&self) -> usize {
        self.entries.len()
    }

    /// The packed RRsets from the `from`th on, while every RRset so far arrived whole and in
    /// ascending order, so that each is final; `None` once one did not (or a record needed
    /// [`Zone::insert`]).
    pub(crate) fn final_entries(&self, from: usize) -> Option<impl Iterator<Item = Entry<'_>>> {
        let whole = self.ordered && self.fallback.is_none();
        whole.then(|| {
            self.entries
                .get(from..)
                .unwrap_or_default()
                .iter()
                .map(|e| Entry::packed(e))
        })
    }

    /// From here on records go through [`Zone::insert`], onto what was built so far.
    fn fall_back(&mut self, record: Record) {
        let mut zone = self.build();
        zone.insert(record);
        self.fallback = Some(zone);
    }

    /// The entries so far as a zone.
    fn build(&mut self) -> Zone {
        self.flush();
        // Still held, the SOA sorts after every entry (one after it would have placed it).
        if let Some(soa) = self.soa.take() {
            self.place(soa);
        }
        let mut entries = std::mem::take(&mut self.entries);
        if self.ordered {
            // Sorted and unique as they came: no sort or merge pass (45 ms at 1M).
            return Zone::from_sorted(self.origin.clone(), entries, self.records);
        }
        // A server sends its zone in an order close to the map's (BIND and Knot: canonical
        // order): the stable sort finds the sorted runs and costs a pass where they are, the
        // unstable one a full sort every time (50 ms of a 0.6 s 1M-record sync from Knot).
        entries.sort();
        let mut merged: Vec<Box<[u8]>> = Vec::with_capacity(entries.len());
        let mut records = 0usize;
        let mut i = 0;
        while i < entries.len() {
            let key = View::of(&entries[i]).key;
            let same = entries[i + 1..]
                .iter()
                .take_while(|e| View::of(e).key == key)
                .count();
            let group = &entries[i..=i + same];
            if same == 0 {
                records += View::of(&group[0]).rdatas().count();
                merged.push(std::mem::take(&mut entries[i]));
            } else {
                // One RRset's records came apart in the stream: one entry of them all.
                let ttl = group.iter().map(|e| View::of(e).ttl).min().unwrap_or(0);
                let mut rdatas: Vec<&[u8]> =
                    group.iter().flat_map(|e| View::of(e).rdatas()).collect();
                rdatas.sort_unstable();
                rdatas.dedup();
                records += rdatas.len();
                merged.push(pack(key, ttl, &rdatas));
            }
            i += same + 1;
        }
        drop(entries);
        Zone::from_sorted(self.origin.clone(), merged, records)
    }

    /// The zone of every record pushed.
    pub fn finish(mut self) -> Zone {
        match self.fallback.take() {
            Some(zone) => zone,
            None => self.build(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::model::test_support::*;
    use crate::dns::model::*;
    use hickory_proto::rr::RecordType;

    fn record(name: &str, ttl: u32, rtype: RecordType, data: &str) -> Record {
        let name = Name::from_ascii(name).unwrap();
        Record::from_rdata(name, ttl, parse_rdata(rtype, &origin(), data).unwrap())
    }

    /// Whatever the order, split RRsets and duplicates, the built zone is the one record
    /// inserts give, upper case met midway included.
    #[test]
    fn a_built_zone_equals_the_inserted_one() {
        let a = RecordType::A;
        let stream = vec![
            record("example.com.", 3600, RecordType::NS, "ns1.example.com."),
            record("www.example.com.", 300, a, "192.0.2.2"),
            record("www.example.com.", 60, a, "192.0.2.1"),
            record("b.example.com.", 300, a, "192.0.2.9"),
            // The www RRset again, apart from its first records, with a duplicate.
            record("www.example.com.", 300, a, "192.0.2.1"),
            record("www.example.com.", 300, a, "192.0.2.3"),
            record("a.example.com.", 300, RecordType::TXT, "\"x\""),
            record("example.com.", 3600, RecordType::NS, "ns0.example.com."),
        ];
        let mut odd = stream.clone();
        odd.insert(4, record("MX.example.com.", 300, a, "192.0.2.4"));
        odd.push(record("www.example.com.", 10, a, "192.0.2.7"));
        odd.push(record("mx.example.com.", 300, a, "192.0.2.5"));
        for stream in [stream, odd] {
            let mut inserted = Zone::new(origin());
            let mut builder = ZoneBuilder::new(origin());
            for r in &stream {
                inserted.insert(r.clone());
                builder.push(r.clone());
            }
            let built = builder.finish();
            assert_eq!(built, inserted);
            assert_eq!(built.record_count(), inserted.record_count());
            let www = built.get_by(&upper(&Name::from_ascii("www.example.com.").unwrap()), a);
            assert_eq!(
                www,
                inserted.get_by(&Name::from_ascii("www.example.com.").unwrap(), a)
            );
            let names =
                |z: &Zone| -> Vec<String> { z.rrsets().map(|s| s.name.to_ascii()).collect() };
            assert_eq!(names(&built), names(&inserted), "owner case kept");
        }
    }

    /// RRsets sent whole in canonical order are final as they come; one sent in two parts
    /// makes them all provisional, as does a record that needs `Zone::insert`.
    #[test]
    fn rrsets_in_canonical_order_are_final_as_they_come() {
        let a = RecordType::A;
        // As a transfer sends them: the SOA first, ahead of the apex NS.
        let ordered = [
            Record::from_rdata(origin(), 3600, soa(1)),
            record("example.com.", 3600, RecordType::NS, "ns1.example.com."),
            record("a.example.com.", 300, a, "192.0.2.1"),
            record("a.example.com.", 300, a, "192.0.2.2"),
            record("a.example.com.", 300, RecordType::TXT, "\"x\""),
            record("b.a.example.com.", 300, a, "192.0.2.3"),
            record("b.example.com.", 300, a, "192.0.2.4"),
        ];
        let finals = |stream: &[Record]| {
            let mut builder = ZoneBuilder::new(origin());
            stream.iter().for_each(|r| builder.push(r.clone()));
            builder.flush();
            builder.final_entries(0).map(|e| e.count())
        };
        // The SOA among them, in its place after the NS.
        assert_eq!(finals(&ordered), Some(6));
        let mut split = ordered.to_vec();
        split.push(record("a.example.com.", 300, a, "192.0.2.9"));
        assert_eq!(finals(&split), None);
        let mut upper_case = ordered.to_vec();
        upper_case.push(record("C.example.com.", 300, a, "192.0.2.5"));
        assert_eq!(finals(&upper_case), None);
    }
}
