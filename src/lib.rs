//! waggle: a local telemetry relay.
//!
//! Receivers (`receiver`) parse and validate OTLP and X-Ray input into a [`batch::Batch`];
//! the router (`pipeline::router`) shares each batch with every destination lane that takes
//! its signal; each lane (`pipeline::lane`) queues, batches and sends through one exporter
//! (`export`), translating on its own tasks (`translate`). `admin` serves health, metrics,
//! status and the local store's query API.
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod aws;
pub mod cli;
pub mod config;
pub mod destination;
pub mod health;
pub mod model;
pub mod pipeline;
pub mod receiver;
pub mod sampling_proxy;
pub mod store;
pub mod telemetry;
pub mod translate;
