//! `fermyon:spin/key-value@2.0.0` and `wasi:keyvalue@0.2.0-draft2` for guests.
//!
//! Both interfaces reach the one [`KeyValueStore`](crate::KeyValueStore) of the host, whose
//! backend decides the semantics (Spin's SQLite store in memory, or Spin's Redis store). A
//! component may open only the labels in its `key_value_stores` (else `access-denied`). The
//! fault switches of [`FaultHandle`](crate::FaultHandle) apply here: an injected failure is a
//! guest-visible `other("injected fault")`, an armed write trap is a trap (`Err` from the host
//! function) raised before the write. Under quotas, a write that exceeds one is refused with
//! `other("<quota> quota exceeded: ...")` and writes nothing (`HostShared::admit_kv_write`).

use wasmtime::component::Resource;

use crate::bindings::fermyon::spin::key_value as spin_kv;
use crate::bindings::wasi::keyvalue::{atomics, batch, store as wasi_kv};
use crate::faults::INJECTED_FAULT;
use crate::kv::{Backend, Cas, GuestResult};
use crate::state::HostState;

/// The host side of a `fermyon:spin/key-value.store` resource.
pub struct SpinStore {
    _label: String,
}

/// The host side of a `wasi:keyvalue/store.bucket` resource.
pub struct Bucket {
    _label: String,
}

/// The host side of a `wasi:keyvalue/atomics.cas` resource: the backend's handle.
pub struct CasHandle(Box<dyn Cas>);

impl HostState {
    /// The store's backend.
    fn store(&self) -> &dyn Backend {
        self.shared.kv.backend()
    }

    /// What Spin hands back with `cas-failed`: a new handle on `key`, `current()` already read.
    fn cas_for_retry(&self, key: &str) -> GuestResult<Box<dyn Cas>> {
        let mut cas = match self.store().new_cas(key)? {
            Ok(cas) => cas,
            Err(msg) => return Ok(Err(msg)),
        };
        Ok(cas.current()?.map(|_| cas))
    }

    /// The injected store failure, if the fault switch is on.
    fn injected_failure(&self) -> Option<String> {
        self.shared
            .faults
            .kv_failing()
            .then(|| INJECTED_FAULT.to_owned())
    }

    /// Traps if an armed write trap matches this instance writing `key`.
    fn check_write(&self, key: &str) -> wasmtime::Result<()> {
        if self.shared.faults.take_write_trap(&self.component, key) {
            wasmtime::bail!(
                "injected crash: `{}` trapped writing key `{key}`",
                self.component
            );
        }
        Ok(())
    }
}

impl spin_kv::Host for HostState {}

impl spin_kv::HostStore for HostState {
    fn open(
        &mut self,
        label: String,
    ) -> wasmtime::Result<Result<Resource<SpinStore>, spin_kv::Error>> {
        self.count("kv open");
        if let Some(msg) = self.injected_failure() {
            return Ok(Err(spin_kv::Error::Other(msg)));
        }
        if !self.shared.may_open_store(&self.component, &label) {
            return Ok(Err(spin_kv::Error::AccessDenied));
        }
        self.store().after_open()?;
        match self.table.push(SpinStore { _label: label }) {
            Ok(store) => Ok(Ok(store)),
            Err(_) => Ok(Err(spin_kv::Error::StoreTableFull)),
        }
    }

    fn get(
        &mut self,
        _store: Resource<SpinStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, spin_kv::Error>> {
        self.count("kv get");
        if let Some(msg) = self.injected_failure() {
            return Ok(Err(spin_kv::Error::Other(msg)));
        }
        Ok(self.store().get(&key)?.map_err(spin_kv::Error::Other))
    }

    fn set(
        &mut self,
        _store: Resource<SpinStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), spin_kv::Error>> {
        self.count("kv set");
        if let Some(msg) = self.injected_failure() {
            return Ok(Err(spin_kv::Error::Other(msg)));
        }
        self.check_write(&key)?;
        let _quota = match self.shared.admit_kv_write(&[(&key, value.len())]) {
            Ok(permit) => permit,
            Err(quota) => return Ok(Err(spin_kv::Error::Other(quota))),
        };
        Ok(self
            .store()
            .set(&key, value)?
            .map_err(spin_kv::Error::Other))
    }

    fn delete(
        &mut self,
        _store: Resource<SpinStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), spin_kv::Error>> {
        self.count("kv delete");
        if let Some(msg) = self.injected_failure() {
            return Ok(Err(spin_kv::Error::Other(msg)));
        }
        Ok(self.store().delete(&key)?.map_err(spin_kv::Error::Other))
    }

    fn exists(
        &mut self,
        _store: Resource<SpinStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, spin_kv::Error>> {
        self.count("kv exists");
        if let Some(msg) = self.injected_failure() {
            return Ok(Err(spin_kv::Error::Other(msg)));
        }
        Ok(self.store().exists(&key)?.map_err(spin_kv::Error::Other))
    }

    fn get_keys(
        &mut self,
        _store: Resource<SpinStore>,
    ) -> wasmtime::Result<Result<Vec<String>, spin_kv::Error>> {
        self.count("kv list-keys");
        if let Some(msg) = self.injected_failure() {
            return Ok(Err(spin_kv::Error::Other(msg)));
        }
        Ok(self.store().keys()?.map_err(spin_kv::Error::Other))
    }

    fn drop(&mut self, store: Resource<SpinStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

impl wasi_kv::Host for HostState {
    fn open(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Result<Resource<Bucket>, wasi_kv::Error>> {
        self.count("kv open");
        if let Some(msg) = self.injected_failure() {
            return Ok(Err(wasi_kv::Error::Other(msg)));
        }
        if !self.shared.may_open_store(&self.component, &identifier) {
            return Ok(Err(wasi_kv::Error::AccessDenied));
        }
        self.store().after_open()?;
        match self.table.push(Bucket { _label: identifier }) {
            Ok(bucket) => Ok(Ok(bucket)),
            Err(_) => Ok(Err(wasi_kv::Error::Other("store table full".into()))),
        }
    }
}

impl wasi_kv::HostBucket for HostState {
    fn get(
        &mut self,
        _bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wasi_kv::Error>> {
        self.count("kv get");
        if let Some(msg) = self.injected_failure() {
            return Ok(Err(wasi_kv::Error::Other(msg)));
        }
        Ok(self.store().get(&key)?.map_err(wasi_kv::Error::Other))
    }

    fn set(
        &mut self,
        _bucket: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), wasi_kv::Error>> {
        self.count("kv set");
        if let Some(msg) = self.injected_failure() {
            return Ok(Err(wasi_kv::Error::Other(msg)));
        }
        self.check_write(&key)?;
        let _quota = match self.shared.admit_kv_write(&[(&key, value.len())]) {
            Ok(permit) => permit,
            Err(quota) => return Ok(Err(wasi_kv::Error::Other(quota))),
        };
        Ok(self
            .store()
            .set(&key, value)?
            .map_err(wasi_kv::Error::Other))
    }

    fn delete(
        &mut self,
        _bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<(), wasi_kv::Error>> {
        self.count("kv delete");
        if let Some(msg) = self.injected_failure() {
            return Ok(Err(wasi_kv::Error::Other(msg)));
        }
        Ok(self.store().delete(&key)?.map_err(wasi_kv::Error::Other))
    }

    fn exists(
        &mut self,
        _bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<bool, wasi_kv::Error>> {
        self.count("kv exists");
        if let Some(msg) = self.injected_failure() {
            return Ok(Err(wasi_kv::Error::Other(msg)));
        }
        Ok(self.store().exists(&key)?.map_err(wasi_kv::Error::Other))
    }

    fn list_keys(
        &mut self,
        _bucket: Resource<Bucket>,
        cursor: Option<String>,
    ) -> wasmtime::Result<Result<wasi_kv::KeyResponse, wasi_kv::Error>> {
        self.count("kv list-keys");
        if let Some(msg) = self.injected_failure() {
            return Ok(Err(wasi_kv::Error::Other(msg)));
        }
        if cursor.is_some() {
            // Spin returns every key in one page and refuses cursors.
            return Ok(Err(wasi_kv::Error::Other(
                "list_keys: cursor not supported".into(),
            )));
        }
        Ok(self
            .store()
            .keys()?
            .map(|keys| wasi_kv::KeyResponse { keys, cursor: None })
            .map_err(wasi_kv::Error::Other))
    }

    fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for HostState {
    fn increment(
        &mut self,
        _bucket: Resource<Bucket>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, wasi_kv::Error>> {
        self.count("kv increment");
        if let Some(msg) = self.injected_failure() {
            return Ok(Err(wasi_kv::Error::Other(msg)));
        }
        // The counter is an 8-byte value; only creating it can add to the store.
        let _quota = match self.shared.admit_kv_write(&[(&key, 8)]) {
            Ok(permit) => permit,
            Err(quota) => return Ok(Err(wasi_kv::Error::Other(quota))),
        };
        Ok(self
            .store()
            .increment(&key, delta)?
            .map_err(wasi_kv::Error::Other))
    }

    fn swap(
        &mut self,
        cas: Resource<CasHandle>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        self.count("kv cas swap");
        // `swap` consumes the handle.
        let CasHandle(cas) = self.table.delete(cas)?;
        if let Some(msg) = self.injected_failure() {
            return Ok(Err(atomics::CasError::StoreError(wasi_kv::Error::Other(
                msg,
            ))));
        }
        self.check_write(cas.key())?;
        let key = cas.key().to_owned();
        let _quota = match self.shared.admit_kv_write(&[(&key, value.len())]) {
            Ok(permit) => permit,
            Err(quota) => {
                return Ok(Err(atomics::CasError::StoreError(wasi_kv::Error::Other(
                    quota,
                ))));
            }
        };
        if cas.swap(value)? && !self.shared.faults.swaps_misreported() {
            return Ok(Ok(()));
        }
        match self.cas_for_retry(&key)? {
            Ok(retry) => Ok(Err(atomics::CasError::CasFailed(
                self.table.push(CasHandle(retry))?,
            ))),
            Err(msg) => Ok(Err(atomics::CasError::StoreError(wasi_kv::Error::Other(
                msg,
            )))),
        }
    }
}

impl atomics::HostCas for HostState {
    fn new(
        &mut self,
        _bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<Resource<CasHandle>, wasi_kv::Error>> {
        self.count("kv cas new");
        if let Some(msg) = self.injected_failure() {
            return Ok(Err(wasi_kv::Error::Other(msg)));
        }
        // As in Spin, nothing is read here: the snapshot is taken by `current()`.
        let cas = match self.store().new_cas(&key)? {
            Ok(cas) => cas,
            Err(msg) => return Ok(Err(wasi_kv::Error::Other(msg))),
        };
        match self.table.push(CasHandle(cas)) {
            Ok(cas) => Ok(Ok(cas)),
            Err(_) => Ok(Err(wasi_kv::Error::Other(
                "too many compare_and_swaps opened".into(),
            ))),
        }
    }

    fn current(
        &mut self,
        cas: Resource<CasHandle>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wasi_kv::Error>> {
        self.count("kv cas current");
        if let Some(msg) = self.injected_failure() {
            return Ok(Err(wasi_kv::Error::Other(msg)));
        }
        let CasHandle(cas) = self.table.get_mut(&cas)?;
        Ok(cas.current()?.map_err(wasi_kv::Error::Other))
    }

    fn drop(&mut self, cas: Resource<CasHandle>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl batch::Host for HostState {
    fn get_many(
        &mut self,
        _bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<(String, Option<Vec<u8>>)>, wasi_kv::Error>> {
        self.count("kv get-many");
        if let Some(msg) = self.injected_failure() {
            return Ok(Err(wasi_kv::Error::Other(msg)));
        }
        Ok(self.store().get_many(keys)?.map_err(wasi_kv::Error::Other))
    }

    fn set_many(
        &mut self,
        _bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), wasi_kv::Error>> {
        self.count("kv set-many");
        if let Some(msg) = self.injected_failure() {
            return Ok(Err(wasi_kv::Error::Other(msg)));
        }
        for (key, _) in &key_values {
            self.check_write(key)?;
        }
        let writes: Vec<(&str, usize)> = key_values
            .iter()
            .map(|(key, value)| (key.as_str(), value.len()))
            .collect();
        let _quota = match self.shared.admit_kv_write(&writes) {
            Ok(permit) => permit,
            Err(quota) => return Ok(Err(wasi_kv::Error::Other(quota))),
        };
        Ok(self
            .store()
            .set_many(key_values)?
            .map_err(wasi_kv::Error::Other))
    }

    fn delete_many(
        &mut self,
        _bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), wasi_kv::Error>> {
        self.count("kv delete-many");
        if let Some(msg) = self.injected_failure() {
            return Ok(Err(wasi_kv::Error::Other(msg)));
        }
        Ok(self
            .store()
            .delete_many(keys)?
            .map_err(wasi_kv::Error::Other))
    }
}
