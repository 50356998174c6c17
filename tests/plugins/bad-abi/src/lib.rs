//! A plugin whose header claims ABI major 99: the host must refuse it before calling anything else.

use hashi_plugin_api::{Header, MAGIC, StrRef};

/// The entry point, with a future ABI version.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn hashi_plugin_entry() -> *const Header {
    static HEADER: Header = Header {
        magic: MAGIC,
        abi_major: 99,
        abi_minor: 0,
        size: size_of::<Header>() as u32,
        canary: StrRef::from_static(hashi_plugin_api::CANARY),
        name: StrRef::from_static("future"),
        version: StrRef::from_static("9.9.9"),
        description: StrRef::from_static("built for another ABI"),
        backend: std::ptr::null(),
        export: std::ptr::null(),
    };
    &HEADER
}
