//! The kernel's clock discipline state (adjtimex).

/// The kernel's view (adjtimex): Some(false) when it says the clock is unsynchronised.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // adjtimex has no safe wrapper in rustix or std.
pub fn synchronised() -> Option<bool> {
    // SAFETY: adjtimex with modes = 0 only reads; the struct is zeroed and owned here.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state < 0 {
        return None;
    }
    Some(state != libc::TIME_ERROR && tx.status & libc::STA_UNSYNC == 0)
}

#[cfg(not(target_os = "linux"))]
pub fn synchronised() -> Option<bool> {
    None
}
