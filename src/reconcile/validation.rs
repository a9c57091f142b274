//! `spec.records` to RRsets: every entry checked, every problem named by its entry.

use std::collections::HashMap;

use hickory_proto::rr::{Name, RecordType};

use crate::api::dns_zone::RecordSet;
use crate::api::shared;
use crate::dns::model::{
    NameError, RRset, RRsetKey, RdataError, RuleError, parse_owner, parse_spec_rdata,
    semantic_errors_indexed,
};

// The cross-RRset rules live in the model because zone text (parsed there) obeys them too.
pub use crate::dns::model::semantic_errors;

/// One refused entry of `spec.records`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("records[{index}] ({name} {rtype}): {problem}")]
pub struct RecordError {
    /// Index in `spec.records`.
    pub index: usize,
    /// The owner name as written.
    pub name: String,
    /// The record type.
    pub rtype: shared::RecordType,
    /// What is wrong.
    pub problem: RecordProblem,
}

/// What is wrong with one entry of `spec.records`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordProblem {
    #[error(transparent)]
    Owner(#[from] NameError),
    #[error("ttl {0} is not between 0 and 2147483647")]
    Ttl(i64),
    #[error("data lists no record")]
    NoData,
    #[error(transparent)]
    Data(#[from] RdataError),
    #[error("{key} is already listed at records[{first}]; list each RRset once")]
    Duplicate { key: Box<RRsetKey>, first: usize },
    #[error(transparent)]
    Rule(#[from] RuleError),
}

/// Parses `spec.records` into RRsets, checking what the schema cannot. Every problem
/// is reported, each naming its entry.
pub fn parse_record_sets(
    origin: &Name,
    default_ttl: u32,
    records: &[RecordSet],
) -> Result<Vec<RRset>, Vec<RecordError>> {
    let mut errors = Vec::new();
    let mut sets: Vec<(usize, RRset)> = Vec::new();
    // Hashed, not ordered: an ordered map compares names label by label on every insert.
    let mut seen: HashMap<RRsetKey, usize> = HashMap::with_capacity(records.len());
    for (index, rs) in records.iter().enumerate() {
        let err = |problem: RecordProblem| RecordError {
            index,
            name: rs.name.clone(),
            rtype: rs.record_type,
            problem,
        };
        let rtype = RecordType::from(rs.record_type);
        let owner = match parse_owner(&rs.name, origin) {
            Ok(n) => n,
            Err(e) => {
                errors.push(err(e.into()));
                continue;
            }
        };
        let ttl = match rs.ttl {
            None => default_ttl,
            Some(t) => match u32::try_from(t).ok().filter(|t| *t <= i32::MAX as u32) {
                Some(t) => t,
                None => {
                    errors.push(err(RecordProblem::Ttl(t)));
                    continue;
                }
            },
        };
        if rs.data.is_empty() {
            errors.push(err(RecordProblem::NoData));
            continue;
        }
        let mut rdatas = Vec::with_capacity(rs.data.len());
        for text in &rs.data {
            match parse_spec_rdata(rtype, origin, text) {
                Ok(r) => rdatas.push(r),
                Err(e) => errors.push(err(e.into())),
            }
        }
        let set = RRset::new(owner, rtype, ttl, rdatas);
        if let Some(first) = seen.insert(set.key(), index) {
            errors.push(err(RecordProblem::Duplicate {
                key: Box::new(set.key()),
                first,
            }));
            continue;
        }
        sets.push((index, set));
    }
    for (index, e) in semantic_errors_indexed(origin, &sets) {
        let rs = &records[index];
        errors.push(RecordError {
            index,
            name: rs.name.clone(),
            rtype: rs.record_type,
            problem: e.into(),
        });
    }
    if errors.is_empty() {
        Ok(sets.into_iter().map(|(_, s)| s).collect())
    } else {
        errors.sort_by_key(|e| e.index);
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::shared::RecordType as ApiType;
    use crate::dns::model::test_support::*;
    use crate::dns::model::*;
    use std::str::FromStr;

    fn rs(name: &str, t: ApiType, ttl: Option<i64>, data: &[&str]) -> RecordSet {
        RecordSet {
            name: name.to_string(),
            record_type: t,
            ttl,
            data: data.iter().map(|s| s.to_string()).collect(),
            owner_group: None,
        }
    }

    #[test]
    fn record_error_names_index_owner_and_type() {
        let records = vec![
            rs("@", ApiType::NS, None, &["ns1.example.net."]),
            rs("mail", ApiType::MX, None, &["10 mail"]),
            rs("x", ApiType::TXT, None, &["ok"]),
            rs("www", ApiType::A, None, &["192.0.2.300"]),
        ];
        let errs = parse_record_sets(&origin(), 300, &records).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].to_string(),
            "records[3] (www A): \"192.0.2.300\" is not an IPv4 address"
        );
    }

    #[test]
    fn owner_names_ttl_defaulting_and_case() {
        let records = vec![
            rs("@", ApiType::MX, None, &["10 mail"]),
            rs("WWW", ApiType::A, Some(60), &["192.0.2.1"]),
            rs("api.example.com.", ApiType::A, None, &["192.0.2.2"]),
            rs("*.dev", ApiType::A, None, &["192.0.2.3"]),
            rs("_sip._tcp", ApiType::SRV, None, &["0 5 5060 sip"]),
        ];
        let sets = parse_record_sets(&origin(), 3600, &records).unwrap();
        let names: Vec<String> = sets.iter().map(|s| name_to_text(&s.name)).collect();
        assert_eq!(
            names,
            [
                "example.com.",
                "WWW.example.com.",
                "api.example.com.",
                "*.dev.example.com.",
                "_sip._tcp.example.com."
            ]
        );
        let ttls: Vec<u32> = sets.iter().map(|s| s.ttl).collect();
        assert_eq!(ttls, [3600, 60, 3600, 3600, 3600]);
        assert_eq!(
            sets[1].key().name,
            Name::from_str("www.example.com.").unwrap()
        );
        assert_eq!(sets[1].to_lines(), ["WWW.example.com. 60 IN A 192.0.2.1"]);
    }

    #[test]
    fn unquoted_spec_txt_is_one_string() {
        let records = vec![
            rs(
                "@",
                ApiType::TXT,
                None,
                &["v=spf1 include:_spf.example.net ~all"],
            ),
            rs("q", ApiType::TXT, None, &["\"part one\" \"part two\""]),
            rs("e", ApiType::TXT, None, &["semi\\;colon \\200"]),
        ];
        let sets = parse_record_sets(&origin(), 300, &records).unwrap();
        let lines: Vec<String> = sets.iter().flat_map(|s| s.to_lines()).collect();
        assert_eq!(
            lines,
            [
                "example.com. 300 IN TXT \"v=spf1 include:_spf.example.net ~all\"",
                "q.example.com. 300 IN TXT \"part one\" \"part two\"",
                "e.example.com. 300 IN TXT \"semi;colon \\200\"",
            ]
        );
        // parse_rdata itself keeps zone-file rules: unquoted words are separate strings.
        let r = parse_rdata(RecordType::TXT, &origin(), "a b").unwrap();
        assert_eq!(rdata_to_text(&r), "\"a\" \"b\"");
    }

    #[test]
    fn owner_outside_the_zone_is_refused() {
        let records = vec![rs("www.example.org.", ApiType::A, None, &["192.0.2.1"])];
        let errs = parse_record_sets(&origin(), 300, &records).unwrap_err();
        assert!(
            errs[0]
                .to_string()
                .contains("www.example.org. is outside the zone example.com."),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn semantic_rules_are_enforced() {
        let cases: Vec<(Vec<RecordSet>, &str)> = vec![
            (
                vec![
                    rs("www", ApiType::A, None, &["192.0.2.1"]),
                    rs("www", ApiType::CNAME, None, &["other"]),
                ],
                "records[1] (www CNAME): www.example.com. has a CNAME and other data (A)",
            ),
            (
                vec![rs("@", ApiType::CNAME, None, &["other"])],
                "CNAME cannot be at the zone apex",
            ),
            (
                vec![rs("x", ApiType::CNAME, None, &["a", "b"])],
                "exactly one record",
            ),
            (
                vec![
                    rs("www", ApiType::A, None, &["192.0.2.1"]),
                    rs("WWW.example.com.", ApiType::A, None, &["192.0.2.2"]),
                ],
                "records[1] (WWW.example.com. A): www.example.com. A is already listed at records[0]",
            ),
            (
                vec![rs(
                    "@",
                    ApiType::DS,
                    None,
                    &["1 13 2 e2d3c916f6deeac73294e8268fb5885044a833fc5459588f4a9184cfc41a5766"],
                )],
                "parent zone",
            ),
            (
                vec![rs("x", ApiType::A, Some(-1), &["192.0.2.1"])],
                "ttl -1",
            ),
        ];
        for (records, want) in cases {
            let errs = parse_record_sets(&origin(), 300, &records).unwrap_err();
            let all: Vec<String> = errs.iter().map(ToString::to_string).collect();
            assert!(all.iter().any(|e| e.contains(want)), "{want}: {all:?}");
        }
    }

    #[test]
    fn forgotten_final_dot_is_refused() {
        let err = parse_rdata(RecordType::MX, &origin(), "10 mail.example.com")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("would mean mail.example.com.example.com.; write mail.example.com."),
            "{err}"
        );
        let records = vec![rs("www.example.com", ApiType::A, None, &["192.0.2.1"])];
        assert!(parse_record_sets(&origin(), 300, &records).is_err());
        assert!(parse_rdata(RecordType::CNAME, &origin(), "www.example.net").is_ok());
    }
}
