//! Admission control: who may change what inside a DnsZone (VinylDNS ACL semantics).
pub mod acl;
