//! One lifecycle of an app in the inspecting child: create, one request, destroy; then the
//! threads left over, and (after the library is closed) whether it is really unmapped.

use super::rules::{rule, Rule};
use crate::loader::{is_mapped, Plugin};
use crate::tables::TableStore;
use molt_abi::Request;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Creates an instance, serves one request, destroys it, and reports threads that outlive it.
pub(super) fn lifecycle(plugin: &Arc<Plugin>, tables: &Arc<TableStore>) -> Vec<Rule> {
    let before = threads();
    let outcome = plugin.create_in(tables).map(|instance| {
        let _ = instance.handle(&Request::new("GET", "/", "", &[], b""));
        drop(instance);
    });
    if let Err(e) = outcome {
        return vec![rule("create works", false, e.to_string())];
    }
    // A thread that was told to stop in `Drop` gets a moment to end.
    let deadline = Instant::now() + Duration::from_millis(200);
    let mut left = threads_since(&before);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        left = threads_since(&before);
    }
    vec![rule(
        "no thread outlives destroy",
        left.is_empty(),
        if left.is_empty() {
            "create, one request, destroy: no thread left".to_owned()
        } else {
            format!("threads still running after destroy: {}", left.join(", "))
        },
    )]
}

/// The ids of this process's threads.
fn threads() -> BTreeSet<String> {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Threads that are not in `before`, as `name (tid)`.
fn threads_since(before: &BTreeSet<String>) -> Vec<String> {
    threads()
        .difference(before)
        .map(|tid| {
            let name = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).unwrap_or_default();
            format!("{:?} (tid {tid})", name.trim())
        })
        .collect()
}

/// After everything is dropped: whether the new library's copy is really unmapped.
pub(super) fn unmapped_rule(copy: Option<PathBuf>) -> Option<Rule> {
    let copy = copy?;
    let mapped = is_mapped(&copy);
    Some(rule(
        "the library unloads after its last instance",
        !mapped,
        if mapped {
            "still mapped after dlclose: a thread it started, or a thread-local with a destructor, keeps it loaded"
        } else {
            "unmapped after dlclose"
        },
    ))
}
