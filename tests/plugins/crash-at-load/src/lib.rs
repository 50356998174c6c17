//! A library whose entry point crashes (SIGSEGV) the process that loads it: the host must probe it in a child
//! process, refuse it naming the library, and keep running.

/// The entry point hashi looks for; it writes through a null pointer.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn hashi_plugin_entry() -> *const u8 {
    // SAFETY: none; the crash is the point of this library.
    unsafe { std::ptr::null_mut::<u8>().write_volatile(1) };
    std::ptr::null()
}
