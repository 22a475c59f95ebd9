//! Every error of creating, opening and removing a map by name is produced here, and its
//! message checked: it names the map and says what is wrong. Maps are private to their user
//! (mode 0600) unless asked otherwise; file-backed maps persist; an open waits for a map still
//! being initialized; no test leaves a shared memory object behind, even when it fails.

#[path = "../common/mod.rs"]
mod common;

use common::{UniqueName, role};
use rustix::fs::Mode;
use rustix::shm::OFlags;
use shared_hashmap_posix::{
    Error, Layout, NAME_MAX, Options, RawMap, SharedHashMap, SharedMap, SingleProcess,
};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
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

/// Asserts that `error`'s message names the map `name` and contains `what`.
fn assert_message(error: &Error, name: &str, what: &str) {
    let text = message(error);
    assert!(text.contains(name), "{text:?} does not name {name:?}");
    assert!(text.contains(what), "{text:?} does not say {what:?}");
}

/// A directory for file-backed maps, removed when dropped (also when the test fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("shm-hashmap-file-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The shared memory objects whose names `UniqueName` gave in process `pid`.
fn objects_named_by(pid: u32) -> Vec<String> {
    let prefix = format!("shm-hashmap-test-{pid}-");
    std::fs::read_dir("/dev/shm")
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(&prefix))
        .collect()
}

#[test]
fn child() {
    let Some((role, name)) = role() else { return };
    match role.as_str() {
        // Run as another user: the map must be out of reach.
        "open-as-other-user" => match SharedHashMap::open(&name) {
            Err(error @ Error::PermissionDenied { .. }) => {
                assert_message(&error, &name, "permission denied");
            }
            other => panic!("another user opened a 0600 map: {other:?}"),
        },
        // A test that fails holding a map: its name must still be removed.
        "fail-holding-a-map" => {
            let name = UniqueName::new("fails");
            let map = SharedHashMap::create(name.as_str(), layout()).unwrap();
            map.insert(b"k", b"v").unwrap();
            panic!("failing on purpose, holding {}", name.as_str());
        }
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
        assert_message(&error, &format!("{name:?}"), reason);
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
    assert_message(&SharedHashMap::open(&long).unwrap_err(), &long, "NAME_MAX");
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
            .uid(65534)
            .gid(65534);
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "the other user's child failed: {}",
            output.status
        );
        // It checked the error and its message; make sure it ran the role (not zero tests).
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(report.contains("1 passed"), "{report}");
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
        eprintln!(
            "maps_are_private_to_their_user: NOT EXERCISED: opening a 0600 map as another user \
             (needs root, to run a child as `nobody`); only the mode and a 0000 map are checked"
        );
        // Not root: a map nobody may read is out of reach for this user too.
        let locked = UniqueName::new("mode000");
        let _map =
            SharedHashMap::create_with(locked.as_str(), layout(), &Options::new().mode(0o000))
                .unwrap();
        let error = SharedHashMap::open(locked.as_str()).unwrap_err();
        assert!(matches!(error, Error::PermissionDenied { .. }), "{error:?}");
        assert_message(&error, locked.as_str(), "permission denied");
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
    assert_message(&error, name.as_str(), "format version 0x4d");
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
    assert_message(&error, name.as_str(), &format!("needs {expected}"));
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
    assert_message(&error, name.as_str(), "100 entries");
    assert_message(&error, name.as_str(), "200 entries");
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
    let dir = TempDir::new("persist");
    let path = dir.0.join("map");
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

#[test]
fn typed_maps_have_the_constructors_of_untyped_ones() {
    let name = UniqueName::new("typed-with");
    let options = Options::new()
        .mode(0o640)
        .timeout(Duration::from_millis(1500));
    {
        let counts: SharedMap<str, u64> = SharedMap::create_with(name.as_str(), layout(), &options)
            .unwrap()
            .unlink_on_drop();
        assert!(counts.created());
        let mode = std::fs::metadata(format!("/dev/shm/{}", name.as_str()))
            .unwrap()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o640);
        counts.fetch_add("hits", 3).unwrap();
        let other: SharedMap<str, u64> = SharedMap::open_with(name.as_str(), &options).unwrap();
        assert_eq!(other.liveness().timeout(), Duration::from_millis(1500));
        let third: SharedMap<str, u64> =
            SharedMap::open_or_create_with(name.as_str(), layout(), &options).unwrap();
        assert!(!third.created());
        assert_eq!(third.get("hits").unwrap(), Some(3));
        third.flush().unwrap();
    }
    // The creator's handle removed the name when dropped.
    assert!(matches!(
        SharedMap::<str, u64>::open(name.as_str()),
        Err(Error::NotFound { .. })
    ));
    let _again: SharedMap<str, u64> = SharedMap::open_or_create(name.as_str(), layout()).unwrap();
    SharedMap::<str, u64>::unlink(name.as_str()).unwrap();
    assert!(matches!(
        SharedHashMap::open(name.as_str()),
        Err(Error::NotFound { .. })
    ));

    // In a file: created, flushed, opened again, removed by the last handle's drop.
    let dir = TempDir::new("typed");
    let path = dir.0.join("map");
    {
        let map: SharedMap<str, u64> = SharedMap::create_file(&path, layout(), &options).unwrap();
        map.fetch_add("durable", 7).unwrap();
        map.flush().unwrap();
    }
    {
        let map: SharedMap<str, u64> = SharedMap::open_file(&path, &options)
            .unwrap()
            .unlink_on_drop();
        assert_eq!(map.get("durable").unwrap(), Some(7));
        assert_eq!(map.name(), path.display().to_string());
    }
    assert!(!path.exists(), "unlink_on_drop left the file");
}

#[test]
fn unlink_on_drop_removes_the_name_also_on_a_panic() {
    let name = UniqueName::new("drop-panic");
    let shm_name = name.as_str().to_owned();
    let panicked = std::thread::spawn(move || {
        let map = SharedHashMap::create(&shm_name, layout())
            .unwrap()
            .unlink_on_drop();
        map.insert(b"k", b"v").unwrap();
        panic!("failing on purpose with an unlink_on_drop handle");
    })
    .join();
    assert!(panicked.is_err());
    assert!(matches!(
        SharedHashMap::open(name.as_str()),
        Err(Error::NotFound { .. })
    ));
    // Only the handle that asked removes the name.
    let map = SharedHashMap::create(name.as_str(), layout()).unwrap();
    drop(SharedHashMap::open(name.as_str()).unwrap());
    drop(map);
    SharedHashMap::open(name.as_str()).unwrap();
}

#[test]
fn open_waits_for_a_map_still_initializing() {
    const LATE: Duration = Duration::from_millis(300);
    let name = UniqueName::new("late");
    let layout = layout();
    let len = layout.region_size();
    // A creator that has sized the object and begun its header (state INITIALIZING), written
    // before anyone opens it ...
    let fd = rustix::shm::open(
        format!("/{}", name.as_str()).as_str(),
        OFlags::CREATE | OFlags::EXCL | OFlags::RDWR,
        Mode::from_raw_mode(0o600),
    )
    .unwrap();
    rustix::fs::ftruncate(&fd, len as u64).unwrap();
    rustix::io::pwrite(&fd, b"SHMHINIT", 0).unwrap();
    let began = Instant::now();
    // ... and finishes it late, from another thread, with the core's own formatting.
    let creator = std::thread::spawn(move || {
        std::thread::sleep(LATE);
        // SAFETY:
        // - a null hint lets the kernel choose the address, so no mapping is replaced;
        // - the result is a fresh shared mapping of `len` bytes, unmapped below after the last
        //   use of the map made over it.
        let base = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED,
                &fd,
                0,
            )
        }
        .unwrap();
        {
            // SAFETY:
            // - `base` is valid for reads and writes of `len` bytes until the `munmap` below,
            //   after this map is dropped;
            // - every access to the object is through this crate's maps (with atomics): this
            //   one and the opener's, which until READY only loads header words (as with a map
            //   that `SharedHashMap::create` is formatting);
            // - nobody else formats the object.
            let map = unsafe {
                RawMap::init_raw(base.cast(), len, layout, 0x5eed, &SingleProcess).unwrap()
            };
            map.insert(b"late", b"formatted").unwrap();
        }
        // SAFETY: the range is exactly the mapping made above, and nothing uses it any more.
        unsafe { rustix::mm::munmap(base, len) }.unwrap();
    });
    let map = SharedHashMap::open_with(
        name.as_str(),
        &Options::new().timeout(Duration::from_secs(20)),
    );
    let waited = began.elapsed();
    creator.join().unwrap();
    let map = map.unwrap();
    assert!(waited >= LATE, "opened after {waited:?}, before the format");
    assert_eq!(map.layout(), layout);
    assert_eq!(
        map.get_into::<16>(b"late").unwrap().as_deref(),
        Some(&b"formatted"[..])
    );
    map.verify().unwrap();
}

#[test]
fn no_test_leaves_a_shared_memory_object_behind() {
    if role().is_some() {
        return;
    }
    // Every other test of this binary, in a child; then none of the names it made is left.
    let others = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--skip", "no_test_leaves_a_shared_memory_object_behind"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = others.id();
    let output = others.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the other tests failed:\n{report}");
    assert!(report.contains(" passed;"), "{report}");
    assert_eq!(objects_named_by(pid), Vec::<String>::new());

    // Also a test that fails holding a map.
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--quiet"])
        .env(common::ROLE, "fail-holding-a-map")
        .env(common::NAME, "unused")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let status = child.wait_with_output().unwrap().status;
    assert!(!status.success(), "the failing child did not fail");
    assert_eq!(objects_named_by(pid), Vec::<String>::new());
}
