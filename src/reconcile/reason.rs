//! Condition reasons, one enum per condition family. The API strings are what users and
//! alerts match on, so each enum's `as_str` is the only place a reason is spelled; code
//! compares variants, never strings.

use std::fmt;

pub use crate::dns::error::DnsReason;

macro_rules! reason_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            /// The reason as the API writes it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl From<$name> for &'static str {
            fn from(reason: $name) -> Self {
                reason.as_str()
            }
        }
    };
}

reason_enum! {
    /// Why a spec (or what it references) could not be resolved.
    ConfigReason {
        SecretNotFound => "SecretNotFound",
        InvalidKey => "InvalidKey",
        ConfigMapNotFound => "ConfigMapNotFound",
        InvalidZoneName => "InvalidZoneName",
        InvalidRecords => "InvalidRecords",
        InvalidEmail => "InvalidEmail",
    }
}

/// A reason that is one of a few own words or one borrowed from a failure family.
macro_rules! layered_reason {
    ($(#[$meta:meta])* $name:ident { own { $($variant:ident => $text:literal),* $(,)? } from { $($wrap:ident($inner:ty)),* $(,)? } }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)*
            $($wrap($inner),)*
        }

        impl $name {
            /// The reason as the API writes it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                    $($name::$wrap(inner) => inner.as_str(),)*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl From<$name> for &'static str {
            fn from(reason: $name) -> Self {
                reason.as_str()
            }
        }

        $(impl From<$inner> for $name {
            fn from(inner: $inner) -> Self {
                $name::$wrap(inner)
            }
        })*
    };
}

layered_reason! {
    /// `BackendReachable`: can zonekeeper talk to the backend with the configured key?
    BackendReason {
        own { Connected => "Connected" }
        from { Config(ConfigReason), Dns(DnsReason) }
    }
}

layered_reason! {
    /// `TransferAuthorized`: does the backend hand the zone over?
    TransferReason {
        own { TransferAllowed => "TransferAllowed" }
        from { Dns(DnsReason) }
    }
}

layered_reason! {
    /// `Synced`: do the managed RRsets (primary) or the serial (secondary) match?
    SyncedReason {
        own {
            InSync => "InSync",
            Lagging => "Lagging",
            MastersUnreachable => "MastersUnreachable",
            DeletionGuard => "DeletionGuard",
            Drifted => "Drifted",
            ApplyFailed => "ApplyFailed",
            SuspectTransfer => "SuspectTransfer",
            SoaNotTaken => "SoaNotTaken",
        }
        from { Config(ConfigReason), Dns(DnsReason) }
    }
}

layered_reason! {
    /// `Ready`: the zone's overall state, the first thing a user reads.
    ReadyReason {
        own {
            Applied => "Applied",
            Suspended => "Suspended",
            ZoneConflict => "ZoneConflict",
            Syncing => "Syncing",
            ConnectionFailed => "ConnectionFailed",
        }
        from { Synced(SyncedReason), Config(ConfigReason), Dns(DnsReason) }
    }
}

layered_reason! {
    /// A ZoneSync's `status.reason` and the reason of its `Complete`/`Failed` condition.
    SyncReason {
        own {
            Synced => "Synced",
            ZoneNotFound => "ZoneNotFound",
            ZoneInactive => "ZoneInactive",
            SyncedRecently => "SyncedRecently",
            PendingUpdate => "PendingUpdate",
            InvalidSyncState => "InvalidSyncState",
            KubernetesApi => "KubernetesApi",
            SnapshotUnreadable => "SnapshotUnreadable",
            SnapshotWriteFailed => "SnapshotWriteFailed",
            SuspectTransfer => "SuspectTransfer",
        }
        from { Config(ConfigReason), Dns(DnsReason) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_reasons_keep_the_inner_words() {
        assert_eq!(
            ReadyReason::from(SyncedReason::Drifted).to_string(),
            "Drifted"
        );
        assert_eq!(
            BackendReason::from(ConfigReason::SecretNotFound).as_str(),
            "SecretNotFound"
        );
        assert_eq!(
            SyncReason::from(DnsReason::TransferRefused).as_str(),
            "TransferRefused"
        );
        assert!(DnsReason::TransferTruncated.is_transfer_failure());
        assert!(!DnsReason::Timeout.is_transfer_failure());
    }
}
