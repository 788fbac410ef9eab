//! The Mesos door's wire types, generated from `proto/mesos/v1/` (our subset of Mesos's
//! `mesos.proto` and `agent/agent.proto`, same names and numbers): prost for protobuf,
//! pbjson for the JSON mapping Mesos speaks (proto field names, enum names).

#![allow(clippy::all, clippy::pedantic, missing_docs)]

pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/mesos.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/mesos.v1.serde.rs"));

    pub mod agent {
        include!(concat!(env!("OUT_DIR"), "/mesos.v1.agent.rs"));
        include!(concat!(env!("OUT_DIR"), "/mesos.v1.agent.serde.rs"));
    }
}
