//! Tests package.
