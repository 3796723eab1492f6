//! Telling libnice which local address to gather ICE candidates on.
//!
//! Why this exists: libnice never gathers candidates on loopback interfaces, so two
//! peers on one machine with only `lo` (the e2e tests, a CI container) never connect.
//! libnice's `nice_agent_add_local_address` restricts gathering to the addresses given,
//! loopback included; webrtcbin 1.22 has no property for it, only its ICE object's
//! `agent` property (the `NiceAgent`), and gstreamer-rs has no libnice binding. So this
//! one call goes through the C ABI (doc/perch-call.rst, "Media on one machine").
//!
//! Why `unsafe` is allowed here (the workspace denies it): it is the only way to call
//! a C function gstreamer-rs does not wrap. The unsafety is kept to three calls with
//! their preconditions checked just before: the library is the one GStreamer already
//! loaded (`libnice.so.10`, looked up by name with `dlopen`, never unloaded), the
//! symbols are looked up by their exported names with the signatures of libnice 0.1's
//! public header (`agent.h`, `address.h`), and the object passed as `NiceAgent *` is
//! checked to be a `NiceAgent` GObject, kept alive by the borrowed reference for the
//! call's duration. No libnice development package is needed to build.
#![allow(unsafe_code)]

use std::ffi::{CString, c_char, c_int, c_void};

use gstreamer::glib;
use gstreamer::glib::translate::ToGlibPtr;
use gstreamer::prelude::*;

/// The soname of libnice 0.1 (Debian 12's libnice10).
const LIBNICE: &str = "libnice.so.10";

type AddressNew = unsafe extern "C" fn() -> *mut c_void;
type AddressSetFromString = unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int;
type AddressFree = unsafe extern "C" fn(*mut c_void);
type AgentAddLocalAddress = unsafe extern "C" fn(*mut c_void, *const c_void) -> c_int;

/// Adds `address` (an IPv4 or IPv6 literal) to the addresses `agent` (a `NiceAgent`)
/// gathers candidates on. Once one is added, libnice gathers on those only.
pub fn add_local_address(agent: &glib::Object, address: &str) -> Result<(), String> {
    if agent.type_().name() != "NiceAgent" {
        return Err(format!(
            "webrtcbin's ICE agent is a {}, not a NiceAgent",
            agent.type_().name()
        ));
    }
    if address.parse::<std::net::IpAddr>().is_err() {
        return Err("not an IP address".into());
    }
    let c_address = CString::new(address).map_err(|e| e.to_string())?;
    let lib = CString::new(LIBNICE).expect("no NUL in a constant");
    // SAFETY: dlopen with a valid C string; the handle is never closed, so symbols
    // looked up from it stay valid for the life of the process.
    let handle = unsafe { libc::dlopen(lib.as_ptr(), libc::RTLD_NOW) };
    if handle.is_null() {
        return Err(format!(
            "{LIBNICE} cannot be loaded (install gstreamer1.0-nice)"
        ));
    }
    let symbol = |name: &str| -> Result<*mut c_void, String> {
        let c_name = CString::new(name).expect("no NUL in a symbol name");
        // SAFETY: a valid handle and a valid C string.
        let ptr = unsafe { libc::dlsym(handle, c_name.as_ptr()) };
        if ptr.is_null() {
            Err(format!("{LIBNICE} has no symbol {name}"))
        } else {
            Ok(ptr)
        }
    };
    let new = symbol("nice_address_new")?;
    let set = symbol("nice_address_set_from_string")?;
    let free = symbol("nice_address_free")?;
    let add = symbol("nice_agent_add_local_address")?;
    // SAFETY: the pointers are libnice's exported functions, transmuted to the
    // signatures of its public header. The NiceAddress is allocated and freed by
    // libnice itself; `nice_agent_add_local_address` copies it. `agent` is checked above
    // to be a NiceAgent and stays referenced by the caller during the call.
    let added = unsafe {
        let new: AddressNew = std::mem::transmute::<*mut c_void, AddressNew>(new);
        let set: AddressSetFromString =
            std::mem::transmute::<*mut c_void, AddressSetFromString>(set);
        let free: AddressFree = std::mem::transmute::<*mut c_void, AddressFree>(free);
        let add: AgentAddLocalAddress =
            std::mem::transmute::<*mut c_void, AgentAddLocalAddress>(add);
        let addr = new();
        if addr.is_null() {
            return Err("nice_address_new failed".into());
        }
        let parsed = set(addr, c_address.as_ptr());
        let agent_ptr: *mut glib::gobject_ffi::GObject = agent.to_glib_none().0;
        let added = parsed != 0 && add(agent_ptr.cast(), addr) != 0;
        free(addr);
        added
    };
    if added {
        Ok(())
    } else {
        Err("libnice refused it".into())
    }
}
