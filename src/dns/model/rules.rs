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
    let mut errors = Vec::new();
    let apex = origin.to_lowercase();
    // Sorted by the zone map's byte key of (name, ANY), stably: memcmp instead of label-wise
    // comparison, and no map node or name copy per RRset.
    let mut by_name: Vec<(Vec<u8>, usize)> = Vec::with_capacity(sets.len());
    for (at, (index, set)) in sets.iter().enumerate() {
        by_name.push((owned_key(&set.name, RecordType::ANY), at));
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
    by_name.sort_by(|a, b| a.0.cmp(&b.0));
    for group in by_name.chunk_by(|a, b| a.0 == b.0) {
        if group.len() < 2 {
            continue;
        }
        let entries: Vec<&(usize, RRset)> = group.iter().map(|(_, at)| &sets[*at]).collect();
        if entries.iter().any(|(_, s)| s.rtype == RecordType::CNAME) {
            let others: Vec<RecordType> = entries
                .iter()
                .filter(|(_, s)| s.rtype != RecordType::CNAME)
                .map(|(_, s)| s.rtype)
                .collect();
            // Named as the first RRset given at this name writes it.
            let name = &entries[0].1.name;
            for (index, s) in &entries {
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
    }
    errors
}
