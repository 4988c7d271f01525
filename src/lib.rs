//! Skiff: a message queue whose only stateful dependency is an object store.
//! Stateless agents batch records into immutable segment objects and make
//! them visible through a commit log of create-if-absent objects in the same
//! store. See `DESIGN.md` for the invariants this crate keeps.

pub mod agent;
pub mod api;
pub mod client;
pub mod clock;
pub mod error;
pub mod fetch;
pub mod groups;
pub mod ids;
pub mod ingest;
pub mod log;
pub mod node;
pub mod process;
pub mod route;
pub mod segment;
pub mod service;
pub mod settings;
pub mod store;

pub use error::{Error, ErrorKind, Result};
