//! Pure planning: desired vs observed vs owned. No I/O.
