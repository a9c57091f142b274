//! Zone-file text (a `spec.recordsFrom` ConfigMap) to RRsets.

use std::collections::BTreeMap;

use hickory_proto::rr::{Name, RecordType};

use super::lexer::{LexError, Token, tokenize};
use super::name::{NameError, in_zone, name_to_text, parse_name, parse_owner};
use super::rdata_parse::{RdataError, rdata_from_tokens};
use super::rrset::{RRset, RRsetKey};
use super::rules::{RuleError, semantic_errors_in_key_order};
use super::zone::owned_key;

/// One refused line of zone text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub problem: LineProblem,
}

/// What is wrong with one line of zone text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineProblem {
    #[error(transparent)]
    Lex(LexError),
    #[error("$ORIGIN {} is outside the zone {}", name_to_text(.origin), name_to_text(.zone))]
    OriginOutside { origin: Box<Name>, zone: Box<Name> },
    #[error("$ORIGIN: {0}")]
    OriginName(NameError),
    #[error("$ORIGIN takes one name")]
    OriginArity,
    #[error("$TTL takes one TTL like 3600 or 1h")]
    TtlDirective,
    #[error("$INCLUDE is not supported")]
    Include,
    #[error("unknown directive {0}")]
    UnknownDirective(String),
    #[error("the first record needs an owner name")]
    NoOwner,
    #[error("an owner name cannot be quoted")]
    QuotedOwner,
    #[error(transparent)]
    Owner(NameError),
    #[error("{0:?} is not a TTL")]
    NotATtl(String),
    #[error("class {0} is not supported, only IN")]
    Class(String),
    #[error("no record type")]
    NoType,
    #[error("unknown record type {0}")]
    UnknownType(String),
    #[error("SOA is managed by the server; leave it out of the records")]
    Soa,
    #[error(transparent)]
    Rdata(RdataError),
    #[error("TTL {ttl} differs from {first_ttl} given for {key} on line {first_line}")]
    TtlDiffers {
        ttl: u32,
        first_ttl: u32,
        key: Box<RRsetKey>,
        first_line: usize,
    },
    #[error(transparent)]
    Rule(RuleError),
}

/// Why zone text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZoneTextError {
    /// Some lines are wrong (at most the first 20 are kept).
    #[error("{}", join_errors(.0))]
    Lines(Vec<LineError>),
}

pub(super) fn join_errors(errors: &[LineError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// How many errors are collected before giving up.
pub(super) const MAX_ERRORS: usize = 20;

/// Parses zone-file text (a `spec.recordsFrom` ConfigMap): `$ORIGIN` (inside the zone),
/// `$TTL`, owner inheritance, parentheses, comments, optional class `IN`, TTLs with
/// units (`1h30m`). Records of one name and type merge into one RRset; SOA, other
/// types and `$INCLUDE` are refused.
pub fn parse_zone_text(
    origin: &Name,
    default_ttl: u32,
    text: &str,
) -> Result<Vec<RRset>, ZoneTextError> {
    let lines = tokenize(text, false).map_err(|(line, e)| {
        ZoneTextError::Lines(vec![LineError {
            line,
            problem: LineProblem::Lex(e),
        }])
    })?;
    let mut errors: Vec<LineError> = Vec::new();
    let mut current_origin = origin.clone();
    let mut ttl_default = default_ttl;
    let mut last_owner: Option<Name> = None;
    // Keyed by the zone map's byte key: memcmp instead of label-wise name comparison, which
    // dominated parsing a million records.
    let mut sets: BTreeMap<Vec<u8>, (usize, RRset)> = BTreeMap::new();
    for line in lines {
        if errors.len() >= MAX_ERRORS {
            break;
        }
        let mut fail = |problem: LineProblem| {
            errors.push(LineError {
                line: line.number,
                problem,
            })
        };
        let toks = &line.tokens;
        let first = &toks[0];
        if !line.leading_blank && !first.quoted && first.raw.starts_with('$') {
            match first.raw.to_ascii_uppercase().as_str() {
                "$ORIGIN" => match toks.get(1).map(|t| parse_name(t.raw, &current_origin)) {
                    Some(Ok(n)) if in_zone(&n, origin) && toks.len() == 2 => current_origin = n,
                    Some(Ok(n)) if toks.len() == 2 => fail(LineProblem::OriginOutside {
                        origin: Box::new(n),
                        zone: Box::new(origin.clone()),
                    }),
                    Some(Err(e)) => fail(LineProblem::OriginName(e)),
                    _ => fail(LineProblem::OriginArity),
                },
                "$TTL" => match toks.get(1).and_then(|t| parse_ttl(t.raw)) {
                    Some(t) if toks.len() == 2 => ttl_default = t,
                    _ => fail(LineProblem::TtlDirective),
                },
                "$INCLUDE" => fail(LineProblem::Include),
                other => fail(LineProblem::UnknownDirective(other.to_string())),
            }
            continue;
        }
        let mut rest: &[Token] = toks;
        let owner = if line.leading_blank {
            match &last_owner {
                Some(o) => o.clone(),
                None => {
                    fail(LineProblem::NoOwner);
                    continue;
                }
            }
        } else {
            rest = &toks[1..];
            match parse_owner(first.raw, &current_origin) {
                Ok(n) if !first.quoted => n,
                Ok(_) => {
                    fail(LineProblem::QuotedOwner);
                    continue;
                }
                Err(e) => {
                    fail(LineProblem::Owner(e));
                    continue;
                }
            }
        };
        last_owner = Some(owner.clone());
        // [TTL] [class] type or [class] [TTL] type
        let mut ttl = None;
        let mut rtype = None;
        while let Some(tok) = rest.first() {
            rest = &rest[1..];
            let word = tok.raw.to_ascii_uppercase();
            if ttl.is_none() && tok.raw.as_bytes().first().is_some_and(u8::is_ascii_digit) {
                match parse_ttl(tok.raw) {
                    Some(t) => ttl = Some(t),
                    None => {
                        fail(LineProblem::NotATtl(tok.raw.to_string()));
                        break;
                    }
                }
            } else if word == "IN" {
                continue;
            } else if matches!(word.as_str(), "CH" | "HS" | "CS" | "NONE" | "ANY") {
                fail(LineProblem::Class(word));
                break;
            } else {
                rtype = Some(word);
                break;
            }
        }
        let Some(type_text) = rtype else {
            if errors.last().is_none_or(|e| e.line != line.number) {
                errors.push(LineError {
                    line: line.number,
                    problem: LineProblem::NoType,
                });
            }
            continue;
        };
        let Ok(rtype) = type_text.parse::<RecordType>() else {
            errors.push(LineError {
                line: line.number,
                problem: LineProblem::UnknownType(type_text),
            });
            continue;
        };
        if rtype == RecordType::SOA {
            errors.push(LineError {
                line: line.number,
                problem: LineProblem::Soa,
            });
            continue;
        }
        let data_text = rest.iter().map(|t| t.raw).collect::<Vec<_>>().join(" ");
        let rdata = match rdata_from_tokens(rtype, &current_origin, &data_text, rest) {
            Ok(r) => r,
            Err(e) => {
                errors.push(LineError {
                    line: line.number,
                    problem: LineProblem::Rdata(e),
                });
                continue;
            }
        };
        let ttl = ttl.unwrap_or(ttl_default);
        let key = owned_key(&owner, rtype);
        match sets.get_mut(&key) {
            Some((first_line, set)) => {
                if set.ttl != ttl {
                    errors.push(LineError {
                        line: line.number,
                        problem: LineProblem::TtlDiffers {
                            ttl,
                            first_ttl: set.ttl,
                            key: Box::new(RRsetKey::new(&owner, rtype)),
                            first_line: *first_line,
                        },
                    });
                    continue;
                }
                set.insert_sorted(rdata);
            }
            None => {
                sets.insert(
                    key,
                    (line.number, RRset::new(owner, rtype, ttl, vec![rdata])),
                );
            }
        }
    }
    let indexed: Vec<(usize, RRset)> = sets.into_values().collect();
    for (line, e) in semantic_errors_in_key_order(origin, &indexed) {
        errors.push(LineError {
            line,
            problem: LineProblem::Rule(e),
        });
    }
    if errors.is_empty() {
        Ok(indexed.into_iter().map(|(_, s)| s).collect())
    } else {
        errors.sort_by_key(|e| e.line);
        errors.truncate(MAX_ERRORS);
        Err(ZoneTextError::Lines(errors))
    }
}

/// A TTL: seconds, or BIND units (`1w2d3h4m5s`), at most 2147483647.
pub fn parse_ttl(text: &str) -> Option<u32> {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<u32>().ok().filter(|t| *t <= i32::MAX as u32);
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
        let n: u64 = digits.parse().ok()?;
        digits.clear();
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    if !digits.is_empty() {
        return None;
    }
    u32::try_from(total).ok().filter(|t| *t <= i32::MAX as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::model::test_support::*;
    use crate::dns::model::*;
    use hickory_proto::rr::{Name, RecordType};
    use std::str::FromStr;

    #[test]
    fn zone_text_parses_directives_inheritance_and_parentheses() {
        let text = r#"
$TTL 1h
@       IN  NS   ns1.example.net.
        IN  NS   ns2.example.net. ; inherited owner
www 300 IN  A    192.0.2.1
www     300 A    192.0.2.2
$ORIGIN sub.example.com.
host    IN 2d TXT ( "part one"
                    "part two" )
mail    MX  10 @
"#;
        let sets = parse_zone_text(&origin(), 3600, text).unwrap();
        let lines: Vec<String> = sets.iter().flat_map(|s| s.to_lines()).collect();
        assert_eq!(
            lines,
            [
                "example.com. 3600 IN NS ns1.example.net.",
                "example.com. 3600 IN NS ns2.example.net.",
                "host.sub.example.com. 172800 IN TXT \"part one\" \"part two\"",
                "mail.sub.example.com. 3600 IN MX 10 sub.example.com.",
                "www.example.com. 300 IN A 192.0.2.1",
                "www.example.com. 300 IN A 192.0.2.2",
            ]
        );
    }

    #[test]
    fn zone_text_errors_name_their_lines() {
        let text = "www A 192.0.2.1\nwww 60 A 192.0.2.2\n@ SOA a. b. 1 2 3 4 5\n$INCLUDE other\n$ORIGIN example.org.\nbad A 1.2.3.999\nx HINFO a b\n";
        let err = parse_zone_text(&origin(), 300, text).unwrap_err();
        let ZoneTextError::Lines(lines) = &err;
        let got: Vec<usize> = lines.iter().map(|l| l.line).collect();
        assert_eq!(got, [2, 3, 4, 5, 6, 7], "{err}");
        let msg = err.to_string();
        assert!(msg.contains("line 2: TTL 60 differs from 300"), "{msg}");
        assert!(
            msg.contains("line 3: SOA is managed by the server"),
            "{msg}"
        );
        assert!(
            msg.contains("line 6: \"1.2.3.999\" is not an IPv4 address"),
            "{msg}"
        );
        assert!(
            msg.contains("line 7: record type HINFO is not supported"),
            "{msg}"
        );
        // Cross-RRset rules apply to zone text too.
        let err = parse_zone_text(&origin(), 300, "www A 192.0.2.1\nwww CNAME x\n").unwrap_err();
        assert!(err.to_string().contains("CNAME and other data"), "{err}");
        // Parentheses that never close.
        assert!(parse_zone_text(&origin(), 300, "www TXT ( \"a\"\n").is_err());
    }

    #[test]
    fn ttl_units() {
        assert_eq!(parse_ttl("3600"), Some(3600));
        assert_eq!(parse_ttl("1h30m"), Some(5400));
        assert_eq!(parse_ttl("1w"), Some(604_800));
        assert_eq!(parse_ttl("1x"), None);
        assert_eq!(parse_ttl("1h5"), None);
        assert_eq!(parse_ttl("2147483648"), None);
    }

    /// BIND reads what we print, and what BIND prints back parses to the same RRsets.
    #[test]
    fn bind_agrees_with_printed_zone() {
        let mut sets: Vec<RRset> = Vec::new();
        for (i, (t, input, _)) in samples().into_iter().enumerate() {
            let rtype = t;
            let owner = Name::from_str(&format!("n{i}.example.com.")).unwrap();
            let rdata = parse_rdata(rtype, &origin(), input).unwrap();
            sets.push(RRset::new(owner, rtype, 300, vec![rdata]));
        }
        let long = parse_rdata(
            RecordType::TXT,
            &origin(),
            &format!("\"{}\"", "y".repeat(600)),
        )
        .unwrap();
        sets.push(RRset::new(
            Name::from_str("long.example.com.").unwrap(),
            RecordType::TXT,
            300,
            vec![long],
        ));
        let mut text = String::from(
            "example.com. 300 IN SOA ns1.example.net. hostmaster.example.com. 1 3600 600 86400 300\nexample.com. 300 IN NS ns1.example.net.\n",
        );
        for set in &sets {
            for line in set.to_lines() {
                text.push_str(&line);
                text.push('\n');
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("zone");
        std::fs::write(&file, &text).unwrap();
        let out = std::process::Command::new("named-checkzone")
            .args([
                "-i",
                "local",
                "-k",
                "ignore",
                "-D",
                "-o",
                "-",
                "example.com",
            ])
            .arg(&file)
            .output()
            .expect("named-checkzone (bind9-utils) must be installed");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "BIND refused:\n{text}\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dumped: String = stdout
            .lines()
            .filter(|l| l.split_whitespace().nth(3).is_none_or(|t| t != "SOA"))
            .filter(|l| !l.starts_with("zone ") && *l != "OK")
            .map(|l| format!("{l}\n"))
            .collect();
        let back =
            parse_zone_text(&origin(), 300, &dumped).unwrap_or_else(|e| panic!("{e}\n{dumped}"));
        sets.push(RRset::new(
            origin(),
            RecordType::NS,
            300,
            vec![parse_rdata(RecordType::NS, &origin(), "ns1.example.net.").unwrap()],
        ));
        let ours = Zone::from_rrsets(origin(), sets);
        let theirs = Zone::from_rrsets(origin(), back);
        for set in ours.rrsets() {
            assert_eq!(
                theirs.get(&set.key()),
                Some(set.clone()),
                "{}\n{dumped}",
                set.key()
            );
        }
        assert_eq!(ours.rrset_count(), theirs.rrset_count());
    }
}
