//! What a component's instance starts with: the initial size of its linear
//! memories and the static data copied into them. Spin's pooling allocator
//! puts up to 2 MiB of an instance's memory back to this image after every
//! request, so both show in the cost of a short request.

use std::path::Path;

use wasmparser::{Parser, Payload};

/// Initial linear memory of every core module in a component, and the
/// bytes of their data segments.
#[derive(Debug, Clone, Copy)]
pub struct StaticMemory {
    pub initial_bytes: u64,
    pub data_bytes: u64,
}

const WASM_PAGE: u64 = 64 * 1024;

/// Reads `component` (a `.wasm` file).
pub fn of(component: &Path) -> Result<StaticMemory, String> {
    let bytes =
        std::fs::read(component).map_err(|e| format!("reading {}: {e}", component.display()))?;
    let mut memory = StaticMemory {
        initial_bytes: 0,
        data_bytes: 0,
    };
    // `parse_all` walks the nested core modules too.
    for payload in Parser::new(0).parse_all(&bytes) {
        match payload.map_err(|e| format!("{}: {e}", component.display()))? {
            Payload::MemorySection(memories) => {
                for memory_type in memories {
                    let memory_type = memory_type.map_err(|e| e.to_string())?;
                    memory.initial_bytes += memory_type.initial * WASM_PAGE;
                }
            }
            Payload::DataSection(segments) => {
                for segment in segments {
                    let segment = segment.map_err(|e| e.to_string())?;
                    memory.data_bytes += segment.data.len() as u64;
                }
            }
            _ => {}
        }
    }
    Ok(memory)
}
