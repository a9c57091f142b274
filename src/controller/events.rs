//! The `action` of the Events zonekeeper publishes.
//!
//! kube-runtime's `Recorder` folds a repeated event into a series keyed by type, reason,
//! action and object, but not by the note: a second "Applied" event with another message would
//! only bump the first one's count and keep its stale message. The action therefore carries a
//! short digest of the note, so each distinct message is its own event while an exact repeat
//! (the same failure again) is still counted on one.

use std::hash::{DefaultHasher, Hash, Hasher};

/// `action` followed by a digest of `note`, e.g. `Reconcile-1a2b3c4d`.
pub fn action_for(action: &str, note: &str) -> String {
    let mut hasher = DefaultHasher::new();
    note.hash(&mut hasher);
    // 32 bits keep the action short; a collision only merges two events' counts.
    format!("{action}-{:08x}", hasher.finish() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_notes_get_distinct_actions_and_repeats_the_same() {
        let a = action_for(
            "Reconcile",
            "applied 19 RRset change(s) in 1 UPDATE message(s)",
        );
        let b = action_for(
            "Reconcile",
            "applied 3 RRset change(s) in 1 UPDATE message(s)",
        );
        assert_ne!(a, b);
        assert_eq!(
            a,
            action_for(
                "Reconcile",
                "applied 19 RRset change(s) in 1 UPDATE message(s)"
            )
        );
        assert!(a.starts_with("Reconcile-") && a.len() <= 128, "{a}");
    }
}
