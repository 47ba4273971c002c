//! The inbox's streams by id: a slab whose slots' addresses are known without reading them,
//! so the hot path can ask for a stream's cache lines well before it reads them. Under a
//! burst to 10,000 uids every stream a push touches is cold (the flush that wrote to 10,000
//! sockets evicted it): the stream it appends to, and the one its memory cap evicts from.

use super::stream::Stream;
use std::{
    mem::size_of,
    ops::{Index, IndexMut},
};

/// Streams by id; ids of removed streams are reused, the last freed first.
#[derive(Debug, Default)]
pub(super) struct Streams {
    slots: Vec<Option<Stream>>,
    free: Vec<usize>,
}

/// Bytes of one slot.
pub(super) const SLOT: usize = size_of::<Option<Stream>>();

impl Streams {
    /// Stores `stream`; returns its id.
    pub(super) fn insert(&mut self, stream: Stream) -> usize {
        match self.free.pop() {
            Some(id) => {
                self.slots[id] = Some(stream);
                id
            }
            None => {
                self.slots.push(Some(stream));
                self.slots.len() - 1
            }
        }
    }

    /// Removes stream `id`; panics if there is none.
    pub(super) fn remove(&mut self, id: usize) -> Stream {
        let stream = self.slots[id].take().expect("a stream in the slot");
        self.free.push(id);
        stream
    }

    /// Stream `id`, if there is one.
    pub(super) fn get(&self, id: usize) -> Option<&Stream> {
        self.slots.get(id)?.as_ref()
    }

    /// Every stream with its id, by id.
    pub(super) fn iter(&self) -> impl Iterator<Item = (usize, &Stream)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(id, s)| Some((id, s.as_ref()?)))
    }

    /// Starts loading slot `id` into the cache, without reading it: any `id` will do.
    pub(super) fn prefetch(&self, id: usize) {
        let slot = self.slots.as_ptr().wrapping_add(id).cast::<u8>();
        prefetch(slot);
        prefetch(slot.wrapping_add(SLOT - 1));
    }
}

impl Index<usize> for Streams {
    type Output = Stream;

    fn index(&self, id: usize) -> &Stream {
        self.slots[id].as_ref().expect("a stream in the slot")
    }
}

impl IndexMut<usize> for Streams {
    fn index_mut(&mut self, id: usize) -> &mut Stream {
        self.slots[id].as_mut().expect("a stream in the slot")
    }
}

/// Asks the CPU to start loading the cache line holding `p`. A hint: it reads nothing into
/// the program and never faults, so any address will do. A no-op off x86_64 (stable Rust has
/// no portable prefetch). A line about to be written is loaded the same way: once in the
/// cache the stores to it do not wait for it (holding up every later store meanwhile).
pub(super) fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` neither dereferences `p` for the program nor faults, whatever
    // `p` is; SSE, the intrinsic's target feature, is part of every x86_64 CPU.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
