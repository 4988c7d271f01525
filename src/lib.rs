//! Skiff: a message queue whose only stateful dependency is an object store.
//! Stateless agents batch records into immutable segment objects and make
//! them visible through a commit log of create-if-absent objects in the same
//! store. See `DESIGN.md` for the invariants this crate keeps.
//!
//! # Where a library user starts
//!
//! - **Run an agent** (the HTTP API in-process): build [`Settings`] (or
//!   read them from TOML) and call [`RunningAgent::start`]; stop it with
//!   [`RunningAgent::stop`].
//! - **Talk to an agent**: [`Client`] speaks the HTTP API v1; its request
//!   and response shapes are in [`api`].
//! - **Embed the queue without HTTP**: [`open`] a store from a URL
//!   (`memory://`, `file:///dir` or a plain path, `s3://bucket/prefix`),
//!   share it as a [`SharedStore`], then [`Node::open`] it with a [`NodeConfig`] and a clock
//!   ([`SystemClock::shared`]). [`Node`] produces ([`ProduceRequest`]) and
//!   fetches ([`FetchRequest`]); the [`service`] functions add what every
//!   front end shares on top of it: partitioning, stream groups, queue
//!   groups and dead letters.
//! - **Errors**: every fallible call returns [`Result`]; [`Error::kind`]
//!   tells the caller what to do ([`ErrorKind`]: retry, fix the request,
//!   or report corruption).
//! - **Time and ids** go through [`clock`] and [`ids`], so tests can
//!   control them.
//!
//! The lower layers ([`log`], [`segment`], [`store`], [`fetch`],
//! [`ingest`], [`groups`]) are public for tools and tests that read the
//! log or the segments directly; most users never need them.
//!
//! Test-only wrappers (the fault-injecting store `store::FaultStore` and
//! its rules, the hand-driven `clock::ManualClock` and `clock::VirtualClock`)
//! are compiled only with the `testing` feature.

pub mod admin;
pub mod agent;
pub mod api;
pub mod client;
pub mod clock;
pub mod compact;
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

pub use agent::{AgentError, RunningAgent};
pub use client::{Client, ClientError};
pub use clock::{Clock, SharedClock, SystemClock};
pub use error::{Error, ErrorKind, Result};
pub use fetch::{FetchRequest, FetchResult};
pub use groups::QueueConfig;
pub use ingest::{ProduceRecord, ProduceRequest};
pub use log::TopicConfig;
pub use node::{Node, NodeConfig};
pub use segment::{Compression, Record};
pub use settings::Settings;
pub use store::{open, SharedStore, Store};
