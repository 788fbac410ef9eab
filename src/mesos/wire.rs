//! The Mesos door's wire types, generated from `proto/mesos/v1/` (our subset of Mesos's
//! `mesos.proto` and `agent/agent.proto`, same names and numbers): prost for protobuf,
//! pbjson for the JSON mapping Mesos speaks (proto field names, enum names).

#![allow(clippy::all, clippy::pedantic, missing_docs)]

pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/mesos.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/mesos.v1.serde.rs"));

    /// `ResourceStatistics` in JSON as Mesos writes it: byte counts are numbers (proto3's
    /// mapping would make them strings, which Mesos's own tools do not expect).
    #[derive(serde::Serialize, serde::Deserialize)]
    struct StatisticsJson {
        timestamp: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        processes: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cpus_limit: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mem_total_bytes: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mem_limit_bytes: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mem_rss_bytes: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disk_limit_bytes: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disk_used_bytes: Option<u64>,
    }

    impl serde::Serialize for ResourceStatistics {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            StatisticsJson {
                timestamp: self.timestamp,
                processes: self.processes,
                cpus_limit: self.cpus_limit,
                mem_total_bytes: self.mem_total_bytes,
                mem_limit_bytes: self.mem_limit_bytes,
                mem_rss_bytes: self.mem_rss_bytes,
                disk_limit_bytes: self.disk_limit_bytes,
                disk_used_bytes: self.disk_used_bytes,
            }
            .serialize(s)
        }
    }

    impl<'de> serde::Deserialize<'de> for ResourceStatistics {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let j = StatisticsJson::deserialize(d)?;
            Ok(ResourceStatistics {
                timestamp: j.timestamp,
                processes: j.processes,
                cpus_limit: j.cpus_limit,
                mem_total_bytes: j.mem_total_bytes,
                mem_limit_bytes: j.mem_limit_bytes,
                mem_rss_bytes: j.mem_rss_bytes,
                disk_limit_bytes: j.disk_limit_bytes,
                disk_used_bytes: j.disk_used_bytes,
            })
        }
    }

    pub mod agent {
        include!(concat!(env!("OUT_DIR"), "/mesos.v1.agent.rs"));
        include!(concat!(env!("OUT_DIR"), "/mesos.v1.agent.serde.rs"));
    }
}
