//! The group operations moved to [`crate::service`]; this path re-exports
//! them for existing users. It must not hold code.

pub use crate::service::*;
