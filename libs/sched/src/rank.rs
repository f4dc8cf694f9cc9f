//! Who runs first: every runnable context has a [`Rank`]; the lowest runs.
//!
//! - Real-time task jobs come first (class 0): under EDF ordered by their absolute deadline,
//!   under rate-monotonic by the priority the macro computed (0 = shortest period or
//!   deadline).
//! - Threads come next (class 1), by priority (0 = most urgent, `main` is 255); under the
//!   cooperative policy all threads have the same rank and run in the order they became
//!   ready.
//! - The idle context comes last (class 2).
//!
//! A thread that holds a mutex a more urgent context waits for inherits that context's
//! rank until it unlocks (priority inheritance), so a real-time job waiting for a lock
//! held by a background thread is not held up by everything in between.

/// Lower runs first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rank {
    class: u8,
    key: u64,
}

impl Rank {
    pub const IDLE: Rank = Rank { class: 2, key: 0 };

    /// A task job under EDF: its absolute deadline, in ns since boot.
    pub const fn deadline(deadline_ns: u64) -> Rank {
        Rank {
            class: 0,
            key: deadline_ns,
        }
    }

    /// A task job under fixed priorities (rate- or deadline-monotonic).
    pub const fn task_priority(priority: u32) -> Rank {
        Rank {
            class: 0,
            key: priority as u64,
        }
    }

    /// A thread of priority `priority` (0 most urgent).
    pub const fn thread(priority: u8) -> Rank {
        Rank {
            class: 1,
            key: priority as u64,
        }
    }

    pub fn is_task(self) -> bool {
        self.class == 0
    }
}

/// One runnable context, for [`pick`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub rank: Rank,
    /// When it became ready: among equal ranks, the earliest runs first (FIFO).
    pub since: u64,
}

/// The index of the candidate to run: the lowest rank, then the earliest `since`.
pub fn pick(candidates: impl Iterator<Item = (usize, Candidate)>) -> Option<usize> {
    candidates
        .min_by_key(|(index, c)| (c.rank, c.since, *index))
        .map(|(index, _)| index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(rank: Rank, since: u64) -> Candidate {
        Candidate { rank, since }
    }

    #[test]
    fn tasks_before_threads_before_idle() {
        let all = [
            c(Rank::IDLE, 0),
            c(Rank::thread(0), 5),
            c(Rank::task_priority(3), 9),
        ];
        assert_eq!(pick(all.into_iter().enumerate()), Some(2));
        assert_eq!(pick(all.into_iter().enumerate().take(2)), Some(1));
        assert_eq!(pick(core::iter::empty()), None);
    }

    #[test]
    fn edf_runs_the_earliest_deadline() {
        // Liu & Layland's example order: deadlines 7, 4, 12 -> the one due at 4 runs.
        let all = [
            c(Rank::deadline(7_000), 0),
            c(Rank::deadline(4_000), 1),
            c(Rank::deadline(12_000), 2),
        ];
        assert_eq!(pick(all.into_iter().enumerate()), Some(1));
    }

    #[test]
    fn equal_ranks_run_in_fifo_order() {
        let all = [
            c(Rank::thread(128), 7),
            c(Rank::thread(128), 3),
            c(Rank::thread(200), 1),
        ];
        assert_eq!(pick(all.into_iter().enumerate()), Some(1));
    }

    #[test]
    fn lower_priority_numbers_are_more_urgent() {
        assert!(Rank::thread(0) < Rank::thread(255));
        assert!(Rank::task_priority(0) < Rank::task_priority(1));
        assert!(Rank::deadline(u64::MAX) < Rank::thread(0));
        assert!(Rank::thread(255) < Rank::IDLE);
    }
}
