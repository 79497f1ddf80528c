//! `fermyon:spin/variables@2.0.0` and `wasi:config/store@0.2.0-draft-2024-09-27` for guests.
//!
//! A component sees only the variables of its own `[component.<id>.variables]` table, resolved
//! when the host started. Errors follow Spin: an invalid name is `invalid-name`, a name the
//! component does not define is `undefined`; `wasi:config` reports both as `none`.

use crate::bindings::fermyon::spin::variables as spin_vars;
use crate::bindings::wasi::config::store as wasi_config;
use crate::state::HostState;
use crate::variables::validate_name;

impl HostState {
    fn lookup_variable(&self, name: &str) -> Result<String, spin_vars::Error> {
        validate_name(name).map_err(|e| spin_vars::Error::InvalidName(e.to_string()))?;
        self.shared
            .variable(&self.component, name)
            .map(str::to_owned)
            .ok_or_else(|| {
                spin_vars::Error::Undefined(format!(
                    "component `{}` defines no variable `{name}`",
                    self.component
                ))
            })
    }
}

impl spin_vars::Host for HostState {
    fn get(&mut self, name: String) -> wasmtime::Result<Result<String, spin_vars::Error>> {
        self.count("variable get");
        Ok(self.lookup_variable(&name))
    }
}

impl wasi_config::Host for HostState {
    fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, wasi_config::Error>> {
        self.count("variable get");
        Ok(Ok(self.lookup_variable(&key).ok()))
    }

    fn get_all(&mut self) -> wasmtime::Result<Result<Vec<(String, String)>, wasi_config::Error>> {
        self.count("variable get-all");
        Ok(Ok(self
            .shared
            .variables(&self.component)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()))
    }
}
