//! The ACL decision, pure: given the old and new DnsZone spec and the requesting user,
//! may the change go through? No I/O here, so the webhook and the tests share one truth.

use crate::api::dns_zone::DnsZoneSpec;

/// The authenticated user behind an admission request.
pub struct Requester<'a> {
    pub username: &'a str,
    pub groups: &'a [String],
}

/// The answer to one admission review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// The sentence shown to the user by kubectl.
    Denied(String),
}

/// create (old None) / update of a DnsZone
pub fn review_zone(old: Option<&DnsZoneSpec>, new: &DnsZoneSpec, who: &Requester) -> Verdict {
    let _ = (old, new, who);
    Verdict::Allowed
}

/// creating a ZoneSync for `zone` (VinylDNS: sync needs zone admin)
pub fn review_zone_sync(zone: &DnsZoneSpec, who: &Requester) -> Verdict {
    let _ = (zone, who);
    Verdict::Allowed
}

/// shared zones: fill `records[].ownerGroup` of RRsets the requester adds without one
pub fn default_owner_groups(
    old: Option<&DnsZoneSpec>,
    new: &mut DnsZoneSpec,
    who: &Requester,
) -> bool {
    let _ = (old, new, who);
    false
}
