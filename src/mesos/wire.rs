//! The Mesos door's wire types, generated from `proto/mesos/v1/` (our subset of Mesos's
//! `mesos.proto` and `agent/agent.proto`, same names and numbers): prost for protobuf,
//! pbjson for the JSON mapping Mesos speaks (proto field names, enum names).

#![allow(clippy::all, clippy::pedantic, missing_docs)]

pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/mesos.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/mesos.v1.serde.rs"));

    /// `ResourceStatistics` in JSON as Mesos writes it: byte counts are numbers (proto3's
    /// mapping would make them strings, which Mesos's own tools do not expect). The
    /// optional fields are listed once, here.
    macro_rules! statistics_json {
        ($($field:ident: $ty:ty),* $(,)?) => {
            #[derive(serde::Serialize, serde::Deserialize)]
            struct StatisticsJson {
                timestamp: f64,
                $(
                    #[serde(default, skip_serializing_if = "Option::is_none")]
                    $field: Option<$ty>,
                )*
            }

            impl serde::Serialize for ResourceStatistics {
                fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    StatisticsJson {
                        timestamp: self.timestamp,
                        $($field: self.$field,)*
                    }
                    .serialize(s)
                }
            }

            impl<'de> serde::Deserialize<'de> for ResourceStatistics {
                fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    let j = StatisticsJson::deserialize(d)?;
                    Ok(ResourceStatistics {
                        timestamp: j.timestamp,
                        $($field: j.$field,)*
                    })
                }
            }
        };
    }

    statistics_json! {
        processes: u32,
        cpus_user_time_secs: f64,
        cpus_system_time_secs: f64,
        cpus_limit: f64,
        cpus_nr_periods: u32,
        cpus_nr_throttled: u32,
        cpus_throttled_time_secs: f64,
        mem_total_bytes: u64,
        mem_limit_bytes: u64,
        mem_rss_bytes: u64,
        disk_limit_bytes: u64,
        disk_used_bytes: u64,
        net_rx_packets: u64,
        net_rx_bytes: u64,
        net_rx_errors: u64,
        net_rx_dropped: u64,
        net_tx_packets: u64,
        net_tx_bytes: u64,
        net_tx_errors: u64,
        net_tx_dropped: u64,
    }

    pub mod agent {
        include!(concat!(env!("OUT_DIR"), "/mesos.v1.agent.rs"));
        include!(concat!(env!("OUT_DIR"), "/mesos.v1.agent.serde.rs"));
    }
}
