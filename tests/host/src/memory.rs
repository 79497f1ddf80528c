//! How much linear memory an instance used at most: what Spin would have to
//! give one request. Wasm memories only grow, so the peak is their size when
//! the instance ends; it is counted as they grow, through wasmtime's
//! resource limiter (which refuses nothing).

use wasmtime::ResourceLimiter;

/// The total size of an instance's linear memories, and its peak.
#[derive(Debug, Default)]
pub(crate) struct MemoryUse {
    current: usize,
    peak: usize,
}

impl MemoryUse {
    /// The most the instance's memories held at once, in bytes.
    pub fn peak(&self) -> usize {
        self.peak
    }
}

impl ResourceLimiter for MemoryUse {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Also called when a memory is created (from 0), so the sum covers
        // every memory of the instance.
        self.current += desired.saturating_sub(current);
        self.peak = self.peak.max(self.current);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_the_sum_of_every_memory_at_its_largest() {
        let mut memory = MemoryUse::default();
        memory.memory_growing(0, 65536, None).unwrap();
        memory.memory_growing(0, 2 * 65536, None).unwrap();
        memory.memory_growing(65536, 4 * 65536, None).unwrap();
        assert_eq!(memory.peak(), 6 * 65536);
    }
}
