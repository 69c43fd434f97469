//! The process table: pid to process, by direct index.
//!
//! Pids are handed out in increasing order and never reused, so the table is a
//! run of pages of `PAGE` slots, indexed by `pid / PAGE` then `pid % PAGE`: a
//! lookup is two loads, no hashing, and neighbouring pids share cache lines. A
//! page is freed once every pid of it has been handed out and has ended; the run
//! of pages drops empty pages at its front, so its length follows the span of
//! live pids, not the number ever spawned.
//!
//! A process that came from another kernel (a runtime's migration) keeps its
//! pid, which may be far from this kernel's: it goes to a hash map of its own
//! (`far`), looked up only when the pages have no such pid. (A `Vec`, not a ring: a lookup needs
//! no wrap-around, and dropping front pages, which moves the run's other entries
//! down, happens at most once per `PAGE` pids.)

use crate::signal::Pid;

const SHIFT: u32 = 10;
const PAGE: usize = 1 << SHIFT;
const MASK: u64 = PAGE as u64 - 1;

struct Page<P> {
    slots: Box<[Option<P>; PAGE]>,
    live: u32,
}

pub(crate) struct PidTable<P: Copy> {
    /// Page `i` of the run holds pids of page number `first + i`.
    pages: Vec<Option<Page<P>>>,
    first: u64,
    /// The page of the next pid to be handed out: it is never freed, more pids
    /// will land in it.
    open_page: u64,
    len: usize,
    /// The slots of the last page freed (all empty), kept for the next page
    /// made: a process per request moves through pages steadily, and each
    /// would otherwise be allocated and cleared anew.
    spare: Option<Box<[Option<P>; PAGE]>>,
    /// Pids inserted with [`insert_far`](Self::insert_far): processes from
    /// other kernels.
    far: crate::kernel::IdMap<Pid, P>,
}

impl<P: Copy> Default for PidTable<P> {
    fn default() -> Self {
        PidTable {
            pages: Vec::new(),
            first: 0,
            open_page: 0,
            len: 0,
            spare: None,
            far: Default::default(),
        }
    }
}

impl<P: Copy> PidTable<P> {
    /// Tells the table where new pids are handed out from (so that it never frees
    /// the page they land in).
    #[inline]
    pub(crate) fn set_next(&mut self, next: u64) {
        let page = next >> SHIFT;
        if page != self.open_page {
            let old = self.open_page;
            self.open_page = page;
            self.free_if_empty(old);
        }
    }

    /// Frees page number `number` if no pid of it is live (and it is not the open page).
    fn free_if_empty(&mut self, number: u64) {
        let Some(index) = number
            .checked_sub(self.first)
            .and_then(|i| usize::try_from(i).ok())
        else {
            return;
        };
        let Some(Some(page)) = self.pages.get(index) else {
            return;
        };
        if page.live != 0 || number == self.open_page {
            return;
        }
        if let Some(page) = self.pages[index].take() {
            // (No pid of it is live: its slots are all empty.)
            self.spare = Some(page.slots);
        }
        let empty_front = self.pages.iter().take_while(|p| p.is_none()).count();
        self.pages.drain(..empty_front);
        self.first += empty_front as u64;
        while let Some(None) = self.pages.last() {
            self.pages.pop();
        }
    }

    #[inline]
    pub(crate) fn get(&self, pid: Pid) -> Option<P> {
        match self.get_paged(pid) {
            Some(p) => Some(p),
            None if self.far.is_empty() => None,
            None => self.get_far(pid),
        }
    }

    #[inline]
    fn get_paged(&self, pid: Pid) -> Option<P> {
        let page = (pid.0 >> SHIFT).checked_sub(self.first)?;
        let page = self.pages.get(usize::try_from(page).ok()?)?.as_ref()?;
        page.slots[(pid.0 & MASK) as usize]
    }

    #[cold]
    #[inline(never)]
    fn get_far(&self, pid: Pid) -> Option<P> {
        self.far.get(&pid).copied()
    }

    /// Inserts a pid that this table did not hand out (a process from another
    /// kernel): kept apart from the pages, which it would stretch.
    pub(crate) fn insert_far(&mut self, pid: Pid, p: P) {
        if self.far.insert(pid, p).is_none() {
            self.len += 1;
        }
    }

    #[inline]
    pub(crate) fn insert(&mut self, pid: Pid, p: P) {
        // The common case: its page is there.
        if let Some(index) = (pid.0 >> SHIFT).checked_sub(self.first)
            && let Ok(index) = usize::try_from(index)
            && let Some(Some(page)) = self.pages.get_mut(index)
        {
            let slot = &mut page.slots[(pid.0 & MASK) as usize];
            if slot.is_none() {
                page.live += 1;
                self.len += 1;
            }
            *slot = Some(p);
            return;
        }
        self.insert_paging(pid, p);
    }

    /// [`insert`](Self::insert), its page to be made first.
    #[cold]
    #[inline(never)]
    fn insert_paging(&mut self, pid: Pid, p: P) {
        let number = pid.0 >> SHIFT;
        if self.pages.is_empty() {
            self.first = number;
        }
        if number < self.first {
            let missing = (self.first - number) as usize;
            self.pages
                .splice(0..0, std::iter::repeat_with(|| None).take(missing));
            self.first = number;
        }
        let index = (number - self.first) as usize;
        if index >= self.pages.len() {
            self.pages.resize_with(index + 1, || None);
        }
        let spare = &mut self.spare;
        let page = self.pages[index].get_or_insert_with(|| Page {
            slots: spare.take().unwrap_or_else(|| Box::new([None; PAGE])),
            live: 0,
        });
        let slot = &mut page.slots[(pid.0 & MASK) as usize];
        if slot.is_none() {
            page.live += 1;
            self.len += 1;
        }
        *slot = Some(p);
    }

    #[inline(always)]
    pub(crate) fn remove(&mut self, pid: Pid) -> Option<P> {
        if !self.far.is_empty()
            && let Some(p) = self.far.remove(&pid)
        {
            self.len -= 1;
            return Some(p);
        }
        let number = pid.0 >> SHIFT;
        let index = usize::try_from(number.checked_sub(self.first)?).ok()?;
        let page = self.pages.get_mut(index)?.as_mut()?;
        let p = page.slots[(pid.0 & MASK) as usize].take()?;
        page.live -= 1;
        self.len -= 1;
        // (The open page stays: a test here, not a call, for the common case
        // of a process that ends while its page is still handing out pids.)
        if page.live == 0 && number != self.open_page {
            self.free_if_empty(number);
        }
        Some(p)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Every live pid, in increasing order.
    pub(crate) fn pids(&self) -> Vec<Pid> {
        let mut out = Vec::with_capacity(self.len);
        for (i, page) in self.pages.iter().enumerate() {
            if let Some(page) = page {
                let base = (self.first + i as u64) << SHIFT;
                for (j, slot) in page.slots.iter().enumerate() {
                    if slot.is_some() {
                        out.push(Pid(base + j as u64));
                    }
                }
            }
        }
        if !self.far.is_empty() {
            out.extend(self.far.keys().copied());
            out.sort_unstable();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_follow_inserts_and_removes() {
        let mut t = PidTable::<u32>::default();
        for i in 0..5000u64 {
            t.set_next(i + 1);
            t.insert(Pid(i), i as u32);
        }
        assert_eq!(t.len(), 5000);
        assert_eq!(t.get(Pid(4321)), Some(4321));
        assert_eq!(t.get(Pid(5000)), None);
        for i in 0..4000u64 {
            assert_eq!(t.remove(Pid(i)), Some(i as u32));
        }
        assert_eq!(t.remove(Pid(10)), None);
        assert_eq!(t.get(Pid(10)), None);
        assert_eq!(t.len(), 1000);
        // Fully ended pages are gone from the front.
        assert!(t.pages.len() <= 2, "{} pages", t.pages.len());
        assert_eq!(t.pids(), (4000..5000).map(Pid).collect::<Vec<_>>());
    }

    #[test]
    fn a_page_emptied_while_open_is_freed_when_pids_move_on() {
        let mut t = PidTable::<u8>::default();
        t.set_next(1);
        t.insert(Pid(0), 0);
        t.remove(Pid(0));
        assert_eq!(t.pages.len(), 1, "the open page stays");
        t.set_next(PAGE as u64 + 1);
        t.insert(Pid(PAGE as u64), 1);
        assert_eq!(t.pages.len(), 1, "the old page went");
        assert_eq!(t.get(Pid(PAGE as u64)), Some(1));
    }

    #[test]
    fn a_freed_page_is_reused_empty() {
        let mut t = PidTable::<u32>::default();
        for i in 0..(4 * PAGE as u64) {
            t.set_next(i + 1);
            t.insert(Pid(i), i as u32);
            t.remove(Pid(i));
            if i > PAGE as u64 {
                assert!(t.get(Pid(i - PAGE as u64)).is_none());
            }
        }
        assert!(t.spare.is_some(), "a freed page is kept");
        assert_eq!(t.len(), 0);
        let base = 4 * PAGE as u64;
        t.set_next(base + 1);
        t.insert(Pid(base), 7);
        assert!(t.spare.is_none(), "and reused");
        assert_eq!(t.pids(), vec![Pid(base)]);
        assert!((1..PAGE as u64).all(|j| t.get(Pid(base + j)).is_none()));
    }

    #[test]
    fn far_pids_are_kept_apart() {
        let mut t = PidTable::<u8>::default();
        t.set_next(11);
        t.insert(Pid(10), 1);
        let far = Pid(1 << 48);
        t.insert_far(far, 2);
        assert_eq!(t.pages.len(), 1, "a far pid stretches no pages");
        assert_eq!(t.get(far), Some(2));
        assert_eq!(t.get(Pid(10)), Some(1));
        assert_eq!(t.len(), 2);
        assert_eq!(t.pids(), vec![Pid(10), far]);
        assert_eq!(t.remove(far), Some(2));
        assert_eq!(t.get(far), None);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn pids_may_start_anywhere() {
        let mut t = PidTable::<u8>::default();
        t.set_next(1_000_001);
        t.insert(Pid(1_000_000), 1);
        t.insert(Pid(1_000_001), 2);
        assert_eq!(t.get(Pid(1_000_000)), Some(1));
        assert_eq!(t.get(Pid(999_999)), None);
        assert_eq!(t.get(Pid(0)), None);
        assert_eq!(t.remove(Pid(1_000_000)), Some(1));
        assert_eq!(t.get(Pid(1_000_001)), Some(2));
    }
}
