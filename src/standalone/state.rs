//! What the standalone commands keep between runs, per zone, in `--state-dir`: the RRsets the
//! manifest manages, the backend snapshot, what was learnt about the SOA and the status (history
//! included) — the same things the operator keeps (the SOA facts in memory only).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::api::DnsZoneStatus;
use crate::dns::model::{Owned, RRsetKey, Zone, name_to_text};
use crate::reconcile::ownership;
use crate::reconcile::snapshot::{FileStore, SnapshotError, SnapshotStore};
use crate::reconcile::soa::SoaMemory;
use hickory_proto::rr::Name;

/// Why state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: {detail}")]
    Io { path: String, detail: String },
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

/// The state directory of one zone object.
#[derive(Clone)]
pub struct ZoneDir {
    dir: PathBuf,
}

impl ZoneDir {
    pub fn new(root: &Path, namespace: &str, name: &str) -> Self {
        Self {
            dir: root.join(namespace).join(name),
        }
    }

    fn io(path: &Path, e: impl ToString) -> StateError {
        StateError::Io {
            path: path.display().to_string(),
            detail: e.to_string(),
        }
    }

    fn read_opt(path: &Path) -> Result<Option<String>, StateError> {
        match std::fs::read_to_string(path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Self::io(path, e)),
        }
    }

    fn write(&self, file: &str, text: &str) -> Result<(), StateError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| Self::io(&self.dir, e))?;
        let path = self.dir.join(file);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(|e| Self::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Self::io(&path, e))
    }

    pub fn load_owned(&self) -> Result<Owned, StateError> {
        let path = self.dir.join("owned.txt");
        let text = Self::read_opt(&path)?.unwrap_or_default();
        ownership::parse_owned(&text).map_err(|e| Self::io(&path, e))
    }

    pub fn save_owned(&self, owned: &Owned) -> Result<(), StateError> {
        self.write("owned.txt", &ownership::format_owned(owned))
    }

    /// Writes an ownership list a line at a time, as [`ownership::format_owned`] would: a
    /// 1M-RRset import's list is 40 MB of text, and over 100 MB more as a map.
    pub fn save_owned_lines(
        &self,
        entries: impl Iterator<Item = (RRsetKey, u64)>,
    ) -> Result<(), StateError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| Self::io(&self.dir, e))?;
        let path = self.dir.join("owned.txt");
        let tmp = path.with_extension("tmp");
        let file = std::fs::File::create(&tmp).map_err(|e| Self::io(&tmp, e))?;
        let mut out = std::io::BufWriter::new(file);
        for (key, fp) in entries {
            writeln!(out, "{} {} {fp:016x}", name_to_text(&key.name), key.rtype)
                .map_err(|e| Self::io(&tmp, e))?;
        }
        out.into_inner()
            .map_err(|e| Self::io(&tmp, e.error()))?
            .sync_all()
            .map_err(|e| Self::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Self::io(&path, e))
    }

    /// What earlier runs learnt about the zone's SOA; nothing when no run wrote it.
    pub fn load_soa(&self) -> Result<SoaMemory, StateError> {
        let path = self.dir.join("soa.txt");
        let text = Self::read_opt(&path)?.unwrap_or_default();
        SoaMemory::from_text(&text).map_err(|e| Self::io(&path, e))
    }

    pub fn save_soa(&self, memory: &SoaMemory) -> Result<(), StateError> {
        self.write("soa.txt", &memory.to_text())
    }

    pub fn load_status(&self) -> Result<DnsZoneStatus, StateError> {
        let path = self.dir.join("status.yaml");
        match Self::read_opt(&path)? {
            None => Ok(DnsZoneStatus::default()),
            Some(text) => serde_yaml::from_str(&text).map_err(|e| Self::io(&path, e)),
        }
    }

    pub fn save_status(&self, status: &DnsZoneStatus) -> Result<(), StateError> {
        let text = serde_yaml::to_string(status).map_err(|e| Self::io(&self.dir, e))?;
        self.write("status.yaml", &text)
    }

    pub fn snapshots(&self) -> FileStore {
        FileStore {
            path: self.dir.join("snapshot.bin"),
        }
    }

    pub async fn load_snapshot(&self, origin: &Name) -> Result<Option<Zone>, StateError> {
        Ok(self.snapshots().load(origin).await?)
    }

    pub async fn save_snapshot(&self, zone: &Zone) -> Result<(), StateError> {
        Ok(self.snapshots().save(zone).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::RecordType;

    /// A zone's RRsets in canonical order, written line by line, are the file the map writes.
    #[test]
    fn ownership_written_line_by_line_is_the_list_written_whole() {
        let origin = Name::from_ascii("example.com.").unwrap();
        let mut zone = Zone::new(origin.clone());
        for (name, rtype, data) in [
            ("b.example.com.", "A", "192.0.2.1"),
            ("A.example.com.", "A", "192.0.2.2"),
            ("a.example.com.", "TXT", "\"t\""),
            ("x.a.example.com.", "AAAA", "2001:db8::1"),
            ("example.com.", "MX", "10 a.example.com."),
        ] {
            let rtype: RecordType = rtype.parse().unwrap();
            let rdata = crate::dns::model::parse_rdata(rtype, &origin, data).unwrap();
            zone.insert_rrset(crate::dns::model::RRset::new(
                Name::from_ascii(name).unwrap(),
                rtype,
                300,
                vec![rdata],
            ));
        }
        let entries = || zone.rrsets().map(|s| (s.key(), s.fingerprint()));
        let whole: Owned = entries().collect();
        let dir = tempfile::tempdir().unwrap();
        let zone_dir = ZoneDir::new(dir.path(), "ns", "z");
        zone_dir.save_owned_lines(entries()).unwrap();
        let text = std::fs::read_to_string(dir.path().join("ns/z/owned.txt")).unwrap();
        assert_eq!(text, ownership::format_owned(&whole));
        assert_eq!(zone_dir.load_owned().unwrap(), whole);
    }
}
