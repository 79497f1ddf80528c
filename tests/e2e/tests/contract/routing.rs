//! Routing as spin.toml declares it: the processor is private.

use kiln_e2e::{Env, for_each_target};

/// The processor's route is private: from outside it is 404, even with a
/// spoofed `Host: processor.spin.internal`.
#[test]
fn the_processor_is_not_reachable_from_outside() {
    for_each_target(Env::builder, |env| {
        let id = kiln::JobId::random();
        let plain = env.send("POST", &format!("/jobs/{id}"), &[], &[]);
        assert_eq!(plain.status, 404);
        let spoofed = env.send(
            "POST",
            &format!("/jobs/{id}"),
            &[("host", "processor.spin.internal")],
            &[],
        );
        assert_eq!(spoofed.status, 404);
    });
}

/// Paths outside the API and its pages are 404 (`/` is the demo page, an
/// exact route: nothing below it is served).
#[test]
fn unknown_paths_are_404() {
    for_each_target(Env::builder, |env| {
        for path in ["/nope", "/imagesx", "/openapi", "/index.html"] {
            assert_eq!(env.get(path, &[]).status, 404, "{path}");
        }
    });
}
