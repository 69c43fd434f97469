//! Stack overflow of a process: it runs into the guard page below its stack (never
//! into a neighbour's stack), and the program ends with a message naming the
//! process.
//!
//! A `SIGSEGV`/`SIGBUS` handler, installed once, runs on the thread's alternate
//! signal stack. While a process runs, a thread-local records its guard page, pid
//! and template name; a fault inside that guard page prints
//! `chronoflow: process <PID> (NAME) overflowed its stack of N bytes` to standard
//! error and aborts. Any other fault goes to the handler that was installed before
//! (Rust's own, which reports overflows of thread stacks), or to the default
//! action.

use std::cell::Cell;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::Once;

use corosensei::Yielder;

use crate::kernel::Wait;
use crate::signal::Pid;

/// What the signal handler (and the panic hook, [`super::hook`]) needs to know
/// about the running process.
///
/// Kept small: it is part of every stackful engine's block.
pub(crate) struct Running {
    /// Its guard page's first address (0 until it has a stack); the page ends
    /// at [`guard_end`](Self::guard_end), where its stack begins.
    pub(crate) guard_start: usize,
    /// Its stack's size (as asked for, until it has a stack; then its size
    /// class): the stack's top is at [`stack_base`](Self::stack_base).
    pub(crate) stack_size: usize,
    /// Its coroutine's yielder, once the coroutine has started (null before).
    pub(crate) yielder: Cell<*const Yielder<bool, Wait>>,
    pub(crate) pid: Pid,
    pub(crate) name: *const u8,
    pub(crate) name_len: usize,
}

impl Running {
    /// One past its guard page's last address: its stack's lowest.
    #[inline]
    pub(crate) fn guard_end(&self) -> usize {
        // (The page size is known by then: the stack pool asked for it.)
        self.guard_start + super::stack::page_size()
    }

    /// The top of its stack (one past the last address).
    #[inline]
    pub(crate) fn stack_base(&self) -> usize {
        self.guard_end() + self.stack_size
    }
}

thread_local! {
    static RUNNING: Cell<*const Running> = const { Cell::new(ptr::null()) };
}

/// Records `running` (which must stay valid until [`leave`]) as the process on this
/// thread's CPU; returns what it replaces, for `leave`.
#[inline]
pub(crate) fn enter(running: *const Running) -> *const Running {
    RUNNING.with(|r| r.replace(running))
}

/// Calls `f` with the record of the process running on this thread, if any (and
/// if the thread-local is still there).
#[inline]
pub(crate) fn with_running(f: impl FnOnce(&Running)) {
    let running = RUNNING.try_with(|r| r.get()).unwrap_or(ptr::null());
    // SAFETY: a non-null pointer is the running process's record, alive while it
    // runs (see `Entered`).
    if let Some(r) = unsafe { running.as_ref() } {
        f(r);
    }
}

/// Restores what [`enter`] replaced.
#[inline]
pub(crate) fn leave(previous: *const Running) {
    RUNNING.with(|r| r.set(previous));
}

/// [`enter`] until dropped, then [`leave`], even when a panic unwinds through: a
/// record of a process whose engine is gone must never stay where the fault
/// handler reads it.
pub(crate) struct Entered(*const Running);

impl Entered {
    /// Records `running`, which must stay valid while this lives.
    #[inline(always)]
    pub(crate) fn new(running: &Running) -> Self {
        Entered(enter(running))
    }
}

impl Drop for Entered {
    #[inline(always)]
    fn drop(&mut self) {
        leave(self.0);
    }
}

static INSTALL: Once = Once::new();
static mut PREVIOUS_SEGV: MaybeUninit<libc::sigaction> = MaybeUninit::uninit();
static mut PREVIOUS_BUS: MaybeUninit<libc::sigaction> = MaybeUninit::uninit();

/// Installs the handler (once per program) and makes sure this thread has an
/// alternate signal stack for it to run on.
pub(crate) fn install() {
    INSTALL.call_once(|| {
        // SAFETY: runs once, before any of our handlers can run; the previous
        // actions are stored before the new ones take effect.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGSEGV, &action, (&raw mut PREVIOUS_SEGV).cast());
            libc::sigaction(libc::SIGBUS, &action, (&raw mut PREVIOUS_BUS).cast());
        }
    });
    ensure_alt_stack();
}

thread_local! {
    static ALT_STACK_CHECKED: Cell<bool> = const { Cell::new(false) };
}

/// Rust gives its own threads an alternate signal stack; a thread made some other
/// way gets one here (kept for the life of the thread).
fn ensure_alt_stack() {
    if ALT_STACK_CHECKED.with(|c| c.replace(true)) {
        return;
    }
    // SAFETY: querying and setting this thread's alternate stack; the new stack is
    // a fresh mapping that is never unmapped.
    unsafe {
        let mut current: libc::stack_t = std::mem::zeroed();
        if libc::sigaltstack(ptr::null(), &mut current) != 0
            || current.ss_flags & libc::SS_DISABLE == 0
        {
            return;
        }
        let size = 64 * 1024;
        let mem = libc::mmap(
            ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if mem == libc::MAP_FAILED {
            return;
        }
        let stack = libc::stack_t {
            ss_sp: mem,
            ss_flags: 0,
            ss_size: size,
        };
        libc::sigaltstack(&stack, ptr::null_mut());
    }
}

extern "C" fn handler(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let running = RUNNING.with(|r| r.get());
    // SAFETY: a non-null pointer is the running process's record, alive while it runs.
    if let Some(r) = unsafe { running.as_ref() }
        && (r.guard_start..r.guard_end()).contains(&addr)
    {
        report(r);
        // SAFETY: abort is async-signal-safe.
        unsafe { libc::abort() };
    }
    // Not ours: hand it to the previous handler, or let the default action happen
    // when the faulting instruction runs again.
    // SAFETY: the previous actions were stored by `install` before this handler
    // was installed.
    unsafe {
        let previous = if signal == libc::SIGBUS {
            (&raw const PREVIOUS_BUS).cast::<libc::sigaction>()
        } else {
            (&raw const PREVIOUS_SEGV).cast::<libc::sigaction>()
        };
        let previous = *previous;
        if previous.sa_sigaction == libc::SIG_DFL || previous.sa_sigaction == libc::SIG_IGN {
            let mut default: libc::sigaction = std::mem::zeroed();
            default.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(signal, &default, ptr::null_mut());
        } else if previous.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(previous.sa_sigaction);
            f(signal, info, context);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(previous.sa_sigaction);
            f(signal);
        }
    }
}

/// Writes the report with `write(2)` only: no allocation, no locks.
fn report(r: &Running) {
    let mut buf = [0u8; 512];
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        let n = bytes.len().min(buf.len() - len);
        buf[len..len + n].copy_from_slice(&bytes[..n]);
        len += n;
    };
    put(b"chronoflow: process <");
    put(decimal(r.pid.0, &mut [0u8; 20]));
    put(b"> (");
    // SAFETY: the name is the process's template name, alive while it runs.
    put(unsafe { std::slice::from_raw_parts(r.name, r.name_len.min(200)) });
    put(b") overflowed its stack of ");
    put(decimal(r.stack_size as u64, &mut [0u8; 20]));
    put(b" bytes; aborting\n");
    // SAFETY: write is async-signal-safe; buf holds len initialized bytes.
    unsafe { libc::write(2, buf.as_ptr().cast(), len) };
}

fn decimal(mut n: u64, out: &mut [u8; 20]) -> &[u8] {
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &out[i..];
        }
    }
}
