//! Every error of creating, opening and removing a map by name is produced here, and its
//! message checked: it names the map and says what is wrong. Maps are private to their user
//! (mode 0600) unless asked otherwise; file-backed maps persist.

#[path = "../common/mod.rs"]
mod common;

use common::{UniqueName, role};
use rustix::fs::Mode;
use rustix::shm::OFlags;
use shared_hashmap_posix::{Error, Layout, NAME_MAX, Options, SharedHashMap, SharedMap};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

fn layout() -> Layout {
    Layout::new(100, 16, 16).unwrap()
}

/// Makes a shared memory object that is not a map: `bytes` at offset 0 of `size` bytes.
fn foreign_object(name: &str, size: u64, bytes: &[u8]) {
    let fd = rustix::shm::open(
        format!("/{name}").as_str(),
        OFlags::CREATE | OFlags::EXCL | OFlags::RDWR,
        Mode::from_raw_mode(0o600),
    )
    .unwrap();
    rustix::fs::ftruncate(&fd, size).unwrap();
    rustix::io::pwrite(&fd, bytes, 0).unwrap();
}

/// Overwrites bytes of the object `name` at `offset`, as a buggy or hostile process might.
fn scribble(name: &str, offset: u64, bytes: &[u8]) {
    let fd = rustix::shm::open(format!("/{name}").as_str(), OFlags::RDWR, Mode::empty()).unwrap();
    rustix::io::pwrite(&fd, bytes, offset).unwrap();
}

fn message(error: &Error) -> String {
    error.to_string()
}

#[test]
fn child() {
    let Some((role, name)) = role() else { return };
    match role.as_str() {
        // Run as another user: the map must be out of reach.
        "open-as-other-user" => match SharedHashMap::open(&name) {
            Err(Error::PermissionDenied { .. }) => {}
            other => panic!("another user opened a 0600 map: {other:?}"),
        },
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn invalid_names_are_rejected_before_any_system_call() {
    for (name, reason) in [
        ("", "empty"),
        ("/", "empty"),
        ("a/b", "slash"),
        ("//a", "slash"),
        ("../etc/passwd", "slash"),
        ("..", "`..`"),
        ("a\0b", "NUL"),
    ] {
        let error = SharedHashMap::create(name, layout()).unwrap_err();
        assert!(
            matches!(error, Error::InvalidName { .. }),
            "{name:?}: {error:?}"
        );
        assert!(message(&error).contains(reason), "{name:?}: {error}");
        assert!(matches!(
            SharedHashMap::open(name),
            Err(Error::InvalidName { .. })
        ));
        assert!(matches!(
            SharedHashMap::unlink(name),
            Err(Error::InvalidName { .. })
        ));
    }
    let long = "x".repeat(NAME_MAX + 1);
    assert!(message(&SharedHashMap::open(&long).unwrap_err()).contains("NAME_MAX"));
}

#[test]
fn a_missing_map_is_not_found() {
    let name = UniqueName::new("missing");
    let error = SharedHashMap::open(name.as_str()).unwrap_err();
    assert!(matches!(error, Error::NotFound { .. }), "{error:?}");
    assert!(message(&error).contains(name.as_str()));
    assert!(message(&error).contains("no shared map named"));
    assert!(matches!(
        SharedHashMap::unlink(name.as_str()),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn a_taken_name_cannot_be_created_again() {
    let name = UniqueName::new("taken");
    let first = SharedHashMap::create(name.as_str(), layout()).unwrap();
    first.insert(b"k", b"v").unwrap();
    let error = SharedHashMap::create(name.as_str(), layout()).unwrap_err();
    assert!(matches!(error, Error::AlreadyExists { .. }), "{error:?}");
    assert!(message(&error).contains("already exists") && message(&error).contains(name.as_str()));
    // The failed create changed nothing.
    assert_eq!(
        first.get_into::<16>(b"k").unwrap().as_deref(),
        Some(&b"v"[..])
    );
}

#[test]
fn maps_are_private_to_their_user() {
    let name = UniqueName::new("private");
    let _map = SharedHashMap::create(name.as_str(), layout()).unwrap();
    let mode = std::fs::metadata(format!("/dev/shm/{}", name.as_str()))
        .unwrap()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    if rustix::process::geteuid().is_root() {
        // Root opens anything: check from a child that runs as `nobody`.
        let mut command = std::process::Command::new(std::env::current_exe().unwrap());
        command
            .args(["--exact", "child", "--quiet"])
            .env(common::ROLE, "open-as-other-user")
            .env(common::NAME, name.as_str())
            .stdout(std::process::Stdio::null())
            .uid(65534)
            .gid(65534);
        let status = command.status().unwrap();
        assert!(status.success(), "the other user's child failed: {status}");
        // A map shared on purpose gets exactly the mode asked for, umask or not.
        let shared = UniqueName::new("shared");
        let _map =
            SharedHashMap::create_with(shared.as_str(), layout(), &Options::new().mode(0o666))
                .unwrap();
        let mode = std::fs::metadata(format!("/dev/shm/{}", shared.as_str()))
            .unwrap()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o666);
    } else {
        // Not root: a map nobody may read is out of reach for this user too.
        let locked = UniqueName::new("mode000");
        let _map =
            SharedHashMap::create_with(locked.as_str(), layout(), &Options::new().mode(0o000))
                .unwrap();
        let error = SharedHashMap::open(locked.as_str()).unwrap_err();
        assert!(matches!(error, Error::PermissionDenied { .. }), "{error:?}");
    }
}

#[test]
fn a_foreign_object_is_not_a_map() {
    let name = UniqueName::new("foreign");
    foreign_object(name.as_str(), 4096, b"this is not a map, just some bytes");
    let started = Instant::now();
    let error = SharedHashMap::open(name.as_str()).unwrap_err();
    assert!(matches!(error, Error::NotAMap { .. }), "{error:?}");
    assert!(
        message(&error).contains("not a shared-hashmap map")
            && message(&error).contains(name.as_str())
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a foreign object took {:?}",
        started.elapsed()
    );
}

#[test]
fn another_format_version_is_incompatible() {
    let name = UniqueName::new("version");
    drop(SharedHashMap::create(name.as_str(), layout()).unwrap());
    scribble(name.as_str(), 8, &77u32.to_ne_bytes()); // header word 2: the format version
    let error = SharedHashMap::open(name.as_str()).unwrap_err();
    assert!(
        matches!(error, Error::IncompatibleVersion { found: 77, .. }),
        "{error:?}"
    );
    assert!(message(&error).contains("format version 0x4d"));
}

#[test]
fn a_resized_object_is_a_size_mismatch() {
    let name = UniqueName::new("size");
    drop(SharedHashMap::create(name.as_str(), layout()).unwrap());
    let fd = rustix::shm::open(
        format!("/{}", name.as_str()).as_str(),
        OFlags::RDWR,
        Mode::empty(),
    )
    .unwrap();
    let expected = layout().region_size() as u64;
    rustix::fs::ftruncate(&fd, expected + 4096).unwrap();
    let error = SharedHashMap::open(name.as_str()).unwrap_err();
    assert!(
        matches!(error, Error::SizeMismatch { expected: e, found, .. } if e == expected && found == expected + 4096),
        "{error:?}"
    );
    assert!(message(&error).contains(&format!("needs {expected}")));
    rustix::fs::ftruncate(&fd, 64).unwrap();
    assert!(matches!(
        SharedHashMap::open(name.as_str()),
        Err(Error::SizeMismatch { .. })
    ));
}

#[test]
fn a_map_left_half_initialized_times_out() {
    let name = UniqueName::new("half");
    // A header whose creator died after marking it INITIALIZING.
    let mut header = Vec::new();
    header.extend_from_slice(b"SHMH");
    header.extend_from_slice(b"INIT");
    foreign_object(name.as_str(), 4096, &header);
    let options = Options::new().timeout(Duration::from_millis(200));
    let started = Instant::now();
    let error = SharedHashMap::open_with(name.as_str(), &options).unwrap_err();
    assert!(matches!(error, Error::TimedOut { .. }), "{error:?}");
    assert!(message(&error).contains("timed out") && message(&error).contains(name.as_str()));
    assert!((Duration::from_millis(200)..Duration::from_secs(5)).contains(&started.elapsed()));
}

#[test]
fn an_object_never_sized_times_out() {
    let name = UniqueName::new("empty");
    foreign_object(name.as_str(), 0, &[]);
    let options = Options::new().timeout(Duration::from_millis(100));
    let error = SharedHashMap::open_with(name.as_str(), &options).unwrap_err();
    assert!(matches!(error, Error::TimedOut { .. }), "{error:?}");
}

#[test]
fn open_or_create_with_another_layout_names_both() {
    let name = UniqueName::new("layouts");
    let _map = SharedHashMap::create(name.as_str(), layout()).unwrap();
    let other = Layout::new(200, 8, 8).unwrap();
    let error = SharedHashMap::open_or_create(name.as_str(), other).unwrap_err();
    assert!(
        matches!(error, Error::LayoutMismatch { existing, requested, .. } if existing == layout() && requested == other),
        "{error:?}"
    );
    let text = message(&error);
    assert!(
        text.contains("100 entries") && text.contains("200 entries"),
        "{text}"
    );
    // The same layout opens it.
    assert!(
        !SharedHashMap::open_or_create(name.as_str(), layout())
            .unwrap()
            .created()
    );
}

#[test]
fn unlink_removes_the_name_but_open_handles_keep_working() {
    let name = UniqueName::new("unlink");
    let map = SharedHashMap::create(name.as_str(), layout()).unwrap();
    SharedHashMap::unlink(name.as_str()).unwrap();
    assert!(matches!(
        SharedHashMap::open(name.as_str()),
        Err(Error::NotFound { .. })
    ));
    map.insert(b"still", b"works").unwrap();
    assert_eq!(
        map.get_into::<16>(b"still").unwrap().as_deref(),
        Some(&b"works"[..])
    );
    // The name is free for a new map.
    let again = SharedHashMap::create(name.as_str(), layout()).unwrap();
    assert!(again.is_empty());
}

#[test]
fn file_backed_maps_persist() {
    let dir = std::env::temp_dir().join(format!("shm-hashmap-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("map");
    {
        let map = SharedHashMap::create_file(&path, layout(), &Options::new()).unwrap();
        map.insert(b"durable", b"yes").unwrap();
        map.flush().unwrap();
    }
    let map = SharedHashMap::open_file(&path, &Options::new()).unwrap();
    assert_eq!(
        map.get_into::<16>(b"durable").unwrap().as_deref(),
        Some(&b"yes"[..])
    );
    assert!(matches!(
        SharedHashMap::create_file(&path, layout(), &Options::new()),
        Err(Error::AlreadyExists { .. })
    ));
    drop(map);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn typed_maps_share_by_name_too() {
    let name = UniqueName::new("typed");
    let counts: SharedMap<str, u64> = SharedMap::create(name.as_str(), layout()).unwrap();
    counts.fetch_add("hits", 2).unwrap();
    let other: SharedMap<str, u64> = SharedMap::open(name.as_str()).unwrap();
    assert_eq!(other.get("hits").unwrap(), Some(2));
    assert_eq!(other.name(), format!("/{}", name.as_str()));
}
