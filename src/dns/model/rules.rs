//! Rules that span RRsets (CNAME alone, nothing at the apex that belongs to the parent, no SOA).

use hickory_proto::rr::{Name, RecordType};

use super::name::{name_eq, name_to_text};
use super::rrset::{RRset, RRsetKey};
use super::zone::owned_key;

/// A rule that spans RRsets, broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("SOA is managed by the server and cannot be listed")]
    Soa,
    #[error("a CNAME cannot be at the zone apex")]
    CnameAtApex,
    #[error("a CNAME RRset holds exactly one record, this one has {0}")]
    CnameCount(usize),
    #[error("DS records at the apex belong in the parent zone")]
    DsAtApex,
    #[error("{} has a CNAME and other data ({}); a CNAME must stand alone", name_to_text(.name), join_types(.others))]
    CnameAndOtherData {
        name: Box<Name>,
        others: Vec<RecordType>,
    },
}

fn join_types(types: &[RecordType]) -> String {
    types
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rules that span RRsets: CNAME beside other data, CNAME or DS at the apex, CNAME
/// with more than one record, SOA. Returns sentences naming the RRset.
pub fn semantic_errors(origin: &Name, rrsets: &[RRset]) -> Vec<RuleError> {
    let indexed: Vec<(usize, RRset)> = rrsets.iter().cloned().enumerate().collect();
    semantic_errors_indexed(origin, &indexed)
        .into_iter()
        .map(|(_, m)| m)
        .collect()
}

pub(crate) fn semantic_errors_indexed(
    origin: &Name,
    sets: &[(usize, RRset)],
) -> Vec<(usize, RuleError)> {
    let mut errors = set_errors(origin, sets);
    // Sorted by the zone map's byte key of (name, ANY), stably: memcmp instead of label-wise
    // comparison, and no map node or name copy per RRset.
    let mut by_name: Vec<(Vec<u8>, usize)> = (sets.iter().enumerate())
        .map(|(at, (_, set))| (owned_key(&set.name, RecordType::ANY), at))
        .collect();
    by_name.sort_by(|a, b| a.0.cmp(&b.0));
    for group in by_name.chunk_by(|a, b| a.0 == b.0) {
        if group.len() > 1 {
            let entries: Vec<&(usize, RRset)> = group.iter().map(|(_, at)| &sets[*at]).collect();
            name_errors(&entries, &mut errors);
        }
    }
    errors
}

/// [`semantic_errors_indexed`] for RRsets in canonical order (zone map key order), as zone
/// text gives them: the RRsets of a name are neighbours there, so no key is built or sorted.
pub(crate) fn semantic_errors_in_key_order(
    origin: &Name,
    sets: &[(usize, RRset)],
) -> Vec<(usize, RuleError)> {
    let mut errors = set_errors(origin, sets);
    for group in sets.chunk_by(|a, b| name_eq(&a.1.name, &b.1.name)) {
        if group.len() > 1 {
            let entries: Vec<&(usize, RRset)> = group.iter().collect();
            name_errors(&entries, &mut errors);
        }
    }
    errors
}

/// The rules of one RRset on its own.
fn set_errors(origin: &Name, sets: &[(usize, RRset)]) -> Vec<(usize, RuleError)> {
    let mut errors = Vec::new();
    let apex = origin.to_lowercase();
    for (index, set) in sets {
        if set.rtype == RecordType::SOA {
            errors.push((*index, RuleError::Soa));
        }
        if set.rtype == RecordType::CNAME {
            if name_eq(&set.name, &apex) {
                errors.push((*index, RuleError::CnameAtApex));
            }
            if set.len() > 1 {
                errors.push((*index, RuleError::CnameCount(set.len())));
            }
        }
        if set.rtype == RecordType::DS && name_eq(&set.name, &apex) {
            errors.push((*index, RuleError::DsAtApex));
        }
    }
    errors
}

/// A CNAME beside other data at one name, given the RRsets of that name in order.
fn name_errors(entries: &[&(usize, RRset)], errors: &mut Vec<(usize, RuleError)>) {
    if !entries.iter().any(|(_, s)| s.rtype == RecordType::CNAME) {
        return;
    }
    let others: Vec<RecordType> = entries
        .iter()
        .filter(|(_, s)| s.rtype != RecordType::CNAME)
        .map(|(_, s)| s.rtype)
        .collect();
    // Named as the first RRset given at this name writes it.
    let name = &entries[0].1.name;
    for (index, s) in entries {
        if s.rtype == RecordType::CNAME {
            errors.push((
                *index,
                RuleError::CnameAndOtherData {
                    name: Box::new(RRsetKey::new(name, RecordType::ANY).name),
                    others: others.clone(),
                },
            ));
        }
    }
}
