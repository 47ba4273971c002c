//! The timers' wake-up: a `timerfd` in the poll set, armed for the earliest deadline, so
//! the poll itself sleeps without a timeout.
//!
//! A poll with a timeout arms a kernel timer when it sleeps and cancels it when a peer
//! wakes it first: on a busy loop, twice per event. On a VM each of those can reprogram
//! the virtual timer device, a trap to the hypervisor. At 10,000 pushes/s a 10 ms timer
//! that does nothing (the daemon's heartbeat tick) cost ~10 % of the server's CPU and
//! ~4 µs of median latency that way (docs/BENCHMARKS.md, "The timers' wake-up"). The
//! timerfd is re-armed only when the earliest deadline changes: once per timer run.
//!
//! Where no timerfd can be had (not Linux, or the call failed) the poll's timeout does
//! the job, as before.

use mio::Registry;
use std::time::{Duration, Instant};

#[cfg(target_os = "linux")]
use {
    super::token,
    mio::{unix::SourceFd, Interest},
    rustix::time::{
        timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags,
        TimerfdTimerFlags, Timespec,
    },
    std::os::fd::{AsRawFd, OwnedFd},
};

/// The wake-up for the earliest timer (see the module docs).
#[derive(Debug)]
pub(crate) struct Alarm {
    /// The timerfd, registered with [`token::ALARM`]; `None` where there is none.
    #[cfg(target_os = "linux")]
    fd: Option<OwnedFd>,
    /// The deadline it is armed for.
    armed: Option<Instant>,
}

impl Alarm {
    /// A disarmed alarm registered in `registry`, or one that leaves the waiting to the
    /// poll's timeout if the timerfd cannot be made.
    pub(crate) fn new(registry: &Registry) -> Self {
        #[cfg(target_os = "linux")]
        {
            let fd = timerfd_create(
                TimerfdClockId::Monotonic,
                TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
            )
            .map_err(std::io::Error::from)
            .and_then(|fd| {
                registry
                    .register(
                        &mut SourceFd(&fd.as_raw_fd()),
                        token::ALARM,
                        Interest::READABLE,
                    )
                    .map(|()| fd)
            });
            if let Err(e) = &fd {
                log::debug!("no timerfd ({e}); timers wake the poll by its timeout");
            }
            Self {
                fd: fd.ok(),
                armed: None,
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = registry;
            Self { armed: None }
        }
    }

    /// Arms the alarm for `deadline` (`None`: nothing is due) unless it already is, and
    /// returns how long the poll must still wait on its own for it: `None` when the alarm
    /// will wake it (or nothing is due), zero when the deadline has passed.
    ///
    /// Nothing due leaves an armed alarm armed: a deadline that comes and goes from one
    /// turn to the next (the write batch's release, due only while the batch is empty)
    /// then costs no `timerfd_settime` per turn, and a ring nobody waits for any more
    /// wakes the loop once.
    pub(crate) fn set(&mut self, deadline: Option<Instant>, now: Instant) -> Option<Duration> {
        let left = deadline.map(|at| at.saturating_duration_since(now));
        if left == Some(Duration::ZERO) {
            return left;
        }
        if self.armed == deadline || deadline.is_none() {
            return if self.is_available() { None } else { left };
        }
        match self.arm(left) {
            Ok(true) => {
                self.armed = deadline;
                None
            }
            Ok(false) => left,
            Err(e) => {
                // The poll's timeout takes over; the next change of deadline tries again.
                log::debug!("timerfd_settime: {e}");
                self.armed = None;
                left
            }
        }
    }

    /// The alarm rang: it is disarmed (one-shot) and its count is read, so its next ring
    /// is a new edge.
    pub(crate) fn rang(&mut self) {
        self.armed = None;
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd {
            let mut count = [0u8; 8];
            // Nothing to read (a ring already read, or re-armed meanwhile) is fine.
            let _ = rustix::io::read(fd, &mut count);
        }
    }

    fn is_available(&self) -> bool {
        #[cfg(target_os = "linux")]
        return self.fd.is_some();
        #[cfg(not(target_os = "linux"))]
        return false;
    }

    /// Sets the timerfd to ring in `left` (`None`: disarm). `Ok(false)`: no timerfd.
    fn arm(&self, left: Option<Duration>) -> std::io::Result<bool> {
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd {
            // A zero `it_value` disarms; a deadline is never zero here (handled above).
            let value = left.map_or(Ok(Timespec::default()), Timespec::try_from);
            let spec = Itimerspec {
                it_interval: Timespec::default(),
                it_value: value.map_err(|_| std::io::ErrorKind::InvalidInput)?,
            };
            timerfd_settime(fd, TimerfdTimerFlags::empty(), &spec)?;
            return Ok(true);
        }
        let _ = left;
        Ok(false)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use mio::{Events, Poll};

    fn rings_within(poll: &mut Poll, alarm: &mut Alarm, wait: Duration) -> bool {
        let mut events = Events::with_capacity(4);
        poll.poll(&mut events, Some(wait)).unwrap();
        let rang = events.iter().any(|e| e.token() == token::ALARM);
        if rang {
            alarm.rang();
        }
        rang
    }

    #[test]
    fn it_rings_at_the_deadline_and_not_before() {
        let mut poll = Poll::new().unwrap();
        let mut alarm = Alarm::new(poll.registry());
        let now = Instant::now();
        let deadline = now + Duration::from_millis(30);
        assert_eq!(
            alarm.set(Some(deadline), now),
            None,
            "the timerfd wakes the poll"
        );
        assert!(!rings_within(
            &mut poll,
            &mut alarm,
            Duration::from_millis(10)
        ));
        assert!(rings_within(&mut poll, &mut alarm, Duration::from_secs(2)));
        assert!(Instant::now() >= deadline);
        // One-shot: nothing more until it is armed again.
        assert!(!rings_within(
            &mut poll,
            &mut alarm,
            Duration::from_millis(50)
        ));
    }

    #[test]
    fn the_same_deadline_is_armed_once_and_a_new_one_replaces_it() {
        let mut poll = Poll::new().unwrap();
        let mut alarm = Alarm::new(poll.registry());
        let now = Instant::now();
        let late = now + Duration::from_secs(60);
        assert_eq!(alarm.set(Some(late), now), None);
        assert_eq!(alarm.armed, Some(late));
        // An earlier deadline re-arms: it rings for that one.
        let soon = now + Duration::from_millis(20);
        assert_eq!(alarm.set(Some(soon), now), None);
        assert!(rings_within(&mut poll, &mut alarm, Duration::from_secs(2)));
        // Nothing due: the poll sleeps without a timeout, and an armed alarm stays armed
        // (no syscall); the same deadline back costs nothing either.
        assert_eq!(alarm.set(Some(late), Instant::now()), None);
        assert_eq!(alarm.set(None, Instant::now()), None);
        assert_eq!(alarm.armed, Some(late));
        assert_eq!(alarm.set(Some(late), Instant::now()), None);
        assert!(!rings_within(
            &mut poll,
            &mut alarm,
            Duration::from_millis(50)
        ));
    }

    #[test]
    fn a_passed_deadline_asks_for_a_poll_that_does_not_sleep() {
        let poll = Poll::new().unwrap();
        let mut alarm = Alarm::new(poll.registry());
        let now = Instant::now();
        assert_eq!(alarm.set(Some(now), now), Some(Duration::ZERO));
        assert_eq!(
            alarm.set(Some(now - Duration::from_millis(1)), now),
            Some(Duration::ZERO)
        );
    }
}
