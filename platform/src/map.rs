//! [`SharedHashMap`] and [`SharedMap`]: a map in a POSIX shared memory object (or a file),
//! created, opened and removed by name.
//!
//! Creating a map is: `shm_open(O_CREAT | O_EXCL)`, `ftruncate` to the layout's size, `mmap`,
//! format (the header's state goes INITIALIZING, then READY last). Opening is: `shm_open`,
//! `fstat`, `mmap`, then wait (bounded) for READY, and check magic, version and size. A handle
//! unmaps when dropped; the object lives on until [`SharedHashMap::unlink`].

use crate::error::Error;
use crate::liveness::ProcessLiveness;
use crate::name;
use crate::segment::Segment;
use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags};
use shared_hashmap::{Layout, Map, RawMap};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How maps are created and opened.
#[derive(Debug, Clone)]
pub struct Options {
    mode: u32,
    timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: 0o600,
            timeout: Duration::from_secs(10),
        }
    }
}

impl Options {
    /// The defaults: mode 0600 (only this user can open the map), waits of up to 10 s.
    pub fn new() -> Self {
        Options::default()
    }

    /// The permission bits a new map gets, exactly (the umask does not apply): 0600 by default,
    /// 0660 to share with the group, 0666 to share with every user.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// How long any wait may last: for a map that is still being initialized, and for a lock
    /// held by a live process. An operation that waits longer returns a timeout error.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// What a handle keeps besides the map: the mapping, the liveness the map waits with. The
/// accessors and `flush` of both handle types are here, so the two share them.
#[derive(Debug)]
struct Attachment {
    name: String,
    /// The file a file-backed map lives in; `None` for a map in shared memory (named `name`).
    file: Option<PathBuf>,
    created: bool,
    /// Whether dropping the handle removes the map's name (or file).
    unlink_on_drop: bool,
    // Boxed so that its address, which the map holds, survives moves of the handle.
    liveness: Box<ProcessLiveness>,
    segment: Segment,
}

impl Attachment {
    fn new(backing: &Backing<'_>, liveness: Box<ProcessLiveness>, segment: Segment) -> Self {
        Attachment {
            name: backing.name(),
            file: match backing {
                Backing::Shm(_) => None,
                Backing::File(path) => Some(path.to_path_buf()),
            },
            created: false,
            unlink_on_drop: false,
            liveness,
            segment,
        }
    }

    fn backing(&self) -> Backing<'_> {
        match &self.file {
            Some(path) => Backing::File(path),
            None => Backing::Shm(&self.name),
        }
    }

    fn flush(&self) -> Result<(), Error> {
        self.segment
            .flush()
            .map_err(|errno| Error::os(&self.name, "msync", errno))
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        if self.unlink_on_drop {
            // Nothing to report it to; a name already removed (by anyone) is the usual cause.
            let _ = self.backing().unlink();
        }
    }
}

/// A map in POSIX shared memory, shared by name between processes. It dereferences to the core
/// [`RawMap`], so every map operation works on it.
///
/// A handle belongs to the process that opened it: do not use it in a child made by `fork`
/// (the child would take locks under its parent's owner id, see [`ProcessLiveness`]); open the
/// map again in the child instead.
///
/// ```
/// use shared_hashmap_posix::{Layout, SharedHashMap};
///
/// # let name = format!("doc-shared-{}", std::process::id());
/// let map = SharedHashMap::create(&name, Layout::new(1000, 32, 64)?)?;
/// map.insert(b"key", b"value")?;
///
/// // Another process (here the same one) opens it by name.
/// let other = SharedHashMap::open(&name)?;
/// assert_eq!(other.get_into::<64>(b"key")?.as_deref(), Some(&b"value"[..]));
/// SharedHashMap::unlink(&name)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SharedHashMap {
    // Declared before `attachment`: the map holds addresses into it.
    raw: RawMap<'static>,
    attachment: Attachment,
}

impl Deref for SharedHashMap {
    type Target = RawMap<'static>;

    fn deref(&self) -> &RawMap<'static> {
        &self.raw
    }
}

/// Where the bytes come from.
enum Backing<'a> {
    Shm(&'a str),
    File(&'a Path),
}

impl Backing<'_> {
    fn name(&self) -> String {
        match self {
            Backing::Shm(name) => (*name).to_owned(),
            Backing::File(path) => path.display().to_string(),
        }
    }

    fn open(&self, create: bool, mode: u32) -> Result<OwnedFd, Error> {
        use rustix::shm::OFlags as ShmFlags;
        let mode = Mode::from_raw_mode(mode);
        let result = match self {
            Backing::Shm(name) => {
                let flags = if create {
                    ShmFlags::CREATE | ShmFlags::EXCL | ShmFlags::RDWR
                } else {
                    ShmFlags::RDWR
                };
                rustix::shm::open(*name, flags, mode)
            }
            Backing::File(path) => {
                let flags = if create {
                    OFlags::CREATE | OFlags::EXCL | OFlags::RDWR
                } else {
                    OFlags::RDWR
                };
                rustix::fs::open(*path, flags | OFlags::CLOEXEC, mode)
            }
        };
        result
            .map_err(|errno| Error::os(&self.name(), if create { "create" } else { "open" }, errno))
    }

    fn unlink(&self) -> Result<(), Error> {
        let result = match self {
            Backing::Shm(name) => rustix::shm::unlink(*name),
            Backing::File(path) => rustix::fs::unlink(*path),
        };
        result.map_err(|errno| Error::os(&self.name(), "unlink", errno))
    }
}

impl SharedHashMap {
    /// Creates a map named `name` with `layout`. Fails if the name is taken.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::AlreadyExists`], [`Error::PermissionDenied`],
    /// [`Error::NotShareable`], [`Error::Os`] (for example no space).
    pub fn create(name: &str, layout: Layout) -> Result<Self, Error> {
        Self::create_with(name, layout, &Options::default())
    }

    /// [`create`](Self::create) with `options`.
    ///
    /// # Errors
    /// As for [`create`](Self::create).
    pub fn create_with(name: &str, layout: Layout, options: &Options) -> Result<Self, Error> {
        let name = checked_name(name)?;
        Self::create_backed(&Backing::Shm(&name), layout, options)
    }

    /// Opens the map named `name`, waiting (up to the timeout) while its creator formats it.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::NotFound`], [`Error::PermissionDenied`],
    /// [`Error::NotAMap`], [`Error::IncompatibleVersion`], [`Error::SizeMismatch`],
    /// [`Error::TimedOut`], [`Error::Map`] (a damaged header), [`Error::NotShareable`].
    pub fn open(name: &str) -> Result<Self, Error> {
        Self::open_with(name, &Options::default())
    }

    /// [`open`](Self::open) with `options`.
    ///
    /// # Errors
    /// As for [`open`](Self::open).
    pub fn open_with(name: &str, options: &Options) -> Result<Self, Error> {
        let name = checked_name(name)?;
        Self::open_backed(&Backing::Shm(&name), options)
    }

    /// Opens the map named `name`, or creates it with `layout` if there is none. When many
    /// processes call this at once, exactly one creates the map and the others open it
    /// ([`created`](Self::created) tells which).
    ///
    /// # Errors
    /// [`Error::LayoutMismatch`] if the map exists with another layout; as for
    /// [`create`](Self::create) and [`open`](Self::open).
    pub fn open_or_create(name: &str, layout: Layout) -> Result<Self, Error> {
        Self::open_or_create_with(name, layout, &Options::default())
    }

    /// [`open_or_create`](Self::open_or_create) with `options`.
    ///
    /// # Errors
    /// As for [`open_or_create`](Self::open_or_create).
    pub fn open_or_create_with(
        name: &str,
        layout: Layout,
        options: &Options,
    ) -> Result<Self, Error> {
        let name = checked_name(name)?;
        let backing = Backing::Shm(&name);
        let started = Instant::now();
        loop {
            match Self::create_backed(&backing, layout, options) {
                Err(Error::AlreadyExists { .. }) => {}
                created => return created,
            }
            match Self::open_backed(&backing, options) {
                Ok(map) if map.layout() == layout => return Ok(map),
                Ok(map) => {
                    return Err(Error::LayoutMismatch {
                        name,
                        existing: map.layout(),
                        requested: layout,
                    });
                }
                // Removed between our create and our open: try creating again.
                Err(Error::NotFound { .. }) if started.elapsed() < options.timeout => {}
                Err(error) => return Err(error),
            }
        }
    }

    /// Removes the name `name`: new opens fail, and the memory is freed once every handle is
    /// dropped. Handles stay usable until then.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::NotFound`], [`Error::PermissionDenied`].
    pub fn unlink(name: &str) -> Result<(), Error> {
        let name = checked_name(name)?;
        Backing::Shm(&name).unlink()
    }

    /// Creates a map in a new regular file at `path` (for a map that must outlive a reboot;
    /// see [`flush`](Self::flush)). Fails if the file exists. The file is removed with
    /// [`std::fs::remove_file`], or by [`unlink_on_drop`](Self::unlink_on_drop).
    ///
    /// # Errors
    /// As for [`create`](Self::create), with the file's path as the name.
    pub fn create_file(path: &Path, layout: Layout, options: &Options) -> Result<Self, Error> {
        Self::create_backed(&Backing::File(path), layout, options)
    }

    /// Opens the map in the file at `path`.
    ///
    /// # Errors
    /// As for [`open`](Self::open), with the file's path as the name.
    pub fn open_file(path: &Path, options: &Options) -> Result<Self, Error> {
        Self::open_backed(&Backing::File(path), options)
    }

    /// The map's name, as `shm_open` takes it (with its leading slash), or its file's path.
    pub fn name(&self) -> &str {
        &self.attachment.name
    }

    /// Whether this handle created the map (rather than opening an existing one).
    pub fn created(&self) -> bool {
        self.attachment.created
    }

    /// The liveness this handle's operations wait with (its owner id, its timeout).
    pub fn liveness(&self) -> &ProcessLiveness {
        &self.attachment.liveness
    }

    /// Writes the map's pages to its file and waits for the write: after a crash of the
    /// machine, the file holds the map as of the last flush. (For a map in shared memory,
    /// which does not survive a reboot, this does nothing useful.)
    ///
    /// # Errors
    /// [`Error::Os`] if `msync` fails.
    pub fn flush(&self) -> Result<(), Error> {
        self.attachment.flush()
    }

    /// This handle, made to remove the map's name (or, for a file-backed map, its file) when
    /// it is dropped, as [`unlink`](Self::unlink) does: for the process that owns the map's
    /// lifetime, so that the name goes away however it ends, by a return, an error or a panic
    /// that unwinds. (Not when the process ends without running destructors: killed by a
    /// signal, `std::process::exit`, an abort.) Other handles stay usable until dropped.
    ///
    /// ```
    /// use shared_hashmap_posix::{Error, Layout, SharedHashMap};
    ///
    /// # let name = format!("doc-unlink-on-drop-{}", std::process::id());
    /// {
    ///     let map = SharedHashMap::create(&name, Layout::new(10, 8, 8)?)?.unlink_on_drop();
    ///     map.insert(b"k", b"v")?;
    /// }
    /// assert!(matches!(SharedHashMap::open(&name), Err(Error::NotFound { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn unlink_on_drop(mut self) -> Self {
        self.attachment.unlink_on_drop = true;
        self
    }

    fn create_backed(
        backing: &Backing<'_>,
        layout: Layout,
        options: &Options,
    ) -> Result<Self, Error> {
        ensure_shareable()?;
        let name = backing.name();
        let fd = backing.open(true, options.mode)?;
        // Exactly the mode asked for: `open` applies the umask, which would turn a requested
        // 0660 (shared with a group) into 0640, out of the group's reach.
        let made = rustix::fs::fchmod(&fd, Mode::from_raw_mode(options.mode))
            .map_err(|errno| Error::os(&name, "fchmod", errno))
            .and_then(|()| Self::format(fd, backing, layout, options));
        if made.is_err() {
            // Leave no half-made object behind.
            let _ = backing.unlink();
        }
        made
    }

    fn format(
        fd: OwnedFd,
        backing: &Backing<'_>,
        layout: Layout,
        options: &Options,
    ) -> Result<Self, Error> {
        let name = &backing.name();
        let size = layout.region_size();
        rustix::fs::ftruncate(&fd, size as u64)
            .map_err(|errno| Error::os(name, "ftruncate", errno))?;
        let segment = Segment::map(fd, size).map_err(|errno| Error::os(name, "mmap", errno))?;
        let liveness = Box::new(ProcessLiveness::new(options.timeout));
        let mut seed = [0u8; 8];
        rustix::rand::getrandom(&mut seed, rustix::rand::GetRandomFlags::empty())
            .map_err(|errno| Error::os(name, "getrandom", errno))?;
        // SAFETY: see `attached`, which this shares its reasoning with; nobody else can use the
        // object yet (it was created with O_EXCL and its header is not READY).
        #[allow(unsafe_code)]
        let raw = unsafe {
            RawMap::init_raw(
                segment.base(),
                segment.len(),
                layout,
                u64::from_le_bytes(seed),
                liveness_ref(&liveness),
            )
        }
        .map_err(|error| Error::map(name, error))?;
        let mut attachment = Attachment::new(backing, liveness, segment);
        attachment.created = true;
        Ok(SharedHashMap { raw, attachment })
    }

    fn open_backed(backing: &Backing<'_>, options: &Options) -> Result<Self, Error> {
        ensure_shareable()?;
        let name = backing.name();
        let started = Instant::now();
        loop {
            let fd = backing.open(false, options.mode)?;
            let size = rustix::fs::fstat(&fd)
                .map_err(|errno| Error::os(&name, "fstat", errno))?
                .st_size as u64;
            match Self::attached(fd, backing, size, options) {
                // An object whose creator has not yet set its size is empty: wait for the
                // creator, up to the timeout. (A blank or half-formatted header is waited for
                // inside `attach_raw`.)
                Err(Error::SizeMismatch { found: 0, .. })
                    if started.elapsed() < options.timeout =>
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(Error::SizeMismatch { found: 0, .. }) => return Err(Error::TimedOut { name }),
                attached => return attached,
            }
        }
    }

    fn attached(
        fd: OwnedFd,
        backing: &Backing<'_>,
        size: u64,
        options: &Options,
    ) -> Result<Self, Error> {
        let name = &backing.name();
        let Ok(len) = usize::try_from(size) else {
            return Err(Error::SizeMismatch {
                name: name.to_owned(),
                expected: 0,
                found: size,
            });
        };
        if len == 0 {
            return Err(Error::SizeMismatch {
                name: name.to_owned(),
                expected: 0,
                found: 0,
            });
        }
        let segment = Segment::map(fd, len).map_err(|errno| Error::os(name, "mmap", errno))?;
        let liveness = Box::new(ProcessLiveness::new(options.timeout));
        // SAFETY:
        // - the segment maps `len` bytes read-write, and the handle built here keeps it mapped
        //   for as long as the map (declared first in `SharedHashMap`, and never handed out by
        //   value: `Deref` gives `&RawMap`, whose `handle()` is bounded by that borrow);
        // - every process that maps the object accesses it only through this crate's maps,
        //   with atomics;
        // - the liveness lives in a box the handle owns, beside the segment.
        #[allow(unsafe_code)]
        let raw =
            unsafe { RawMap::attach_raw(segment.base(), segment.len(), liveness_ref(&liveness)) };
        let raw = raw.map_err(|error| match error {
            shared_hashmap::Error::RegionTooSmall { needed, got } => Error::SizeMismatch {
                name: name.to_owned(),
                expected: needed as u64,
                found: got as u64,
            },
            error => Error::map(name, error),
        })?;
        let expected = raw.layout().region_size() as u64;
        if size != expected {
            return Err(Error::SizeMismatch {
                name: name.to_owned(),
                expected,
                found: size,
            });
        }
        Ok(SharedHashMap {
            raw,
            attachment: Attachment::new(backing, liveness, segment),
        })
    }
}

/// A `'static` reference to a liveness that a handle owns in a box.
///
/// # Safety
///
/// Behavior is undefined if any of the following conditions are violated:
/// - `liveness` is in a box that outlives every use of the returned reference: the box and the
///   map given the reference belong to one handle, which drops the map first and never hands
///   the map out by value.
#[allow(unsafe_code)]
unsafe fn liveness_ref(liveness: &ProcessLiveness) -> &'static ProcessLiveness {
    // SAFETY: the caller keeps the referent alive as long as the reference is used.
    unsafe { &*std::ptr::from_ref(liveness) }
}

fn checked_name(name: &str) -> Result<String, Error> {
    name::normalize(name).map_err(|reason| Error::InvalidName {
        name: name.to_owned(),
        reason,
    })
}

fn ensure_shareable() -> Result<(), Error> {
    if RawMap::SHAREABLE_BETWEEN_PROCESSES {
        Ok(())
    } else {
        Err(Error::NotShareable)
    }
}

/// A typed map in POSIX shared memory: [`SharedHashMap`] with keys of type `K` and values of type
/// `V` (see [`Map`]). It dereferences to the core's [`Map`]. It is made, opened and removed
/// as [`SharedHashMap`] is, and like it must not be used in a child made by `fork`.
///
/// ```
/// use shared_hashmap_posix::{Layout, SharedMap};
///
/// # let name = format!("doc-typed-{}", std::process::id());
/// let counts: SharedMap<str, u64> = SharedMap::create(&name, Layout::new(100, 32, 8)?)?;
/// counts.fetch_add("requests", 1)?;
/// assert_eq!(counts.get("requests")?, Some(1));
/// SharedMap::<str, u64>::unlink(&name)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SharedMap<K: ?Sized, V: ?Sized> {
    // Declared before `attachment`, as in `SharedHashMap`.
    map: Map<'static, K, V>,
    attachment: Attachment,
}

impl<K: ?Sized, V: ?Sized> std::fmt::Debug for SharedMap<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedMap")
            .field("name", &self.attachment.name)
            .finish_non_exhaustive()
    }
}

impl<K: ?Sized, V: ?Sized> Deref for SharedMap<K, V> {
    type Target = Map<'static, K, V>;

    fn deref(&self) -> &Map<'static, K, V> {
        &self.map
    }
}

impl<K: ?Sized, V: ?Sized> From<SharedHashMap> for SharedMap<K, V> {
    fn from(shared: SharedHashMap) -> Self {
        SharedMap {
            map: Map::new(shared.raw),
            attachment: shared.attachment,
        }
    }
}

impl<K: ?Sized, V: ?Sized> SharedMap<K, V> {
    /// Creates a typed map; see [`SharedHashMap::create`].
    ///
    /// # Errors
    /// As for [`SharedHashMap::create`].
    pub fn create(name: &str, layout: Layout) -> Result<Self, Error> {
        SharedHashMap::create(name, layout).map(SharedMap::from)
    }

    /// Creates a typed map with `options`; see [`SharedHashMap::create_with`].
    ///
    /// # Errors
    /// As for [`SharedHashMap::create`].
    pub fn create_with(name: &str, layout: Layout, options: &Options) -> Result<Self, Error> {
        SharedHashMap::create_with(name, layout, options).map(SharedMap::from)
    }

    /// Opens a typed map; see [`SharedHashMap::open`].
    ///
    /// # Errors
    /// As for [`SharedHashMap::open`].
    pub fn open(name: &str) -> Result<Self, Error> {
        SharedHashMap::open(name).map(SharedMap::from)
    }

    /// Opens a typed map with `options`; see [`SharedHashMap::open_with`].
    ///
    /// # Errors
    /// As for [`SharedHashMap::open`].
    pub fn open_with(name: &str, options: &Options) -> Result<Self, Error> {
        SharedHashMap::open_with(name, options).map(SharedMap::from)
    }

    /// Opens or creates a typed map; see [`SharedHashMap::open_or_create`].
    ///
    /// # Errors
    /// As for [`SharedHashMap::open_or_create`].
    pub fn open_or_create(name: &str, layout: Layout) -> Result<Self, Error> {
        SharedHashMap::open_or_create(name, layout).map(SharedMap::from)
    }

    /// Opens or creates a typed map with `options`; see
    /// [`SharedHashMap::open_or_create_with`].
    ///
    /// # Errors
    /// As for [`SharedHashMap::open_or_create`].
    pub fn open_or_create_with(
        name: &str,
        layout: Layout,
        options: &Options,
    ) -> Result<Self, Error> {
        SharedHashMap::open_or_create_with(name, layout, options).map(SharedMap::from)
    }

    /// Removes the name `name`; see [`SharedHashMap::unlink`], which this is (the types do not
    /// matter, so name any: `SharedMap::<str, u64>::unlink(name)`).
    ///
    /// # Errors
    /// As for [`SharedHashMap::unlink`].
    pub fn unlink(name: &str) -> Result<(), Error> {
        SharedHashMap::unlink(name)
    }

    /// Creates a typed map in a new regular file; see [`SharedHashMap::create_file`].
    ///
    /// # Errors
    /// As for [`SharedHashMap::create_file`].
    pub fn create_file(path: &Path, layout: Layout, options: &Options) -> Result<Self, Error> {
        SharedHashMap::create_file(path, layout, options).map(SharedMap::from)
    }

    /// Opens the typed map in the file at `path`; see [`SharedHashMap::open_file`].
    ///
    /// # Errors
    /// As for [`SharedHashMap::open_file`].
    pub fn open_file(path: &Path, options: &Options) -> Result<Self, Error> {
        SharedHashMap::open_file(path, options).map(SharedMap::from)
    }

    /// The map's name (or file path); see [`SharedHashMap::name`].
    pub fn name(&self) -> &str {
        &self.attachment.name
    }

    /// Whether this handle created the map.
    pub fn created(&self) -> bool {
        self.attachment.created
    }

    /// The liveness this handle's operations wait with (its owner id, its timeout).
    pub fn liveness(&self) -> &ProcessLiveness {
        &self.attachment.liveness
    }

    /// Writes the map's pages to its file; see [`SharedHashMap::flush`].
    ///
    /// # Errors
    /// As for [`SharedHashMap::flush`].
    pub fn flush(&self) -> Result<(), Error> {
        self.attachment.flush()
    }

    /// This handle, made to remove the map's name (or file) when dropped; see
    /// [`SharedHashMap::unlink_on_drop`].
    #[must_use]
    pub fn unlink_on_drop(mut self) -> Self {
        self.attachment.unlink_on_drop = true;
        self
    }
}
