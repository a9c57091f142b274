//! The ACL decision, pure: given the old and new DnsZone spec and the requesting user,
//! may the change go through? No I/O here, so the webhook and the tests share one truth.
//!
//! VinylDNS semantics (its `AccessValidations` and `ACLRuleOrdering`), mapped onto
//! Kubernetes users and groups. Where several rules match one RRset, the winner is the
//! first by, in turn: how the rule names the user (`user:` before `group:` before
//! `group:system:authenticated`, VinylDNS's "all users"), a record mask before none (a mask
//! of `.*` counts as none), fewer record types (none listed counts as all), the lower
//! access level, and the earlier rule. The winner alone decides, so a `NoAccess` rule that
//! wins denies even when a lower-ranked rule would grant.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;

use regex::Regex;

use crate::api::dns_zone::{AccessLevel, AclRule, DnsZoneSpec, RecordSet};
use crate::api::shared::RecordType;

/// Kubernetes' superuser group: its members bypass RBAC, and so they bypass the ACL too
/// (VinylDNS's "super" users), which keeps a zone without `adminGroup` manageable.
pub const SUPERUSER_GROUP: &str = "system:masters";
/// Every authenticated Kubernetes user is in this group; a rule naming it is VinylDNS's
/// rule "for all users" and ranks after rules naming the user's own groups.
pub const EVERYONE_GROUP: &str = "system:authenticated";

/// The authenticated user behind an admission request.
pub struct Requester<'a> {
    pub username: &'a str,
    pub groups: &'a [String],
}

impl Requester<'_> {
    fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// The group an RRset created by this user belongs to in a shared zone: the first one
    /// that is not a Kubernetes `system:` group (those hold every user, or every service
    /// account, and would make the RRset everybody's).
    pub fn owner_group(&self) -> Option<&str> {
        self.groups
            .iter()
            .map(String::as_str)
            .find(|g| !g.starts_with("system:"))
    }

    /// `bob (groups devs)`: the `system:` groups every user has are left out as noise.
    fn describe(&self) -> String {
        let own: Vec<&str> = self
            .groups
            .iter()
            .map(String::as_str)
            .filter(|g| !g.starts_with("system:"))
            .collect();
        if own.is_empty() {
            format!("{} (no groups)", self.username)
        } else {
            format!("{} (groups {})", self.username, own.join(", "))
        }
    }
}

/// The answer to one admission review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// The sentence shown to the user by kubectl.
    Denied(String),
}

/// Who administers a zone, as far as this review is concerned.
enum Admins<'z> {
    /// No `acl`, no `adminGroup`, not shared: Kubernetes RBAC alone decides.
    Unprotected,
    Group(&'z str),
    /// Protected by an ACL or `shared`, but without `adminGroup`: only superusers.
    SuperusersOnly,
}

impl<'z> Admins<'z> {
    fn of(zone: &'z DnsZoneSpec) -> Self {
        match zone.admin_group.as_deref() {
            Some(g) => Admins::Group(g),
            None if zone.shared || zone.acl.as_ref().is_some_and(|a| !a.rules.is_empty()) => {
                Admins::SuperusersOnly
            }
            None => Admins::Unprotected,
        }
    }

    fn admit(&self, who: &Requester) -> bool {
        who.in_group(SUPERUSER_GROUP)
            || match self {
                Admins::Unprotected => true,
                Admins::Group(g) => who.in_group(g),
                Admins::SuperusersOnly => false,
            }
    }

    /// `only members of dns-admins may change spec.backend`
    fn only(&self, what: &str) -> String {
        match self {
            Admins::Group(g) => format!("only members of {g} may {what}"),
            _ => {
                format!("only members of {SUPERUSER_GROUP} may {what} (spec.adminGroup is not set)")
            }
        }
    }
}

/// create (old None) / update of a DnsZone
///
/// A create is decided by RBAC alone: there is no ACL in force yet, and the rules the
/// creator writes cannot restrict the creator. An update is judged by the ACL, admin group
/// and `shared` of the old object, so an edit cannot grant itself the access it needs.
pub fn review_zone(old: Option<&DnsZoneSpec>, new: &DnsZoneSpec, who: &Requester) -> Verdict {
    let Some(old) = old else {
        return Verdict::Allowed;
    };
    let admins = Admins::of(old);
    if admins.admit(who) {
        return Verdict::Allowed;
    }
    let denied = |reason: String| {
        Verdict::Denied(format!(
            "{} may not change {}: {reason}",
            who.describe(),
            old.zone_name
        ))
    };
    if let Some(field) = changed_zone_field(old, new) {
        return denied(admins.only(&format!("change spec.{field}")));
    }
    if old.records_from != new.records_from {
        // The webhook cannot see inside the ConfigMaps, so it cannot judge them RRset by RRset.
        return denied(admins.only("change spec.recordsFrom"));
    }
    review_records(old, new, who)
}

/// creating a ZoneSync for `zone` (VinylDNS: sync needs zone admin)
pub fn review_zone_sync(zone: &DnsZoneSpec, who: &Requester) -> Verdict {
    let admins = Admins::of(zone);
    if admins.admit(who) {
        Verdict::Allowed
    } else {
        Verdict::Denied(format!(
            "{} may not sync {}: {}",
            who.describe(),
            zone.zone_name,
            admins.only("sync the zone")
        ))
    }
}

/// shared zones: fill `records[].ownerGroup` of RRsets the requester adds without one
///
/// An RRset that already exists keeps its owner when the edit leaves `ownerGroup` out
/// (`kubectl apply` of a manifest written before the webhook stamped it); an RRset that
/// exists unowned stays unowned.
pub fn default_owner_groups(
    old: Option<&DnsZoneSpec>,
    new: &mut DnsZoneSpec,
    who: &Requester,
) -> bool {
    if !new.shared {
        return false;
    }
    let mut existing: HashMap<Key, Option<&str>> = HashMap::new();
    for rs in old.map(|o| o.records.as_slice()).unwrap_or_default() {
        let owner = existing.entry(key(rs, &new.zone_name)).or_default();
        *owner = owner.or(rs.owner_group.as_deref());
    }
    let mut changed = false;
    for rs in new.records.iter_mut().filter(|rs| rs.owner_group.is_none()) {
        let owner = match existing.get(&key(rs, &new.zone_name)) {
            Some(kept) => kept.map(str::to_string),
            None => who.owner_group().map(str::to_string),
        };
        if owner.is_some() {
            rs.owner_group = owner;
            changed = true;
        }
    }
    changed
}

/// The first field outside `records`/`recordsFrom` that differs, by its name in the API.
fn changed_zone_field(old: &DnsZoneSpec, new: &DnsZoneSpec) -> Option<&'static str> {
    // Destructured without `..`: a field added to the spec does not compile here until
    // someone decides whether non-admins may change it.
    let DnsZoneSpec {
        zone_name,
        zone_type,
        description,
        email,
        ttl,
        masters,
        backend,
        transfer,
        records: _,
        records_from: _,
        management,
        sync,
        outgoing,
        acl,
        admin_group,
        shared,
        suspend,
        deletion_policy,
        history_limit,
    } = old;
    [
        ("zoneName", *zone_name != new.zone_name),
        ("type", *zone_type != new.zone_type),
        ("description", *description != new.description),
        ("email", *email != new.email),
        ("ttl", *ttl != new.ttl),
        ("masters", *masters != new.masters),
        ("backend", *backend != new.backend),
        ("transfer", *transfer != new.transfer),
        ("management", *management != new.management),
        ("sync", *sync != new.sync),
        ("outgoing", *outgoing != new.outgoing),
        ("acl", *acl != new.acl),
        ("adminGroup", *admin_group != new.admin_group),
        ("shared", *shared != new.shared),
        ("suspend", *suspend != new.suspend),
        ("deletionPolicy", *deletion_policy != new.deletion_policy),
        ("historyLimit", *history_limit != new.history_limit),
    ]
    .into_iter()
    .find_map(|(name, differs)| differs.then_some(name))
}

/// An RRset's identity: its name relative to the zone (lower case, `@` for the apex) and
/// type. Borrowed from the spec in the usual case, so a 1,000-RRset review allocates little.
type Key<'s> = (Cow<'s, str>, RecordType);

fn key<'s>(rs: &'s RecordSet, zone: &str) -> Key<'s> {
    (relative_name(&rs.name, zone), rs.record_type)
}

/// The name a record mask is matched against: relative to the zone, lower case, `@` for
/// the apex, whichever of the three spellings the spec used. `zone` is lower case (schema).
fn relative_name<'s>(name: &'s str, zone: &str) -> Cow<'s, str> {
    if name == "@" || name.eq_ignore_ascii_case(zone) {
        return Cow::Borrowed("@");
    }
    let relative = match name.strip_suffix('.') {
        Some(stripped) => {
            let in_zone = stripped.len() > zone.len()
                && name.is_char_boundary(name.len() - zone.len())
                && name[name.len() - zone.len()..].eq_ignore_ascii_case(zone)
                && name[..name.len() - zone.len()].ends_with('.');
            if in_zone {
                &name[..name.len() - zone.len() - 1]
            } else {
                // Outside the zone: the spec validation rejects it; keep it recognisable.
                stripped
            }
        }
        None => name,
    };
    if relative.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(relative.to_ascii_lowercase())
    } else {
        Cow::Borrowed(relative)
    }
}

fn absolute_name(rel: &str, zone: &str) -> String {
    if rel == "@" {
        zone.to_string()
    } else {
        format!("{rel}.{zone}")
    }
}

/// The spec entries of one RRset key: one, or more in an invalid spec (which the reconciler
/// rejects), compared entry by entry here; and the first owner given.
struct Entries<'s> {
    first: &'s RecordSet,
    more: Vec<&'s RecordSet>,
    owner: Option<&'s str>,
}

impl Entries<'_> {
    fn same_as(&self, other: &Entries) -> bool {
        same_rrset(self.first, other.first)
            && self.more.len() == other.more.len()
            && self
                .more
                .iter()
                .zip(&other.more)
                .all(|(a, b)| same_rrset(a, b))
    }
}

/// Equal for DNS and for ownership: record order inside an RRset means nothing, so the
/// data is compared as a set when the order differs (sorting only then).
fn same_rrset(a: &RecordSet, b: &RecordSet) -> bool {
    if a.ttl != b.ttl || a.owner_group != b.owner_group || a.data.len() != b.data.len() {
        return false;
    }
    if a.data == b.data {
        return true;
    }
    let mut x: Vec<&String> = a.data.iter().collect();
    let mut y: Vec<&String> = b.data.iter().collect();
    x.sort_unstable();
    y.sort_unstable();
    x == y
}

type Index<'s> = (Vec<Key<'s>>, HashMap<Key<'s>, Entries<'s>>);

fn index<'s>(records: &'s [RecordSet], zone: &str) -> Index<'s> {
    let mut order = Vec::with_capacity(records.len());
    let mut map: HashMap<Key<'s>, Entries<'s>> = HashMap::with_capacity(records.len());
    for rs in records {
        let k = key(rs, zone);
        match map.get_mut(&k) {
            Some(entries) => {
                entries.more.push(rs);
                entries.owner = entries.owner.or(rs.owner_group.as_deref());
            }
            None => {
                order.push(k.clone());
                map.insert(
                    k,
                    Entries {
                        first: rs,
                        more: Vec::new(),
                        owner: rs.owner_group.as_deref(),
                    },
                );
            }
        }
    }
    (order, map)
}

/// The access an operation needs, named as VinylDNS names the levels.
#[derive(Clone, Copy)]
enum Need {
    Write,
    Delete,
}

impl Need {
    fn name(self) -> &'static str {
        match self {
            Need::Write => "Write",
            Need::Delete => "Delete",
        }
    }

    fn granted_by(self, level: AccessLevel) -> bool {
        match self {
            Need::Write => matches!(level, AccessLevel::Write | AccessLevel::Delete),
            Need::Delete => matches!(level, AccessLevel::Delete),
        }
    }
}

fn level_name(level: AccessLevel) -> &'static str {
    match level {
        AccessLevel::NoAccess => "NoAccess",
        AccessLevel::Read => "Read",
        AccessLevel::Write => "Write",
        AccessLevel::Delete => "Delete",
    }
}

/// VinylDNS compares access levels in this order when two rules rank alike: the lesser wins.
fn level_rank(level: AccessLevel) -> u8 {
    match level {
        AccessLevel::NoAccess => 0,
        AccessLevel::Read => 1,
        AccessLevel::Write => 2,
        AccessLevel::Delete => 3,
    }
}

enum Mask {
    All,
    Pattern(Regex),
    /// Does not compile: the rule cannot be judged, so any RRset it might cover is denied.
    Broken(String),
}

/// A rule that applies to the requester, compiled once per review.
struct Applicable<'z> {
    /// 1-based, as users count rules in their YAML.
    number: usize,
    rule: &'z AclRule,
    /// `user bob` / `group devs`: the subject through which the rule reaches the requester.
    via: String,
    mask: Mask,
    rank: (u8, u8, usize, u8, usize),
}

impl Applicable<'_> {
    fn covers_type(&self, t: RecordType) -> bool {
        self.rule.record_types.is_empty() || self.rule.record_types.contains(&t)
    }

    /// `rule 2 grants Write on ^www.* A/AAAA for group devs`
    fn describe(&self) -> String {
        let mut s = format!(
            "rule {} grants {} on {}",
            self.number,
            level_name(self.rule.access_level),
            self.rule.record_mask.as_deref().unwrap_or("all names")
        );
        if !self.rule.record_types.is_empty() {
            let types: Vec<&str> = self.rule.record_types.iter().map(|t| t.as_str()).collect();
            let _ = write!(s, " {}", types.join("/"));
        }
        let _ = write!(s, " for {}", self.via);
        s
    }
}

/// A mask that matches every name ranks as no mask at all (VinylDNS treats `.*` so).
fn matches_everything(mask: &str) -> bool {
    matches!(mask, ".*" | "^.*" | ".*$" | "^.*$")
}

/// The rules that name the requester, ranked best first.
fn applicable<'z>(zone: &'z DnsZoneSpec, who: &Requester) -> Vec<Applicable<'z>> {
    let rules = zone
        .acl
        .as_ref()
        .map(|a| a.rules.as_slice())
        .unwrap_or_default();
    let mut out = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let mut best: Option<(u8, String)> = None;
        for subject in &rule.subjects {
            let found = if let Some(user) = subject.strip_prefix("user:") {
                (user == who.username).then(|| (1, format!("user {user}")))
            } else if let Some(group) = subject.strip_prefix("group:") {
                let tier = if group == EVERYONE_GROUP { 3 } else { 2 };
                who.in_group(group)
                    .then(|| (tier, format!("group {group}")))
            } else {
                None
            };
            if let Some(f) = found
                && best.as_ref().is_none_or(|b| f.0 < b.0)
            {
                best = Some(f);
            }
        }
        let Some((tier, via)) = best else { continue };
        let (mask, mask_tier) = match rule.record_mask.as_deref() {
            None => (Mask::All, 2),
            Some(m) if matches_everything(m) => (Mask::All, 2),
            // Anchored at both ends, as VinylDNS's Java `String.matches` is.
            Some(m) => match Regex::new(&format!("^(?:{m})$")) {
                Ok(re) => (Mask::Pattern(re), 1),
                Err(e) => (Mask::Broken(e.to_string()), 1),
            },
        };
        let types = if rule.record_types.is_empty() {
            RecordType::ALL.len()
        } else {
            rule.record_types.len()
        };
        out.push(Applicable {
            number: i + 1,
            rule,
            via,
            mask,
            rank: (tier, mask_tier, types, level_rank(rule.access_level), i),
        });
    }
    out.sort_by_key(|a| a.rank);
    out
}

/// Why one RRset operation is refused, after the `: ` of the denial.
fn rule_verdict(rules: &[Applicable], name: &str, t: RecordType, need: Need) -> Result<(), String> {
    for rule in rules.iter().filter(|r| r.covers_type(t)) {
        let hit = match &rule.mask {
            Mask::All => true,
            Mask::Pattern(re) => re.is_match(name),
            Mask::Broken(e) => {
                return Err(format!(
                    "rule {} has a recordMask that does not compile: {e}",
                    rule.number
                ));
            }
        };
        if hit {
            return if need.granted_by(rule.rule.access_level) {
                Ok(())
            } else {
                Err(rule.describe())
            };
        }
    }
    // Nothing covers the RRset: name what the user does have, which tells them whom to ask.
    Err(rules
        .first()
        .map_or_else(|| "no rule matches".to_string(), Applicable::describe))
}

fn review_records(old: &DnsZoneSpec, new: &DnsZoneSpec, who: &Requester) -> Verdict {
    let zone = old.zone_name.as_str();
    let rules = applicable(old, who);
    let (old_order, old_map) = index(&old.records, zone);
    let (new_order, new_map) = index(&new.records, zone);
    let mut first: Option<String> = None;
    let mut denials = 0usize;
    let mut deny = |k: &Key, need: Need, why: String| {
        denials += 1;
        if first.is_none() {
            first = Some(format!(
                "{} may not {} {} {}: {why}",
                who.describe(),
                need.name(),
                absolute_name(&k.0, zone),
                k.1.as_str()
            ));
        }
    };
    let operations = new_order
        .iter()
        .filter_map(|k| {
            let now = new_map.get(k)?;
            match old_map.get(k) {
                None => Some((k, Need::Write, None, now.owner)),
                Some(was) if !was.same_as(now) => {
                    Some((k, Need::Write, Some(was.owner), now.owner))
                }
                Some(_) => None,
            }
        })
        .chain(old_order.iter().filter_map(|k| {
            let was = old_map.get(k)?;
            (!new_map.contains_key(k)).then_some((k, Need::Delete, Some(was.owner), None))
        }));
    for (k, need, existing_owner, new_owner) in operations {
        // A non-admin may hand an RRset only to a group of their own (or to nobody).
        if old.shared
            && let Some(g) = new_owner
            && existing_owner.flatten() != Some(g)
            && !who.in_group(g)
        {
            deny(
                k,
                need,
                format!("ownerGroup {g} is not one of {}'s groups", who.username),
            );
            continue;
        }
        let owned_by = if old.shared {
            match existing_owner {
                // Shared zone: anyone may create (VinylDNS shared zones).
                None => continue,
                Some(Some(owner)) if who.in_group(owner) => continue,
                Some(owner) => owner,
            }
        } else {
            None
        };
        if let Err(why) = rule_verdict(&rules, &k.0, k.1, need) {
            let why = match owned_by {
                Some(owner) => format!("owned by group {owner}; {why}"),
                None => why,
            };
            deny(k, need, why);
        }
    }
    match first {
        None => Verdict::Allowed,
        Some(mut text) => {
            if denials > 1 {
                let _ = write!(text, " (and {} more RRsets denied)", denials - 1);
            }
            Verdict::Denied(text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    struct User {
        name: &'static str,
        groups: Vec<String>,
    }

    impl User {
        fn new(name: &'static str, groups: &[&str]) -> Self {
            let mut groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
            // What every authenticated Kubernetes user carries.
            groups.push(EVERYONE_GROUP.to_string());
            User { name, groups }
        }
        fn who(&self) -> Requester<'_> {
            Requester {
                username: self.name,
                groups: &self.groups,
            }
        }
    }

    fn alice() -> User {
        User::new("alice", &["dns-admins"])
    }
    fn bob() -> User {
        User::new("bob", &["devs"])
    }
    fn carol() -> User {
        User::new("carol", &[])
    }
    fn dave() -> User {
        User::new("dave", &["ops"])
    }

    fn spec(v: Value) -> DnsZoneSpec {
        serde_json::from_value(v).unwrap()
    }

    /// The acceptance zone: alice's group administers it, bob's group may Write `^www` A/AAAA.
    fn acceptance_json() -> Value {
        json!({
            "zoneName": "example.com.",
            "type": "Primary",
            "backend": {"server": "127.0.0.1:53"},
            "adminGroup": "dns-admins",
            "acl": {"rules": [
                {"accessLevel": "Write", "subjects": ["group:devs"], "recordMask": "^www", "recordTypes": ["A", "AAAA"]}
            ]},
            "records": [
                {"name": "www", "type": "A", "data": ["192.0.2.10"]},
                {"name": "@", "type": "MX", "data": ["10 mx.example.com."]},
                {"name": "mx", "type": "A", "data": ["192.0.2.25"]}
            ]
        })
    }

    fn edited(base: &Value, edit: impl FnOnce(&mut Value)) -> DnsZoneSpec {
        let mut v = base.clone();
        edit(&mut v);
        spec(v)
    }

    fn review(base: &Value, user: &User, edit: impl FnOnce(&mut Value)) -> Verdict {
        review_zone(Some(&spec(base.clone())), &edited(base, edit), &user.who())
    }

    type Edit = Box<dyn FnOnce(&mut Value)>;

    fn denied(text: &str) -> Verdict {
        Verdict::Denied(text.to_string())
    }

    fn records(v: &mut Value) -> &mut Vec<Value> {
        v["records"].as_array_mut().unwrap()
    }

    #[test]
    fn bob_may_change_www() {
        let base = acceptance_json();
        let v = review(&base, &bob(), |v| {
            v["records"][0]["data"] = json!(["192.0.2.99"])
        });
        assert_eq!(v, Verdict::Allowed);
    }

    #[test]
    fn bob_may_not_delete_www_write_is_not_delete() {
        let base = acceptance_json();
        let v = review(&base, &bob(), |v| {
            records(v).remove(0);
        });
        assert_eq!(
            v,
            denied(
                "bob (groups devs) may not Delete www.example.com. A: rule 1 grants Write on ^www A/AAAA for group devs"
            )
        );
    }

    #[test]
    fn bob_may_not_add_mx() {
        let base = acceptance_json();
        let v = review(&base, &bob(), |v| {
            records(v).push(json!({"name": "mx", "type": "MX", "data": ["10 mx2.example.com."]}))
        });
        assert_eq!(
            v,
            denied(
                "bob (groups devs) may not Write mx.example.com. MX: rule 1 grants Write on ^www A/AAAA for group devs"
            )
        );
    }

    #[test]
    fn the_issue_example_denial_text() {
        let mut base = acceptance_json();
        base["acl"]["rules"] = json!([
            {"accessLevel": "Delete", "subjects": ["group:ops"]},
            {"accessLevel": "Write", "subjects": ["group:devs"], "recordMask": "^www.*"}
        ]);
        records(&mut base)
            .push(json!({"name": "mx", "type": "MX", "data": ["10 mx.example.com."]}));
        let v = review(&base, &bob(), |v| {
            records(v).pop();
        });
        assert_eq!(
            v,
            denied(
                "bob (groups devs) may not Delete mx.example.com. MX: rule 2 grants Write on ^www.* for group devs"
            )
        );
    }

    #[test]
    fn carol_without_rules_may_change_nothing() {
        let base = acceptance_json();
        let c = carol();
        assert_eq!(
            review(&base, &c, |v| v["records"][0]["ttl"] = json!(60)),
            denied("carol (no groups) may not Write www.example.com. A: no rule matches")
        );
        assert_eq!(
            review(&base, &c, |v| v["description"] = json!("mine")),
            denied(
                "carol (no groups) may not change example.com.: only members of dns-admins may change spec.description"
            )
        );
    }

    #[test]
    fn alice_the_admin_may_change_anything() {
        let base = acceptance_json();
        let a = alice();
        assert_eq!(
            review(&base, &a, |v| v["acl"]["rules"] = json!([])),
            Verdict::Allowed
        );
        assert_eq!(
            review(&base, &a, |v| {
                v["records"] = json!([]);
                v["adminGroup"] = json!("ops");
                v["shared"] = json!(true);
                v["backend"]["server"] = json!("10.0.0.1:53");
            }),
            Verdict::Allowed
        );
    }

    #[test]
    fn bob_may_change_nothing_outside_records() {
        let base = acceptance_json();
        let b = bob();
        let cases: Vec<(&str, Edit)> = vec![
            (
                "acl",
                Box::new(|v| v["acl"]["rules"][0]["accessLevel"] = json!("Delete")),
            ),
            ("adminGroup", Box::new(|v| v["adminGroup"] = json!("devs"))),
            (
                "backend",
                Box::new(|v| v["backend"]["server"] = json!("10.0.0.1:53")),
            ),
            ("shared", Box::new(|v| v["shared"] = json!(true))),
            ("email", Box::new(|v| v["email"] = json!("dns@example.com"))),
            ("ttl", Box::new(|v| v["ttl"] = json!(60))),
            ("suspend", Box::new(|v| v["suspend"] = json!(true))),
            (
                "recordsFrom",
                Box::new(|v| {
                    v["recordsFrom"] = json!([{"configMapRef": {"name": "part1", "key": "zone"}}])
                }),
            ),
        ];
        for (field, edit) in cases {
            assert_eq!(
                review(&base, &b, edit),
                denied(&format!(
                    "bob (groups devs) may not change example.com.: only members of dns-admins may change spec.{field}"
                )),
                "{field}"
            );
        }
    }

    #[test]
    fn an_edit_cannot_grant_itself_access() {
        // bob's edit adds a rule giving devs Delete everywhere and deletes mx in one go:
        // the old ACL decides, and the ACL change alone is admin-only.
        let base = acceptance_json();
        let v = review(&base, &bob(), |v| {
            v["acl"]["rules"]
                .as_array_mut()
                .unwrap()
                .push(json!({"accessLevel": "Delete", "subjects": ["group:devs"]}));
            records(v).pop();
        });
        assert!(
            matches!(&v, Verdict::Denied(t) if t.ends_with("may change spec.acl")),
            "{v:?}"
        );
    }

    #[test]
    fn create_and_unprotected_zones_are_rbac_only() {
        let c = carol();
        let zone = spec(acceptance_json());
        assert_eq!(review_zone(None, &zone, &c.who()), Verdict::Allowed);
        let mut plain = acceptance_json();
        plain.as_object_mut().unwrap().remove("acl");
        plain.as_object_mut().unwrap().remove("adminGroup");
        assert_eq!(
            review(&plain, &c, |v| {
                v["records"] = json!([]);
                v["adminGroup"] = json!("ops");
            }),
            Verdict::Allowed
        );
        assert_eq!(review_zone_sync(&spec(plain), &c.who()), Verdict::Allowed);
    }

    #[test]
    fn acl_without_admin_group_leaves_zone_settings_to_superusers() {
        let mut base = acceptance_json();
        base.as_object_mut().unwrap().remove("adminGroup");
        assert_eq!(
            review(&base, &bob(), |v| v["acl"]["rules"] = json!([])),
            denied(
                "bob (groups devs) may not change example.com.: only members of system:masters may change spec.acl (spec.adminGroup is not set)"
            )
        );
        // Records still follow the rules.
        assert_eq!(
            review(&base, &bob(), |v| v["records"][0]["data"] =
                json!(["192.0.2.1"])),
            Verdict::Allowed
        );
        let root = User::new("root", &[SUPERUSER_GROUP]);
        assert_eq!(
            review(&base, &root, |v| v["acl"]["rules"] = json!([])),
            Verdict::Allowed
        );
    }

    #[test]
    fn zone_sync_needs_a_zone_admin() {
        let zone = spec(acceptance_json());
        assert_eq!(review_zone_sync(&zone, &alice().who()), Verdict::Allowed);
        assert_eq!(
            review_zone_sync(&zone, &bob().who()),
            denied(
                "bob (groups devs) may not sync example.com.: only members of dns-admins may sync the zone"
            )
        );
        let root = User::new("root", &[SUPERUSER_GROUP]);
        assert_eq!(review_zone_sync(&zone, &root.who()), Verdict::Allowed);
    }

    /// Rules for one user, then the verdict of bob writing or deleting one RRset.
    fn decide(rules: Value, name: &str, rtype: &str, delete: bool) -> Verdict {
        let mut base = acceptance_json();
        base["acl"]["rules"] = rules;
        let rs = json!({"name": name, "type": rtype, "data": ["x"]});
        if delete {
            records(&mut base).push(rs);
            review(&base, &bob(), |v| {
                records(v).pop();
            })
        } else {
            review(&base, &bob(), |v| records(v).push(rs))
        }
    }

    fn allowed(v: &Verdict) -> bool {
        *v == Verdict::Allowed
    }

    #[test]
    fn user_rules_outrank_group_rules() {
        let rules = json!([
            {"accessLevel": "Delete", "subjects": ["group:devs"]},
            {"accessLevel": "NoAccess", "subjects": ["user:bob"]}
        ]);
        assert_eq!(
            decide(rules, "www", "A", false),
            denied(
                "bob (groups devs) may not Write www.example.com. A: rule 2 grants NoAccess on all names for user bob"
            )
        );
        let rules = json!([
            {"accessLevel": "NoAccess", "subjects": ["group:devs"]},
            {"accessLevel": "Delete", "subjects": ["user:bob"]}
        ]);
        assert!(allowed(&decide(rules, "www", "A", true)));
    }

    #[test]
    fn group_rules_outrank_rules_for_everyone() {
        let rules = json!([
            {"accessLevel": "NoAccess", "subjects": ["group:system:authenticated"]},
            {"accessLevel": "Write", "subjects": ["group:devs"]}
        ]);
        assert!(allowed(&decide(rules, "api", "TXT", false)));
        let rules = json!([{"accessLevel": "Write", "subjects": ["group:system:authenticated"]}]);
        assert!(allowed(&decide(rules, "api", "TXT", false)));
    }

    #[test]
    fn a_mask_outranks_no_mask_and_dot_star_counts_as_none() {
        let rules = json!([
            {"accessLevel": "Delete", "subjects": ["group:devs"]},
            {"accessLevel": "Read", "subjects": ["group:devs"], "recordMask": "db.*"}
        ]);
        assert_eq!(
            decide(rules.clone(), "db1", "A", true),
            denied(
                "bob (groups devs) may not Delete db1.example.com. A: rule 2 grants Read on db.* for group devs"
            )
        );
        assert!(allowed(&decide(rules, "web1", "A", true)));
        let rules = json!([
            {"accessLevel": "Read", "subjects": ["group:devs"], "recordMask": ".*"},
            {"accessLevel": "Delete", "subjects": ["group:devs"], "recordTypes": ["A"]}
        ]);
        // `.*` is no mask, so the rule with fewer types wins.
        assert!(allowed(&decide(rules, "db1", "A", true)));
    }

    #[test]
    fn fewer_types_outrank_more_then_lesser_access_wins_a_tie() {
        let rules = json!([
            {"accessLevel": "Delete", "subjects": ["group:devs"], "recordTypes": ["A", "AAAA"]},
            {"accessLevel": "Write", "subjects": ["group:devs"], "recordTypes": ["A"]}
        ]);
        assert_eq!(
            decide(rules.clone(), "api", "A", true),
            denied(
                "bob (groups devs) may not Delete api.example.com. A: rule 2 grants Write on all names A for group devs"
            )
        );
        assert!(allowed(&decide(rules, "api", "AAAA", true)));
        let rules = json!([
            {"accessLevel": "Delete", "subjects": ["group:devs"], "recordMask": "a.*"},
            {"accessLevel": "NoAccess", "subjects": ["group:devs"], "recordMask": ".*i"}
        ]);
        assert_eq!(
            decide(rules, "api", "A", false),
            denied(
                "bob (groups devs) may not Write api.example.com. A: rule 2 grants NoAccess on .*i for group devs"
            )
        );
    }

    #[test]
    fn vinyldns_documented_example() {
        // Read on everything, Write on A, Delete on A records matching dev.
        let rules = json!([
            {"accessLevel": "Read", "subjects": ["user:bob"]},
            {"accessLevel": "Write", "subjects": ["user:bob"], "recordTypes": ["A"]},
            {"accessLevel": "Delete", "subjects": ["user:bob"], "recordTypes": ["A"], "recordMask": ".*dev.*"}
        ]);
        assert!(allowed(&decide(rules.clone(), "mydev1", "A", true)));
        assert!(!allowed(&decide(rules.clone(), "prod1", "A", true)));
        assert!(allowed(&decide(rules.clone(), "prod1", "A", false)));
        assert!(!allowed(&decide(rules, "mydev1", "TXT", false)));
    }

    #[test]
    fn masks_match_the_whole_relative_name_in_any_spelling() {
        let rules =
            json!([{"accessLevel": "Delete", "subjects": ["group:devs"], "recordMask": "www"}]);
        assert!(!allowed(&decide(rules.clone(), "www2", "A", false)));
        assert!(allowed(&decide(
            rules.clone(),
            "WWW.example.com.",
            "A",
            false
        )));
        assert!(allowed(&decide(rules, "www", "A", true)));
        let apex =
            json!([{"accessLevel": "Delete", "subjects": ["group:devs"], "recordMask": "@"}]);
        assert!(allowed(&decide(apex.clone(), "example.com.", "TXT", false)));
        assert!(allowed(&decide(apex, "@", "TXT", true)));
    }

    #[test]
    fn a_mask_that_does_not_compile_denies_what_it_might_cover() {
        let rules =
            json!([{"accessLevel": "Delete", "subjects": ["group:devs"], "recordMask": "(www"}]);
        let v = decide(rules, "www", "A", false);
        assert!(
            matches!(&v, Verdict::Denied(t) if t.contains(": rule 1 has a recordMask that does not compile")),
            "{v:?}"
        );
    }

    #[test]
    fn reordering_or_respelling_an_rrset_is_no_change() {
        let mut base = acceptance_json();
        base["records"][0]["data"] = json!(["192.0.2.10", "192.0.2.11"]);
        let v = review(&base, &carol(), |v| {
            v["records"][0]["data"] = json!(["192.0.2.11", "192.0.2.10"]);
            v["records"][0]["name"] = json!("www.example.com.");
            records(v).reverse();
        });
        assert_eq!(v, Verdict::Allowed);
    }

    #[test]
    fn several_denials_name_the_first_and_count_the_rest() {
        let base = acceptance_json();
        let v = review(&base, &carol(), |v| v["records"] = json!([]));
        assert_eq!(
            v,
            denied(
                "carol (no groups) may not Delete www.example.com. A: no rule matches (and 2 more RRsets denied)"
            )
        );
    }

    fn shared_json() -> Value {
        let mut v = acceptance_json();
        v["shared"] = json!(true);
        v
    }

    /// bob creates `api` in the shared zone, as the webhooks would see and store it.
    fn with_bobs_api() -> Value {
        let base = shared_json();
        let b = bob();
        let old = spec(base.clone());
        let mut new = edited(&base, |v| {
            records(v).push(json!({"name": "api", "type": "A", "data": ["192.0.2.50"]}))
        });
        assert!(default_owner_groups(Some(&old), &mut new, &b.who()));
        assert_eq!(review_zone(Some(&old), &new, &b.who()), Verdict::Allowed);
        serde_json::to_value(&new).unwrap()
    }

    #[test]
    fn shared_zone_rrsets_belong_to_their_creators_group() {
        let zone = with_bobs_api();
        assert_eq!(zone["records"][3]["ownerGroup"], json!("devs"));
        let change = |v: &mut Value| v["records"][3]["data"] = json!(["192.0.2.51"]);
        assert_eq!(
            review(&zone, &dave(), change),
            denied(
                "dave (groups ops) may not Write api.example.com. A: owned by group devs; no rule matches"
            )
        );
        assert_eq!(review(&zone, &alice(), change), Verdict::Allowed);
        assert_eq!(review(&zone, &bob(), change), Verdict::Allowed);
        // The owner group holds every access level on its RRsets, deletion included.
        assert_eq!(
            review(&zone, &bob(), |v| {
                records(v).pop();
            }),
            Verdict::Allowed
        );
        assert!(!allowed(&review(&zone, &dave(), |v| {
            records(v).pop();
        })));
    }

    #[test]
    fn shared_zone_ownership_cannot_be_handed_to_a_foreign_group() {
        let base = shared_json();
        assert_eq!(
            review(&base, &bob(), |v| records(v).push(
                json!({"name": "api", "type": "A", "data": ["192.0.2.50"], "ownerGroup": "ops"})
            )),
            denied(
                "bob (groups devs) may not Write api.example.com. A: ownerGroup ops is not one of bob's groups"
            )
        );
        let zone = with_bobs_api();
        assert!(!allowed(&review(
            &zone,
            &bob(),
            |v| v["records"][3]["ownerGroup"] = json!("ops")
        )));
        assert_eq!(
            review(&zone, &alice(), |v| v["records"][3]["ownerGroup"] =
                json!("ops")),
            Verdict::Allowed
        );
    }

    #[test]
    fn shared_zone_unowned_rrsets_fall_back_to_the_acl() {
        let base = shared_json();
        // www has no owner: bob's rule lets him write it, dave has none.
        let change = |v: &mut Value| v["records"][0]["data"] = json!(["192.0.2.7"]);
        assert_eq!(review(&base, &bob(), change), Verdict::Allowed);
        assert_eq!(
            review(&base, &dave(), change),
            denied("dave (groups ops) may not Write www.example.com. A: no rule matches")
        );
    }

    #[test]
    fn owner_groups_are_filled_only_where_missing() {
        let zone = with_bobs_api();
        let old = spec(zone.clone());
        // A manifest applied without the stamped ownerGroup keeps the owner; dave's new
        // RRset gets dave's group; the unowned www stays unowned.
        let mut new = edited(&zone, |v| {
            v["records"][3]
                .as_object_mut()
                .unwrap()
                .remove("ownerGroup");
            v["records"][0]["ttl"] = json!(60);
            records(v).push(json!({"name": "ops", "type": "TXT", "data": ["\"x\""]}));
        });
        assert!(default_owner_groups(Some(&old), &mut new, &dave().who()));
        let owners: Vec<Option<&str>> = new
            .records
            .iter()
            .map(|r| r.owner_group.as_deref())
            .collect();
        assert_eq!(owners, [None, None, None, Some("devs"), Some("ops")]);
        // Nothing left to fill: reports no change.
        let mut again = new.clone();
        assert!(!default_owner_groups(Some(&old), &mut again, &dave().who()));
        assert_eq!(again, new);
        // Not shared: ownerGroup is left alone.
        let base = acceptance_json();
        let mut new = edited(&base, |v| {
            records(v).push(json!({"name": "api", "type": "A", "data": ["192.0.2.50"]}))
        });
        assert!(!default_owner_groups(
            Some(&spec(base)),
            &mut new,
            &bob().who()
        ));
        assert_eq!(new.records[3].owner_group, None);
        // Only system groups: nothing to own with.
        let mut new = edited(&shared_json(), |v| {
            records(v).push(json!({"name": "api", "type": "A", "data": ["192.0.2.50"]}))
        });
        assert!(!default_owner_groups(None, &mut new, &carol().who()));
    }

    #[test]
    fn owner_group_is_not_dns_data() {
        use crate::reconcile::validation::parse_record_sets;
        use std::str::FromStr;
        let origin = hickory_proto::rr::Name::from_str("example.com.").unwrap();
        let plain = spec(acceptance_json());
        let owned = edited(&acceptance_json(), |v| {
            for r in records(v) {
                r["ownerGroup"] = json!("devs");
            }
        });
        assert_ne!(plain.records, owned.records);
        assert_eq!(
            parse_record_sets(&origin, 3600, &plain.records).unwrap(),
            parse_record_sets(&origin, 3600, &owned.records).unwrap()
        );
    }

    #[test]
    fn a_thousand_rrset_edit_is_judged_per_rrset() {
        let mut base = acceptance_json();
        base["acl"]["rules"] = json!([
            {"accessLevel": "Write", "subjects": ["group:devs"], "recordMask": "www[0-9]+", "recordTypes": ["A"]}
        ]);
        let all: Vec<Value> = (0..1000)
            .map(|i| json!({"name": format!("www{i}"), "type": "A", "data": [format!("192.0.2.{}", i % 250)]}))
            .collect();
        base["records"] = json!(all);
        let v = review(&base, &bob(), |v| {
            for r in records(v) {
                r["ttl"] = json!(120);
            }
        });
        assert_eq!(v, Verdict::Allowed);
        let v = review(&base, &bob(), |v| {
            records(v).truncate(990);
        });
        assert_eq!(
            v,
            denied(
                "bob (groups devs) may not Delete www990.example.com. A: rule 1 grants Write on www[0-9]+ A for group devs (and 9 more RRsets denied)"
            )
        );
    }
}
