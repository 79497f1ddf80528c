//! `bindgen!` output for the Spin interfaces the host implements (see `wit/host.wit`).

wasmtime::component::bindgen!({
    path: "wit",
    world: "kiln:test-host/spin-host",
    imports: { default: trappable },
    with: {
        "fermyon:spin/key-value.store": crate::guest_kv::SpinStore,
        "wasi:keyvalue/store.bucket": crate::guest_kv::Bucket,
        "wasi:keyvalue/atomics.cas": crate::guest_kv::CasHandle,
    },
});
