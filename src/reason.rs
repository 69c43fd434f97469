//! Exit reasons: why a process ended, as its links and monitors are told, and
//! what an exit signal asks of its target (OTP's exit reasons).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ExitError;
use crate::signal::Value;

/// Why a process ended, or what an exit signal asks: the reason an EXIT or DOWN
/// message carries, and the reason given to [`Ctx::exit_signal`].
///
/// It is OTP's exit reason: `normal`, `shutdown` / `{shutdown, Term}`, `killed`,
/// a failure (an exception), the user's own term, and the two reasons that only
/// signals carry, `kill` and `noproc`. A process's own result says the same in
/// its `Result<R, ExitError>`: `Ok` is [`Reason::Normal`], and each
/// [`ExitError`] has its variant here ([`From<ExitError>`]).
///
/// [`Ctx::exit_signal`]: crate::Ctx::exit_signal
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reason {
    /// It returned (OTP's `normal`). As an exit signal, a non-trapping target
    /// ignores it, the sender itself included: OTP ends a process that sends
    /// `normal` to itself, but here a normal end carries the body's result,
    /// which only the body can give (it returns).
    Normal,
    /// It was shut down (OTP's `shutdown`, or `{shutdown, Term}` with a value).
    Shutdown(Option<Value>),
    /// It was killed: by the exit signal [`Reason::Kill`] (OTP's `killed`), or
    /// with its parent; the text says by what.
    Killed(String),
    /// It failed: a panic (its message), or an error of the runtime's.
    Failed(String),
    /// A reason of the user's own.
    Custom(Value),
    /// Only as an exit signal: ends its target even if it traps exits (OTP's
    /// `kill`, the one untrappable signal); the target ends
    /// [`Killed`](Self::Killed), and its links see that.
    Kill,
    /// The process named did not exist (OTP's `noproc`): the reason of the DOWN
    /// of a monitor set on a pid that had ended, or of the exit signal of a
    /// link to one.
    NoProc,
}

impl Reason {
    /// A user's reason: its `Debug` text (see [`Value::text_of`]).
    pub fn custom<T: fmt::Debug + ?Sized>(value: &T) -> Reason {
        Reason::Custom(Value::text_of(value))
    }

    /// A user's reason named by an atom, as an Erlang reason like `boom`
    /// is: `Custom(Value::atom(name))` (see [`Value::atom`]: passing it along
    /// links and monitors costs no atomic operation; atoms are never freed).
    pub fn atom(name: &str) -> Reason {
        Reason::Custom(Value::atom(name))
    }

    /// Whether it is [`Normal`](Self::Normal).
    pub fn is_normal(&self) -> bool {
        matches!(self, Reason::Normal)
    }

    /// Whether it is `normal` or a shutdown: the reasons after which OTP does not
    /// restart a transient child, and does not report an error.
    pub fn is_normal_or_shutdown(&self) -> bool {
        matches!(self, Reason::Normal | Reason::Shutdown(_))
    }

    /// The reason of a process that ended with `result`.
    #[inline]
    pub fn of<R>(result: &Result<R, ExitError>) -> Reason {
        match result {
            Ok(_) => Reason::Normal,
            Err(e) => Reason::from(e.clone()),
        }
    }

    /// What a process that ends for this reason ends with: `None` for
    /// `Normal`; [`Kill`](Self::Kill) ends it `Killed("killed")`.
    pub fn into_error(self) -> Option<ExitError> {
        Some(match self {
            Reason::Normal => return None,
            Reason::Shutdown(v) => ExitError::Shutdown(v),
            Reason::Killed(why) => ExitError::Killed(why),
            Reason::Failed(why) => ExitError::Failed(why),
            Reason::Custom(v) => ExitError::Custom(v),
            Reason::Kill => ExitError::Killed("killed".into()),
            Reason::NoProc => ExitError::NoProc,
        })
    }
}

impl From<ExitError> for Reason {
    fn from(e: ExitError) -> Reason {
        match e {
            ExitError::Failed(why) => Reason::Failed(why),
            ExitError::Killed(why) => Reason::Killed(why),
            ExitError::Shutdown(v) => Reason::Shutdown(v),
            ExitError::Custom(v) => Reason::Custom(v),
            ExitError::NoProc => Reason::NoProc,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Normal => f.write_str("normal"),
            Reason::Shutdown(None) => f.write_str("shutdown"),
            Reason::Shutdown(Some(v)) => write!(f, "shutdown: {v:?}"),
            Reason::Killed(why) if why.is_empty() => f.write_str("killed"),
            Reason::Killed(why) => write!(f, "killed: {why}"),
            Reason::Failed(why) => write!(f, "failed: {why}"),
            Reason::Custom(v) => write!(f, "{v:?}"),
            Reason::Kill => f.write_str("kill"),
            Reason::NoProc => f.write_str("noproc"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_exit_error_has_its_reason_and_back() {
        let errors = [
            ExitError::Failed("boom".into()),
            ExitError::Killed("killed".into()),
            ExitError::Shutdown(None),
            ExitError::Shutdown(Some(Value::text_of("bye"))),
            ExitError::Custom(Value::text_of(&42)),
            ExitError::NoProc,
        ];
        for e in errors {
            assert_eq!(Reason::from(e.clone()).into_error(), Some(e));
        }
        assert_eq!(Reason::Normal.into_error(), None);
        assert_eq!(
            Reason::Kill.into_error(),
            Some(ExitError::Killed("killed".into()))
        );
        assert!(Reason::Shutdown(None).is_normal_or_shutdown());
        assert!(!Reason::Killed(String::new()).is_normal_or_shutdown());
    }
}
