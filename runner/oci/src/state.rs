//! A container's state directory, `<root>/<id>/`: what `create` recorded, the fifo that
//! holds the guest until `start`, the initrd packed from the image's files.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Result;

/// Our record in the state directory; a directory without it belongs to runc.
pub const RECORD: &str = "uk-runtime.json";
/// The fifo the container's process opens for writing and blocks on until `start` opens
/// it for reading (runc's `exec.fifo`).
pub const START_FIFO: &str = "start.fifo";

/// What `create` records about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// The container's process (the VMM).
    pub pid: i32,
    /// Its start time in clock ticks since boot (/proc/<pid>/stat), so a reused pid is not
    /// taken for it.
    pub pid_start: u64,
    /// RFC 3339.
    pub created: String,
    pub annotations: std::collections::BTreeMap<String, String>,
    /// The network namespace the guest's tap is in, when it has one.
    pub netns: Option<PathBuf>,
    /// Whether the runtime made that namespace (and deletes it).
    pub own_netns: bool,
    /// The tap device in it.
    pub tap: Option<String>,
}

/// The container's status as the runtime spec names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
        }
    }
}

/// The state directory of `id` under `root`.
pub fn dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

/// Reads the record of `id`; `None` when the runtime has none (runc's container, or none).
pub fn read(root: &Path, id: &str) -> Option<Record> {
    let text = std::fs::read_to_string(dir(root, id).join(RECORD)).ok()?;
    serde_json::from_str(&text).ok()
}

pub fn write(root: &Path, record: &Record) -> Result<()> {
    let path = dir(root, &record.id).join(RECORD);
    let json = serde_json::to_vec_pretty(record).map_err(|err| err.to_string())?;
    // Written whole, then renamed: a concurrent `state` never reads half a record.
    let partial = path.with_extension("json.partial");
    std::fs::write(&partial, json)
        .and_then(|()| std::fs::rename(&partial, &path))
        .map_err(|err| format!("cannot write {}: {err}", path.display()))
}

/// The start time of `pid` (field 22 of /proc/<pid>/stat) and whether it is a zombie;
/// `None` when there is no such process.
pub fn process(pid: i32) -> Option<(u64, bool)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields follow the last `)`.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let zombie = matches!(fields.first(), Some(&"Z") | Some(&"X"));
    let start = fields.get(19)?.parse().ok()?;
    Some((start, zombie))
}

/// Whether the container's process is alive (not exited, not a zombie, not a reused pid).
pub fn alive(record: &Record) -> bool {
    process(record.pid).is_some_and(|(start, zombie)| start == record.pid_start && !zombie)
}

/// The status: stopped once the process is gone, created until `start` opened the fifo.
pub fn status(root: &Path, record: &Record) -> Status {
    if !alive(record) {
        Status::Stopped
    } else if dir(root, &record.id).join(START_FIFO).exists() {
        Status::Created
    } else {
        Status::Running
    }
}

/// Now as RFC 3339 in UTC with nanoseconds, as runc writes `created`.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_not_a_zombie() {
        let pid = std::process::id() as i32;
        let (start, zombie) = process(pid).unwrap();
        assert!(!zombie);
        let record = Record {
            id: "x".into(),
            bundle: "/".into(),
            rootfs: "/".into(),
            pid,
            pid_start: start,
            created: now_rfc3339(),
            annotations: Default::default(),
            netns: None,
            own_netns: false,
            tap: None,
        };
        assert!(alive(&record));
        let reused = Record {
            pid_start: start + 1,
            ..record
        };
        assert!(!alive(&reused));
    }
}
