//! Shared memory object names: checked against POSIX's rules before any system call.

/// The longest name, in bytes, after its leading slash (Linux's `NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// Turns `name` into the form `shm_open` takes: one leading slash (added if missing, as
/// Python's `multiprocessing.shared_memory` does), then 1 to [`NAME_MAX`] bytes with no other
/// slash and no NUL, and not `.` or `..`.
///
/// # References
/// - [POSIX `shm_open`](https://pubs.opengroup.org/onlinepubs/9799919799/functions/shm_open.html)
/// - [Linux `shm_overview(7)`](https://man7.org/linux/man-pages/man7/shm_overview.7.html)
pub(crate) fn normalize(name: &str) -> Result<String, &'static str> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    if bare.is_empty() {
        return Err("it is empty");
    }
    if bare.contains('/') {
        return Err("it has a slash after the first character");
    }
    if bare.contains('\0') {
        return Err("it contains a NUL byte");
    }
    if bare == "." || bare == ".." {
        return Err("it is `.` or `..`");
    }
    if bare.len() > NAME_MAX {
        return Err("it is longer than NAME_MAX (255 bytes) after the slash");
    }
    Ok(format!("/{bare}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names_get_one_leading_slash() {
        assert_eq!(normalize("map").unwrap(), "/map");
        assert_eq!(normalize("/map").unwrap(), "/map");
        assert_eq!(normalize("/a.b-c_d").unwrap(), "/a.b-c_d");
        assert_eq!(
            normalize(&"x".repeat(NAME_MAX)).unwrap().len(),
            NAME_MAX + 1
        );
    }

    #[test]
    fn bad_names_say_why() {
        assert_eq!(normalize(""), Err("it is empty"));
        assert_eq!(normalize("/"), Err("it is empty"));
        assert_eq!(
            normalize("//map"),
            Err("it has a slash after the first character")
        );
        assert_eq!(
            normalize("/a/b"),
            Err("it has a slash after the first character")
        );
        assert_eq!(
            normalize("../etc"),
            Err("it has a slash after the first character")
        );
        assert_eq!(normalize(".."), Err("it is `.` or `..`"));
        assert_eq!(normalize("/."), Err("it is `.` or `..`"));
        assert_eq!(normalize("a\0b"), Err("it contains a NUL byte"));
        assert!(normalize(&"x".repeat(NAME_MAX + 1)).is_err());
    }
}
