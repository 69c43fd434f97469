//! Signal recording: off (the hot path does no signal work), into a buffer that
//! the owner pulls, or into a sink of the user's.

use crate::kernel::{Kernel, PPtr};
use crate::signal::{Signal, SignalData, SignalSink};

/// Where signals go. Buffered signals stay in `Kernel::buffer` until pulled,
/// whatever the mode becomes.
pub(crate) enum Recording<I, O> {
    Off,
    Buffer,
    Sink(Box<dyn SignalSink<I, O>>),
}

impl<I: 'static, O: 'static> Kernel<I, O> {
    pub(crate) fn is_recording(&self) -> bool {
        !matches!(self.recording, Recording::Off)
    }

    /// Emits a signal for `p`; `data` is built only when signals are recorded.
    #[inline]
    pub(crate) fn emit(&mut self, p: PPtr<I, O>, data: impl FnOnce() -> SignalData<I, O>) {
        if let Recording::Off = self.recording {
            return;
        }
        self.emit_slow(p, data());
    }

    #[cold]
    fn emit_slow(&mut self, p: PPtr<I, O>, data: SignalData<I, O>) {
        // SAFETY: p is a live process of this kernel.
        let proc = unsafe { &mut *p.as_ptr() };
        let replayed = proc.extra.as_ref().is_some_and(|e| e.replaying);
        if replayed && !self.replay_signals {
            return;
        }
        let signal = Signal {
            pid: proc.pid,
            seq: proc.seq,
            data,
            replayed,
        };
        proc.seq += 1;
        match &mut self.recording {
            Recording::Off => {}
            Recording::Buffer => self.buffer.push(signal),
            Recording::Sink(sink) => {
                // A sink's panic must not leave the kernel half-way through
                // whatever emitted the signal: kept for the caller.
                let panicked =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink.signal(signal)));
                self.report(panicked.err());
            }
        }
    }

    pub(crate) fn take_signals(&mut self) -> Vec<Signal<I, O>> {
        std::mem::take(&mut self.buffer)
    }
}
