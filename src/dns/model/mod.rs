//! The DNS record model: owner names, RRsets, zones and their canonical form.
//!
//! Presentation-format text (what users write in `spec.records[].data` and in
//! zone-file ConfigMaps) is parsed here into hickory-proto [`RData`]. Every
//! parser builds the record's *wire* form and lets hickory's wire decoder turn
//! it into an [`RData`], so whatever we accept is exactly what hickory (and the
//! server) will encode. hickory 0.25's own text parsers (feature `text-parsing`)
//! are not used: its lexer panics on tokens longer than 4095 characters and
//! decodes `\DDD` wrongly, its name parser reads `\DDD` as octal and refuses
//! valid names with `_` through IDNA, its DS parser drops an odd trailing hex
//! digit, its SVCB parser ignores `$ORIGIN` and can panic on a malformed `alpn`,
//! and none of them refuses trailing fields.

/// Most bytes the RDATA of one record may have (RFC 1035: RDLENGTH is 16 bits).
pub const MAX_RDATA_LEN: usize = 65_535;
/// Most bytes of one `<character-string>` (RFC 1035 3.3).
pub const MAX_CHAR_STRING: usize = 255;

mod canonical;
mod desired;
mod entry_set;
mod lexer;
mod name;
mod owned;
mod packed_set;
mod rdata_parse;
mod rdata_text;
mod rrset;
mod rules;
mod svcb;
#[cfg(test)]
pub(crate) mod test_support;
mod zone;
mod zone_builder;
mod zone_text;

pub use canonical::{WireError, canonical_rdata};
pub use desired::Desired;
pub use lexer::{EscapeError, LexError};
pub use name::{NameError, in_zone, name_cmp, name_eq, name_to_text, parse_name, parse_owner};
pub use owned::{Owned, decode_key};
pub use rdata_parse::{FieldError, RdataError, SUPPORTED_TYPES, parse_rdata, parse_spec_rdata};
pub use rdata_text::rdata_to_text;
pub use rrset::{RRset, RRsetKey};
pub(crate) use rules::semantic_errors_indexed;
pub use rules::{RuleError, semantic_errors};
pub use svcb::SvcParamError;
pub(crate) use zone::Entry;
pub use zone::Zone;
pub(crate) use zone::owned_key;
pub use zone_builder::ZoneBuilder;
pub use zone_text::{LineError, LineProblem, ZoneTextError, parse_ttl, parse_zone_text};
